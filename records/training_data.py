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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import CharField, Count, F, Func, IntegerField, OuterRef, QuerySet, Subquery, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from audit.services import record_event
from hitl_portal.csv_export import csv_writer
from reviews.models import AISystem, Case, CaseStatus, Decision, DecisionOutcome, Resolution

FORMATS = ("jsonl", "csv", "parquet")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 5000
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


# The row's columns as read from the database, in order (``_rows`` turns them into the export's row).
_READ = ("pk", "external_id", "received_at_text", "decided_at_text", "intervention_point__slug", "rules_version",
         "input", "prediction_label", "prediction_confidence", "model_version", "final_label", "resolution",
         "true_label")
_DECISIONS_PG = ("decision_summary",)
_DECISIONS = ("last_override_rationale", "reviewer_count", "last_form_values")


class _IsoText(Func):
    """A timestamp as ``datetime.isoformat()`` spells an aware UTC datetime, rendered by PostgreSQL.

    Parsing a timestamp into a ``datetime`` only to print it again cost a third of the export's time.
    ``isoformat`` leaves out the fraction when it is zero, hence the two formats.
    """

    template = (
        "CASE WHEN %(expressions)s = date_trunc('second', %(expressions)s) "
        "THEN to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') "
        "ELSE to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"
    )
    output_field = CharField()


def _human_cases(export: TrainingExport) -> QuerySet[Case]:
    """Human-decided cases of the system in ``[start, end)``, with what the row needs of their decisions.

    The decisions are summed up by three correlated subqueries (the last override's rationale,
    the number of distinct reviewers, the last decision's form values as JSON text; "last" in
    ``round, id`` order) instead of being fetched and turned into model instances: the export reads
    plain tuples, which is what lets it stream tens of thousands of rows a second (bench/scale.py).
    """
    base = Case.objects.filter(system=export.system, is_gold=False, status=CaseStatus.DECIDED,
                               resolution__in=HUMAN_RESOLUTIONS)
    if export.start is not None:
        base = base.filter(received_at__gte=export.start)
    if export.end is not None:
        base = base.filter(received_at__lt=export.end)
    decisions = Decision.objects.filter(case=OuterRef("pk")).order_by()
    if connection.vendor == "postgresql":
        # One probe of the decisions per case instead of three: the three figures as one JSON array
        # (``_rows`` unpacks it), the "last" ones by array_agg in (round, id) order.
        table, case_id = Decision._meta.db_table, Decision._meta.get_field("case").column
        # Identifiers come from the models, the one value is a parameter: nothing user-given is spliced.
        summary = RawSQL(  # noqa: S611
            f"SELECT json_build_array("
            f"(array_agg(d.rationale ORDER BY d.round DESC, d.id DESC) "
            f"FILTER (WHERE d.outcome = %s AND d.rationale <> ''))[1], "
            f"count(DISTINCT d.reviewer_id), (array_agg(d.form_values ORDER BY d.round DESC, d.id DESC))[1]"
            f")::text FROM {table} d WHERE d.{case_id} = {Case._meta.db_table}.{Case._meta.pk.column}",
            [DecisionOutcome.OVERRIDE], output_field=TextField(),
        )
        return base.annotate(received_at_text=_IsoText("received_at"), decided_at_text=_IsoText("decided_at"),
                             decision_summary=summary)
    return base.annotate(
        received_at_text=F("received_at"), decided_at_text=F("decided_at"),  # spelled in Python
        last_override_rationale=Subquery(
            decisions.filter(outcome=DecisionOutcome.OVERRIDE).exclude(rationale="")
            .order_by("-round", "-id").values("rationale")[:1]),
        reviewer_count=Subquery(
            decisions.values("case").annotate(n=Count("reviewer", distinct=True)).values("n")[:1],
            output_field=IntegerField()),
        last_form_values=Cast(Subquery(decisions.order_by("-round", "-id").values("form_values")[:1]),
                              output_field=TextField()),
    )


def _iso(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()


def _chunks(export: TrainingExport) -> Iterator[list[tuple[Any, ...]]]:
    """The export's database rows in keyset order (``received_at, id``), ``CHUNK`` at a time (flat memory).

    On PostgreSQL each chunk's statement runs with JIT off: the correlated subqueries make the
    planner's cost estimate large enough to JIT-compile every chunk, which took longer than
    running it (about 200 ms a chunk, measured with ``EXPLAIN ANALYZE`` in docs/PERFORMANCE.md).
    Outside a transaction the next chunk is fetched by a helper thread (on its own connection)
    while the caller encodes this one, so the database and Python overlap; inside one (a test,
    ``ATOMIC_REQUESTS``) another connection could not see the transaction's rows, so it does not.
    """
    base = _human_cases(export).order_by("received_at", "id")
    postgres = connection.vendor == "postgresql"
    fields = (*_READ, *(_DECISIONS_PG if postgres else _DECISIONS))
    if export.include_subject:
        fields = (*fields, "subject")

    def fetch(after: tuple[dt.datetime, int] | None) -> list[tuple[Any, ...]]:
        page = base
        if after is not None:
            # ``received_at >= t`` is an index range condition; an OR of ``> t`` and ``= t AND id > n``
            # would not be, and each chunk would scan from the period's start again.
            page = page.filter(received_at__gte=after[0]).exclude(received_at=after[0], pk__lte=after[1])
        query = page.values_list(*fields)[:CHUNK]
        if not postgres:
            return list(query)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            return list(query)

    def next_key(chunk: list[tuple[Any, ...]]) -> tuple[dt.datetime, int]:
        last = chunk[-1][2]
        return (dt.datetime.fromisoformat(last) if isinstance(last, str) else last, chunk[-1][0])

    if not postgres or connection.in_atomic_block:
        chunk = fetch(None)
        while chunk:
            yield chunk
            chunk = fetch(next_key(chunk))
        return
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="training-export")
    try:
        chunk = fetch(None)
        while chunk:
            ahead = helper.submit(fetch, next_key(chunk))
            yield chunk
            chunk = ahead.result()
    finally:
        # The helper thread's own connection (``connection`` resolves per thread, hence the lambda).
        helper.submit(lambda: connection.close()).result()
        helper.shutdown(wait=True)


def _rows(export: TrainingExport) -> Iterator[dict[str, Any]]:
    """The export's rows, built from the database rows of ``_chunks``."""
    loads = json.loads
    for chunk in _chunks(export):
        for values in chunk:
            (pk, external_id, received_at, decided_at, point, rules_version, input_, ai_label, ai_confidence,
             model_version, final_label, resolution, true_label) = values[:13]
            if len(values) - export.include_subject == 14:  # PostgreSQL: the decisions as one JSON array
                rationale, reviewers, form_values = loads(values[13])
                rest = 14
            else:
                rationale, reviewers, form_values = values[13:16]
                form_values = None if form_values is None else loads(form_values)
                rest = 16
            row: dict[str, Any] = {
                "case_id": pk,
                "external_id": external_id,
                "received_at": _iso(received_at),
                "decided_at": _iso(decided_at),
                "intervention_point": point,
                "rules_version": rules_version,
                "input": input_,
                "ai_label": ai_label,
                "ai_confidence": ai_confidence,
                "model_version": model_version,
                "final_label": final_label,
                "resolution": resolution,
                "override_rationale": rationale or "",
                "reviewers": reviewers or 0,
                "true_label": true_label,
                # Answers to the point's extra decision fields, as given in the final decision.
                "form_values": {} if form_values is None else form_values,
            }
            if export.include_subject:
                row["subject"] = values[rest]
            yield row


def _json_line(row: dict[str, Any]) -> bytes:
    """One row as compact JSON with sorted keys, UTF-8 (orjson: encoding was 40 % of the export's CPU with json).

    orjson refuses integers beyond 64 bits, which a JSON input may hold: such a row is
    written by the standard library instead, so no value is lost or changed.
    """
    try:
        return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _jsonl(export: TrainingExport) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for row in _rows(export):
        buffer.append(_json_line(row))
        if len(buffer) >= 500:
            buffer.append(b"")
            yield b"\n".join(buffer)
            buffer = []
    if buffer:
        buffer.append(b"")
        yield b"\n".join(buffer)


def _csv(export: TrainingExport) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv_writer(text)  # the portal's one CSV writer: formula-like cells defused, numbers kept
    writer.writerow(export.columns)
    for n, row in enumerate(_rows(export), start=1):
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
    for row in _rows(export):
        rows.append(row)
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
