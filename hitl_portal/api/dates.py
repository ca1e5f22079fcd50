"""The one parser of date filters in query strings (``from``, ``to``, ``received_after``, …).

Every list endpoint reads its time bounds here, so they all accept the same
spellings and refuse the same edge cases with a 400 naming the parameter:

- a date (``2026-11-24``: midnight UTC) or an ISO 8601 date-time; no offset means UTC;
  an unencoded ``+`` of an offset arrives as a space and is read as ``+``;
- the result is an aware UTC datetime between ``MIN_MOMENT`` and ``MAX_MOMENT`` (years
  1000 to 8999: far wider than any record, narrow enough to leave room for arithmetic):
  ``0001-01-01T00:00+14:00`` or ``9999-12-31T23:59-14:00`` cannot even be converted
  to UTC (Python's ``OverflowError``), and bounds near the ends of the calendar break
  any arithmetic after them (a day added to an exclusive end, a previous period);
- NUL bytes and absurd lengths are refused before parsing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MIN_MOMENT = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
MAX_MOMENT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
MOMENT_HELP = "a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 date-time (UTC when no offset is given)"
_SPACED_OFFSET = re.compile(r"T[^ ]* (\d\d:?\d\d)$")


def parse_moment(value: Any, field: str) -> dt.datetime:
    """``value`` as an aware UTC datetime in the supported range, or a 400 naming ``field``."""
    if not isinstance(value, str) or "\x00" in value or len(value) > 64:
        raise serializers.ValidationError({field: [f"Enter {MOMENT_HELP}."]})
    text = value.strip()
    if _SPACED_OFFSET.search(text):
        text = text[: text.rindex(" ")] + "+" + text[text.rindex(" ") + 1:]
    try:
        moment = parse_datetime(text) if "T" in text or " " in text else None
        if moment is None:
            day = parse_date(text)
            moment = dt.datetime.combine(day, dt.time.min) if day is not None else None
    except ValueError:  # well-formed but impossible (2026-02-30, an offset beyond ±24 h)
        moment = None
    if moment is None:
        raise serializers.ValidationError({field: [f"Enter {MOMENT_HELP}."]})
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:
        moment = None
    if moment is None or not MIN_MOMENT <= moment < MAX_MOMENT:
        raise serializers.ValidationError(
            {field: [f"Out of range: use a time from {MIN_MOMENT:%Y-%m-%d} to before {MAX_MOMENT:%Y-%m-%d} (UTC)."]}
        )
    return moment


@extend_schema_field({"type": "string", "description": MOMENT_HELP, "example": "2026-11-24T10:00:00Z"})
class MomentField(serializers.Field):
    """A query-string time bound (``parse_moment``) as a serializer field."""

    def to_internal_value(self, data: Any) -> dt.datetime:
        try:
            return parse_moment(data, self.field_name or "value")
        except serializers.ValidationError as exc:
            detail = exc.detail
            messages = next(iter(detail.values())) if isinstance(detail, dict) else detail
            raise serializers.ValidationError(messages) from None

    def to_representation(self, value: dt.datetime) -> str:
        return value.isoformat()


__all__ = ["MAX_MOMENT", "MIN_MOMENT", "MOMENT_HELP", "MomentField", "parse_moment"]
