"""The one CSV writer of every export: cells a spreadsheet would run as a formula are defused.

Integrations control text that ends up in exports (``external_id``, a reference
database's name, reviewer names…). Opened in Excel or LibreOffice, a cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula
(CSV injection, OWASP). Such text cells get a leading apostrophe, the OWASP
remedy: the spreadsheet shows the text as typed. Numbers stay numbers: ints,
floats and Decimals, and text that is just a number (``-3``, ``+1.5e3``), are
written as they are, so figures still sort and sum.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """One cell as it may be written: None → empty, numbers kept, nested values as JSON, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dict | list):  # nested values (a case's input) as JSON text
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeCsvWriter:
    """``csv.writer`` with every cell passed through ``safe_cell``."""

    def __init__(self, target: _Writable) -> None:
        self._writer = csv.writer(target)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(target: _Writable) -> SafeCsvWriter:
    """The CSV writer for any export (an ``HttpResponse``, a file, a buffer)."""
    return SafeCsvWriter(target)


def csv_lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Header and rows as CSV text, one chunk per row: for ``StreamingHttpResponse`` (constant memory)."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header)
    yield flush()
    for row in rows:
        writer.writerow(row)
        yield flush()


__all__ = ["FORMULA_PREFIXES", "SafeCsvWriter", "csv_lines", "csv_writer", "safe_cell"]
