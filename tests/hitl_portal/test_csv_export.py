"""The one CSV writer (hitl_portal.csv_export): formula-like text defused, numbers kept, and no other writer."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from hitl_portal.csv_export import csv_lines, csv_writer, safe_cell

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")',
                                  "-", "+", "=", "-1-1", "-cmd|' /C calc'!A0"])
def test_formula_like_text_gets_a_leading_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [0, -3, 2.5, -0.6, Decimal("-1.25"), "-3", "+1.5e3", "-.5", "plain", "a=b", ""])
def test_numbers_and_harmless_text_are_kept(value: object) -> None:
    assert safe_cell(value) == value


def test_none_and_booleans() -> None:
    assert (safe_cell(None), safe_cell(True), safe_cell(False)) == ("", "true", "false")


def test_writer_and_stream_round_trip() -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(["id", "label"])
    writer.writerows([[1, "=cmd"], [-2, 'say "hi", then']])
    streamed = "".join(csv_lines(["id", "label"], [[1, "=cmd"], [-2, 'say "hi", then']]))
    assert buffer.getvalue() == streamed
    rows = list(csv.reader(io.StringIO(streamed)))
    assert rows == [["id", "label"], ["1", "'=cmd"], ["-2", 'say "hi", then']]


def test_no_other_csv_writer_in_the_portal() -> None:
    """Every export goes through hitl_portal.csv_export: a new ``csv.writer`` elsewhere fails here."""
    offenders = []
    for path in REPO.glob("*/**/*.py"):
        relative = path.relative_to(REPO)
        if relative.parts[0] in {"tests", ".venv", "bench", "scripts", "tools"} or relative == Path(
            "hitl_portal/csv_export.py"
        ):
            continue
        if re.search(r"\bcsv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8")):
            offenders.append(str(relative))
    assert offenders == []
