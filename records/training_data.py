"""The training-data export: human-validated labels for retraining (the feedback loop), streamed.

One row per case a person decided (resolution ``reviewed`` or ``adjudicated``; gold
items, auto-accepted cases and SLA outcomes are not human-validated and are left
out), by received time in ``[start, end)``: the input, the AI's label, confidence
and model version, the final label and resolution, the override rationale, the rules
version, the ground truth if reported, and — only when asked for and permitted — the
subject attributes. Rows are read in keyset order (``received_at, id``) in chunks, so
memory stays flat whatever the size; the file is hashed while it streams and the
export is recorded in the audit trail with that SHA-256 when the stream ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Prefetch

from audit.services import record_event
from hitl_portal.csv_export import csv_writer
from reviews.models import AISystem, Case, CaseStatus, Decision, DecisionOutcome, Resolution

FORMATS = ("jsonl", "csv", "parquet")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 2000
HUMAN_RESOLUTIONS = (Resolution.REVIEWED, Resolution.ADJUDICATED)
COLUMNS = (
    "case_id", "external_id", "received_at", "decided_at", "intervention_point", "rules_version", "input",
    "ai_label", "ai_confidence", "model_version", "final_label", "resolution", "override_rationale",
    "reviewers", "true_label", "form_values",
)


@dataclass(frozen=True)
class TrainingExport:
    system: AISystem
    start: dt.datetime | None
    end: dt.datetime | None
    fmt: str
    include_subject: bool

    @property
    def columns(self) -> tuple[str, ...]:
        return (*COLUMNS, "subject") if self.include_subject else COLUMNS

    @property
    def filename(self) -> str:
        return f"training-data-{self.system.slug}.{self.fmt}"


def _cases(export: TrainingExport) -> Iterator[Case]:
    """Human-decided cases of the system in keyset order, chunk by chunk (flat memory)."""
    base = Case.objects.filter(system=export.system, is_gold=False, status=CaseStatus.DECIDED,
                               resolution__in=HUMAN_RESOLUTIONS)
    if export.start is not None:
        base = base.filter(received_at__gte=export.start)
    if export.end is not None:
        base = base.filter(received_at__lt=export.end)
    decisions = Prefetch("decisions", queryset=Decision.objects.select_related("reviewer").order_by("round", "id"))
    fields = ["id", "external_id", "received_at", "decided_at", "rules_version", "input", "prediction_label",
              "prediction_confidence", "model_version", "final_label", "resolution", "true_label",
              "intervention_point__slug"]
    if export.include_subject:
        fields.append("subject")
    after: tuple[dt.datetime, int] | None = None
    while True:
        page = base.select_related("intervention_point").only(*fields).order_by("received_at", "id")
        if after is not None:
            page = page.filter(received_at__gte=after[0]).exclude(received_at=after[0], id__lte=after[1])
        rows = list(page.prefetch_related(decisions)[:CHUNK])
        if not rows:
            return
        yield from rows
        after = (rows[-1].received_at, rows[-1].pk)


def _row(case: Case, include_subject: bool) -> dict[str, Any]:
    decisions = list(case.decisions.all())
    overrides = [d.rationale for d in decisions if d.outcome == DecisionOutcome.OVERRIDE and d.rationale]
    row: dict[str, Any] = {
        "case_id": case.pk,
        "external_id": case.external_id,
        "received_at": case.received_at.isoformat(),
        "decided_at": case.decided_at.isoformat() if case.decided_at else None,
        "intervention_point": case.intervention_point.slug,
        "rules_version": case.rules_version,
        "input": case.input,
        "ai_label": case.prediction_label,
        "ai_confidence": case.prediction_confidence,
        "model_version": case.model_version,
        "final_label": case.final_label,
        "resolution": case.resolution,
        "override_rationale": overrides[-1] if overrides else "",
        "reviewers": len({d.reviewer_id for d in decisions}),
        "true_label": case.true_label,
        # Answers to the point's extra decision fields, as given in the final decision.
        "form_values": decisions[-1].form_values if decisions else {},
    }
    if include_subject:
        row["subject"] = case.subject
    return row


def _jsonl(export: TrainingExport) -> Iterator[bytes]:
    buffer: list[str] = []
    for case in _cases(export):
        buffer.append(json.dumps(_row(case, export.include_subject), ensure_ascii=False, sort_keys=True))
        if len(buffer) >= 500:
            yield ("\n".join(buffer) + "\n").encode()
            buffer = []
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


def _csv(export: TrainingExport) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv_writer(text)  # the portal's one CSV writer: formula-like cells defused, numbers kept
    writer.writerow(export.columns)
    for n, case in enumerate(_cases(export), start=1):
        row = _row(case, export.include_subject)
        writer.writerow([row[column] for column in export.columns])
        if n % 500 == 0:
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()
    yield text.getvalue().encode()


def _parquet(export: TrainingExport) -> Iterator[bytes]:
    """Parquet in row groups of ``CHUNK`` rows; nested values (input, subject) as JSON text columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"case_id": pa.int64(), "rules_version": pa.int64(), "reviewers": pa.int64(),
             "ai_confidence": pa.float64()}
    schema = pa.schema([(column, types.get(column, pa.string())) for column in export.columns])
    sink = io.BytesIO()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")

    def flush(rows: list[dict[str, Any]]) -> bytes:
        columns = {
            column: [json.dumps(r[column], ensure_ascii=False, sort_keys=True)
                     if isinstance(r[column], dict | list) else r[column] for r in rows]
            for column in export.columns
        }
        writer.write_table(pa.table(columns, schema=schema))
        data = sink.getvalue()
        sink.seek(0)
        sink.truncate()
        return data

    rows: list[dict[str, Any]] = []
    for case in _cases(export):
        rows.append(_row(case, export.include_subject))
        if len(rows) >= CHUNK:
            yield flush(rows)
            rows = []
    if rows:
        yield flush(rows)
    writer.close()
    yield sink.getvalue()


def stream_training_data(export: TrainingExport, *, actor: Any) -> Iterator[bytes]:
    """The export's bytes; when the stream ends, ``training_data.exported`` is recorded with their SHA-256."""
    produce = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}[export.fmt]
    digest = hashlib.sha256()
    size = 0
    for block in produce(export):
        if block:
            digest.update(block)
            size += len(block)
            yield block
    with transaction.atomic():
        record_event(
            "training_data.exported", actor=actor, obj=export.system, system_id=export.system.pk,
            data={"format": export.fmt, "sha256": digest.hexdigest(), "bytes": size,
                  "from": export.start.isoformat() if export.start else None,
                  "to": export.end.isoformat() if export.end else None,
                  "include_subject": export.include_subject},
        )
