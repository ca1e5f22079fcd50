"""A JSON parser that refuses what PostgreSQL cannot store.

NUL characters and lone surrogates cannot go into text or jsonb, and NaN /
Infinity are not JSON; letting them through turns bad input into a 500 at the
database. Refused here as a 400 that names the offending field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

# What the body's text must contain for the parsed data to hold anything
# ``find_unstorable`` refuses: a ``\u`` escape (the only way to write a NUL or a lone
# surrogate in valid UTF-8 JSON), a ``NaN``/``Infinity`` literal, or a number that can
# overflow to infinity (an exponent, or 300 digits in a row). Bodies without any of
# these skip the walk over every value; the others are walked as before.
_MAYBE_UNSTORABLE = re.compile(r"\\u|NaN|Infinity|[0-9][eE]|[0-9]{300}")


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "NUL characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Invalid unicode (lone surrogate) is not allowed."
    return None


def find_unstorable(data: Any, path: str = "") -> tuple[str, str] | None:
    """Return ``(field path, message)`` for the first value PostgreSQL cannot store.

    Strings with NUL or lone surrogates, and non-finite numbers (NaN, Infinity,
    1e999), which Python's JSON reader accepts but jsonb and JSON itself do not.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return (path or "non_field_errors", "Must be a finite number (NaN and Infinity are not JSON).")
    if isinstance(data, str):
        problem = _bad_text(data)
        return (path or "non_field_errors", problem) if problem else None
    if isinstance(data, dict):
        for key, value in data.items():
            key_path = f"{path}.{key}" if path else str(key)
            problem = _bad_text(str(key))
            if problem:
                return (path or "non_field_errors", f"Key: {problem}")
            found = find_unstorable(value, key_path)
            if found:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = find_unstorable(value, f"{path}[{index}]" if path else f"[{index}]")
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    """JSON only, UTF-8 only, no NaN, no NUL, no lone surrogates."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if len(raw) > settings.HITL_MAX_BODY_BYTES:
            raise ParseError("Request body too large.")
        try:
            text = raw.decode("utf-8")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        except RecursionError as exc:
            raise ParseError("Malformed JSON: nested too deeply.") from exc
        try:
            found = find_unstorable(data) if _MAYBE_UNSTORABLE.search(text) else None
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply.") from exc
        if found:
            field, message = found
            raise ValidationError({field: [message]})
        return data
