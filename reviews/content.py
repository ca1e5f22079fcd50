"""Rich case content: display configurations, explanations, custom decision fields, attachment types.

Pure functions, no database: the API serializers, the services and the workbench
all validate through these, so the page and the API can never disagree.

- A **display configuration** (``InterventionPoint.display``) maps dotted paths
  of a case's input to renderers: ``[{"field": "scan", "renderer": "image",
  "label": "X-ray"}, ...]``. ``build_blocks`` turns a case input into template
  nodes; the templates escape every value (Django's autoescape), and URLs are
  only ever emitted when they are a raster-image/PDF/media ``data:`` URI, a
  permission-checked attachment link or an allow-listed remote origin.
- An **explanation** (``prediction.explanation``) holds reason codes and feature
  attributions ``[{feature, value?, weight}]``; ``explanation_chart`` lays out
  the bar chart (server-rendered SVG, no script, no ``style`` attributes).
- **Decision fields** (``InterventionPoint.decision_fields``) are the custom
  review form; ``clean_form_values`` validates answers, naming each field as
  ``form_values.<name>``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

# --- shared limits ----------------------------------------------------------------------

FIELD_PATH_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
FIELD_PATH_MAX = 200
LABEL_MAX = 200

RENDERERS: dict[str, str] = {
    "text": "Text (optionally with highlighted spans)",
    "long_text": "Long text",
    "image": "Image",
    "pdf": "PDF document",
    "audio": "Audio",
    "video": "Video",
    "chat": "Chat transcript (role/content messages)",
    "table": "Table (list of rows)",
    "key_value": "Key-value pairs",
    "json": "JSON tree",
}
DISPLAY_MAX_ITEMS = 50
DISPLAY_KEYS = frozenset(("field", "renderer", "label", "highlights"))

FIELD_TYPES: dict[str, str] = {
    "single_choice": "Single choice",
    "multi_choice": "Multiple choice",
    "number": "Number",
    "text": "Free text",
}
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
DECISION_FIELDS_MAX = 20
CHOICES_MAX = 50
CHOICE_MAX_LENGTH = 100
TEXT_MAX_LENGTH = 10_000
TEXT_DEFAULT_MAX_LENGTH = 1000
HELP_MAX = 500
DECISION_FIELD_KEYS = frozenset(("name", "label", "type", "required", "choices", "min", "max", "max_length", "help"))

EXPLANATION_MAX_ATTRIBUTIONS = 100
EXPLANATION_MAX_REASON_CODES = 50
REASON_CODE_MAX = 200
FEATURE_MAX = 200
FEATURE_VALUE_MAX = 1000
ATTRIBUTION_KEYS = frozenset(("feature", "value", "weight"))

# Rendering bounds: a huge input must not produce a huge page.
TABLE_MAX_ROWS = 200
TABLE_MAX_COLUMNS = 30
CHAT_MAX_MESSAGES = 500
CHART_MAX_BARS = 15

ATTACHMENT_PREFIX = "attachment:"
ATTACHMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters"
    return None


# --- display configuration -------------------------------------------------------------


def validate_display(value: Any) -> list[dict[str, Any]]:
    """The display configuration, normalised; ``ValidationError({"display": [...]})`` naming the item."""
    if not isinstance(value, list):
        raise ValidationError({"display": ["Must be a list of {field, renderer, label?, highlights?} objects."]})
    if len(value) > DISPLAY_MAX_ITEMS:
        raise ValidationError({"display": [f"At most {DISPLAY_MAX_ITEMS} entries."]})
    errors: list[str] = []
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"entry {index + 1}"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object.")
            continue
        unknown = sorted(str(key) for key in item if key not in DISPLAY_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown[:10])}.")
            continue
        field, renderer = item.get("field"), item.get("renderer")
        if not isinstance(field, str) or len(field) > FIELD_PATH_MAX or not FIELD_PATH_RE.match(field):
            errors.append(f'{where}: field must be a dotted path into the input, e.g. "documents.scan".')
            continue
        if field in seen:
            errors.append(f"{where}: field {field} is configured twice.")
            continue
        if renderer not in RENDERERS:
            errors.append(f"{where}: renderer must be one of {', '.join(RENDERERS)}.")
            continue
        entry: dict[str, Any] = {"field": field, "renderer": renderer}
        label = item.get("label")
        if label not in (None, ""):
            if not isinstance(label, str) or len(label) > LABEL_MAX or _bad_text(label):
                errors.append(f"{where}: label must be text of at most {LABEL_MAX} characters.")
                continue
            entry["label"] = label
        highlights = item.get("highlights")
        if highlights not in (None, ""):
            if renderer != "text":
                errors.append(f"{where}: highlights apply to the text renderer only.")
                continue
            if not isinstance(highlights, str) or len(highlights) > FIELD_PATH_MAX or not FIELD_PATH_RE.match(
                highlights
            ):
                errors.append(f"{where}: highlights must be a dotted path to a list of {{start, end, label?}}.")
                continue
            entry["highlights"] = highlights
        seen.add(field)
        cleaned.append(entry)
    if errors:
        raise ValidationError({"display": errors})
    return cleaned


# --- decision fields (custom review form) --------------------------------------------------


def validate_decision_fields(value: Any) -> list[dict[str, Any]]:
    """The extra decision fields, normalised; ``ValidationError({"decision_fields": [...]})``."""
    if not isinstance(value, list):
        raise ValidationError({"decision_fields": ["Must be a list of field definitions."]})
    if len(value) > DECISION_FIELDS_MAX:
        raise ValidationError({"decision_fields": [f"At most {DECISION_FIELDS_MAX} fields."]})
    errors: list[str] = []
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, item in enumerate(value):
        where = f"field {index + 1}"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object.")
            continue
        unknown = sorted(str(key) for key in item if key not in DECISION_FIELD_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown[:10])}.")
            continue
        problem, entry = _decision_field(item)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        if entry["name"] in names:
            errors.append(f"{where}: the name {entry['name']} is used twice.")
            continue
        names.add(entry["name"])
        cleaned.append(entry)
    if errors:
        raise ValidationError({"decision_fields": errors})
    return cleaned


def _decision_field(item: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    name, label, kind = item.get("name"), item.get("label"), item.get("type")
    if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
        return "name must be 1-50 lower-case letters, digits or _, starting with a letter.", {}
    if not isinstance(label, str) or not label.strip() or len(label) > LABEL_MAX or _bad_text(label):
        return f"label must be non-empty text of at most {LABEL_MAX} characters.", {}
    if kind not in FIELD_TYPES:
        return f"type must be one of {', '.join(FIELD_TYPES)}.", {}
    required = item.get("required", False)
    if not isinstance(required, bool):
        return "required must be true or false.", {}
    entry: dict[str, Any] = {"name": name, "label": label.strip(), "type": kind, "required": required}
    help_text = item.get("help")
    if help_text not in (None, ""):
        if not isinstance(help_text, str) or len(help_text) > HELP_MAX or _bad_text(help_text):
            return f"help must be text of at most {HELP_MAX} characters.", {}
        entry["help"] = help_text
    choices = item.get("choices")
    if kind in ("single_choice", "multi_choice"):
        if not isinstance(choices, list) or not choices or len(choices) > CHOICES_MAX:
            return f"choices must be a list of 1 to {CHOICES_MAX} options.", {}
        if not all(isinstance(c, str) and c.strip() and len(c) <= CHOICE_MAX_LENGTH and not _bad_text(c)
                   for c in choices):
            return f"choices must be non-empty texts of at most {CHOICE_MAX_LENGTH} characters.", {}
        if len(set(choices)) != len(choices):
            return "choices must not repeat.", {}
        entry["choices"] = list(choices)
    elif choices is not None:
        return "choices apply to single_choice and multi_choice only.", {}
    low, high = item.get("min"), item.get("max")
    if kind == "number":
        for key, bound in (("min", low), ("max", high)):
            if bound is not None and not _is_number(bound):
                return f"{key} must be a finite number.", {}
        if low is not None and high is not None and low > high:
            return "min must not be above max.", {}
        if low is not None:
            entry["min"] = low
        if high is not None:
            entry["max"] = high
    elif low is not None or high is not None:
        return "min and max apply to number fields only.", {}
    max_length = item.get("max_length")
    if kind == "text":
        if max_length is None:
            max_length = TEXT_DEFAULT_MAX_LENGTH
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= TEXT_MAX_LENGTH:
            return f"max_length must be a whole number from 1 to {TEXT_MAX_LENGTH}.", {}
        entry["max_length"] = max_length
    elif max_length is not None:
        return "max_length applies to text fields only.", {}
    return None, entry


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def clean_form_values(specs: list[dict[str, Any]], values: Any, *, require: bool) -> dict[str, Any]:
    """Answers to the decision fields, checked against ``specs``; empty answers are left out.

    ``require``: whether required fields must be answered (a final verdict), or
    only checked when given (an escalation hands the case to someone else).
    Errors name each field as ``form_values.<name>``.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValidationError({"form_values": ["Must be an object of {name: value}."]})
    by_name = {spec["name"]: spec for spec in specs}
    errors: dict[str, list[str]] = {}
    for key in values:
        if key not in by_name:
            errors[f"form_values.{key}"[:120]] = ["Unknown field."]
    cleaned: dict[str, Any] = {}
    for spec in specs:
        name = spec["name"]
        value = values.get(name)
        if _empty(value):
            if require and spec.get("required"):
                errors[f"form_values.{name}"] = ["This field is required."]
            continue
        problem = _answer_problem(spec, value)
        if problem:
            errors[f"form_values.{name}"] = [problem]
            continue
        cleaned[name] = float(value) if spec["type"] == "number" and isinstance(value, float) else value
    if errors:
        raise ValidationError(errors)
    return cleaned


def _answer_problem(spec: dict[str, Any], value: Any) -> str | None:
    kind = spec["type"]
    if kind == "single_choice":
        if not isinstance(value, str) or value not in spec["choices"]:
            return f"Must be one of: {', '.join(spec['choices'])}."
    elif kind == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "Must be a list of options."
        if len(set(value)) != len(value):
            return "Options must not repeat."
        unknown = [v for v in value if v not in spec["choices"]]
        if unknown:
            return f"Not an option: {', '.join(unknown[:5])}."
    elif kind == "number":
        if not _is_number(value):
            return "Must be a number."
        if "min" in spec and value < spec["min"]:
            return f"Must be at least {spec['min']}."
        if "max" in spec and value > spec["max"]:
            return f"Must be at most {spec['max']}."
    elif kind == "text":
        if not isinstance(value, str):
            return "Must be text."
        if _bad_text(value):
            return "Must not contain NUL characters."
        if len(value) > spec.get("max_length", TEXT_DEFAULT_MAX_LENGTH):
            return f"At most {spec.get('max_length', TEXT_DEFAULT_MAX_LENGTH)} characters."
    return None


def form_values_text(specs: list[dict[str, Any]], values: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, answer)`` pairs for pages, in the order of the specs (answers of removed fields last)."""
    pairs: list[tuple[str, str]] = []
    known = set()
    for spec in specs:
        known.add(spec["name"])
        if spec["name"] in values:
            pairs.append((spec["label"], _answer_text(values[spec["name"]])))
    pairs.extend((name, _answer_text(value)) for name, value in values.items() if name not in known)
    return pairs


def _answer_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- explanations ----------------------------------------------------------------------------


def validate_explanation(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(normalised, None)`` or ``(None, problem)``.

    Accepted: a list of attributions ``{feature, value?, weight}`` and/or reason
    codes (strings), or an object ``{reason_codes?: [str], attributions?: [...]}``.
    Stored as ``{"reason_codes": [...], "attributions": [...]}``; empty → null.
    """
    if value is None:
        return None, None
    reason_codes: list[Any]
    attributions: list[Any]
    if isinstance(value, list):
        reason_codes = [item for item in value if isinstance(item, str)]
        attributions = [item for item in value if not isinstance(item, str)]
    elif isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in ("reason_codes", "attributions"))
        if unknown:
            return None, f"Unknown key(s): {', '.join(unknown[:10])} (expected reason_codes, attributions)."
        reason_codes = value.get("reason_codes") or []
        attributions = value.get("attributions") or []
        if not isinstance(reason_codes, list):
            return None, "reason_codes must be a list of strings."
        if not isinstance(attributions, list):
            return None, "attributions must be a list of {feature, value?, weight}."
    else:
        return None, "Must be a list of {feature, value?, weight} and/or reason codes, or an object."
    if len(reason_codes) > EXPLANATION_MAX_REASON_CODES:
        return None, f"At most {EXPLANATION_MAX_REASON_CODES} reason codes."
    if len(attributions) > EXPLANATION_MAX_ATTRIBUTIONS:
        return None, f"At most {EXPLANATION_MAX_ATTRIBUTIONS} attributions."
    for code in reason_codes:
        if not isinstance(code, str) or not code.strip() or len(code) > REASON_CODE_MAX or _bad_text(code):
            return None, f"Reason codes must be non-empty strings of at most {REASON_CODE_MAX} characters."
    cleaned: list[dict[str, Any]] = []
    for index, item in enumerate(attributions):
        where = f"attribution {index + 1}"
        if not isinstance(item, dict):
            return None, f"{where}: must be an object {{feature, value?, weight}}."
        unknown = sorted(str(key) for key in item if key not in ATTRIBUTION_KEYS)
        if unknown:
            return None, f"{where}: unknown key(s) {', '.join(unknown[:10])}."
        feature, weight = item.get("feature"), item.get("weight")
        if not isinstance(feature, str) or not feature.strip() or len(feature) > FEATURE_MAX or _bad_text(feature):
            return None, f"{where}: feature must be a non-empty string of at most {FEATURE_MAX} characters."
        if not _is_number(weight):
            return None, f"{where}: weight must be a finite number."
        entry: dict[str, Any] = {"feature": feature, "weight": weight}
        if "value" in item:
            shown = item["value"]
            if isinstance(shown, str):
                if len(shown) > FEATURE_VALUE_MAX or _bad_text(shown):
                    return None, f"{where}: value must be at most {FEATURE_VALUE_MAX} characters."
            elif not (shown is None or isinstance(shown, bool) or _is_number(shown)):
                return None, f"{where}: value must be a string, number, boolean or null."
            entry["value"] = shown
        cleaned.append(entry)
    if not reason_codes and not cleaned:
        return None, None
    return {"reason_codes": list(reason_codes), "attributions": cleaned}, None


def explanation_chart(explanation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The attributions as a diverging bar chart laid out for an inline SVG (largest |weight| first).

    Coordinates are in a 0-100 wide viewBox with the zero line at 50, so bars
    need no ``style`` attribute (the CSP forbids them) and scale with the card.
    """
    if not explanation:
        return None
    attributions = sorted(explanation.get("attributions") or [], key=lambda a: -abs(a["weight"]))
    shown = attributions[:CHART_MAX_BARS]
    biggest = max((abs(a["weight"]) for a in shown), default=0) or 1
    row = 10
    bars = []
    for index, item in enumerate(shown):
        weight = item["weight"]
        width = round(abs(weight) / biggest * 48, 2)
        bars.append({
            "feature": item["feature"],
            "value": None if "value" not in item else _answer_text(item["value"]),
            "has_value": "value" in item,
            "weight": weight,
            "positive": weight >= 0,
            "x": 50 if weight >= 0 else round(50 - width, 2),
            "y": index * row + 1,
            "width": max(width, 0.4),
            "text_y": index * row + 7,
        })
    return {
        "bars": bars,
        "height": len(bars) * row + 2,
        "hidden": len(attributions) - len(shown),
        "reason_codes": list(explanation.get("reason_codes") or []),
    }


# --- attachments -----------------------------------------------------------------------------

# (content type, test on the first bytes). Order matters only for readability: the
# signatures do not overlap. SVG and HTML are deliberately absent (they can carry script).
_SIGNATURES: list[tuple[str, Callable[[bytes], bool]]] = [
    ("image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    ("image/gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),
    ("image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("application/pdf", lambda b: b.startswith(b"%PDF-")),
    ("audio/wav", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WAVE"),
    ("audio/ogg", lambda b: b.startswith(b"OggS")),
    ("audio/mpeg", lambda b: b.startswith(b"ID3") or (len(b) > 1 and b[0] == 0xFF and b[1] & 0xE0 == 0xE0)),
    ("video/webm", lambda b: b.startswith(b"\x1a\x45\xdf\xa3")),
    ("video/mp4", lambda b: b[4:8] == b"ftyp"),
]
SNIFF_BYTES = 16

# Declared types that say nothing (the sniffed type decides).
_GENERIC_TYPES = frozenset(("", "application/octet-stream", "binary/octet-stream"))
# Declared aliases of a sniffed type.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-wav": "audio/wav",
            "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg", "application/x-pdf": "application/pdf"}


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes (``None``: not a type we recognise)."""
    for content_type, test in _SIGNATURES:
        if test(head):
            return content_type
    return None


def declared_type_matches(declared: str, sniffed: str) -> bool:
    """Whether the client's declared type agrees with the sniffed one (generic types always do)."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared in _GENERIC_TYPES:
        return True
    return _ALIASES.get(declared, declared) == sniffed


# --- building the blocks the workbench renders -----------------------------------------------


_MISSING = object()


def resolve_path(data: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or ``_MISSING``."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


_DATA_URI_RE = re.compile(r"^data:([a-z0-9.+-]+/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)$", re.IGNORECASE)
# The media types a data: URI may carry per renderer; decoded and sniffed before use.
_DATA_URI_TYPES = {
    "image": frozenset(("image/png", "image/jpeg", "image/gif", "image/webp")),
    "pdf": frozenset(("application/pdf",)),
    "audio": frozenset(("audio/mpeg", "audio/wav", "audio/ogg")),
    "video": frozenset(("video/mp4", "video/webm")),
}


def _media_source(
    value: Any, renderer: str, *, attachment_url: Callable[[str], tuple[str, str] | None],
    allowed_origins: list[str],
) -> tuple[str | None, str]:
    """``(url, "")`` for something the page may load, or ``(None, why not)``.

    A ``data:`` URI is decoded and sniffed: its bytes must really be a type of
    this renderer (an SVG or HTML payload is refused whatever it claims). An
    attachment must exist and have a type of this renderer. A remote URL must be
    https (or http) on an allow-listed origin. Anything else (``javascript:``,
    relative URLs, other origins) is never emitted as a URL.
    """
    if not isinstance(value, str) or not value:
        return None, "not a text value"
    allowed = _DATA_URI_TYPES[renderer]
    if value.startswith(ATTACHMENT_PREFIX):
        name = value[len(ATTACHMENT_PREFIX):]
        found = attachment_url(name) if ATTACHMENT_NAME_RE.match(name) else None
        if found is None:
            return None, f"attachment {name!r} has not been uploaded"
        url, content_type = found
        if content_type not in allowed:
            return None, f"attachment {name!r} is {content_type}, not a {renderer} file"
        return url, ""
    if value[:5].lower() == "data:":
        match = _DATA_URI_RE.match(value)
        if not match:
            return None, "a data: URI that is not base64"
        try:
            head = base64.b64decode(re.sub(r"\s+", "", match.group(2))[:64] + "==", validate=False)
        except (binascii.Error, ValueError):
            return None, "a data: URI that does not decode"
        sniffed = sniff(head[:SNIFF_BYTES])
        if sniffed not in allowed:
            return None, f"a data: URI whose content is not a {renderer} type this page shows"
        payload = re.sub(r"\s+", "", match.group(2))
        return f"data:{sniffed};base64,{payload}", ""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin in {o.rstrip("/").lower() for o in allowed_origins}:
            return value, ""
        return None, f"remote URL from {origin}, which is not on the allow-list (HITL_MEDIA_ALLOWED_ORIGINS)"
    return None, "not a data: URI, an attachment or an allow-listed URL"


def _text_segments(text: str, spans: Any) -> list[dict[str, Any]]:
    """``text`` split at the highlighted spans (offsets in characters; bad spans ignored)."""
    good: list[tuple[int, int, str]] = []
    if isinstance(spans, list):
        for span in spans[:500]:
            if not isinstance(span, dict):
                continue
            start, end = span.get("start"), span.get("end")
            if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(
                end, int
            ):
                continue
            if 0 <= start < end <= len(text):
                label = span.get("label")
                good.append((start, end, label if isinstance(label, str) else ""))
    good.sort()
    segments: list[dict[str, Any]] = []
    cursor = 0
    for start, end, label in good:
        if start < cursor:
            continue  # overlapping spans: the first one wins
        if start > cursor:
            segments.append({"text": text[cursor:start], "mark": False})
        segments.append({"text": text[start:end], "mark": True, "label": label[:100]})
        cursor = end
    if cursor < len(text):
        segments.append({"text": text[cursor:], "mark": False})
    return segments


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _table(value: Any) -> tuple[dict[str, Any] | None, str]:
    """A list of objects (or of lists) as columns and rows."""
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        declared = value.get("columns")
        rows = value["rows"]
        if isinstance(declared, list) and all(isinstance(c, str) for c in declared):
            body = [[_scalar(cell) for cell in row[:TABLE_MAX_COLUMNS]] if isinstance(row, list)
                    else [_scalar(row.get(c)) if isinstance(row, dict) else _scalar(row) for c in declared]
                    for row in rows[:TABLE_MAX_ROWS]]
            more = max(0, len(rows) - TABLE_MAX_ROWS)
            return {"columns": declared[:TABLE_MAX_COLUMNS], "rows": body, "more": more}, ""
        value = rows
    if not isinstance(value, list):
        return None, "not a list of rows"
    rows = value[:TABLE_MAX_ROWS]
    if all(isinstance(row, dict) for row in rows):
        columns: list[str] = []
        for row in rows:
            for key in row:
                if key not in columns and len(columns) < TABLE_MAX_COLUMNS:
                    columns.append(str(key))
        body = [[_scalar(row.get(c, "")) if c in row else "" for c in columns] for row in rows]
    elif all(isinstance(row, list) for row in rows):
        columns = []
        body = [[_scalar(cell) for cell in row[:TABLE_MAX_COLUMNS]] for row in rows]
    else:
        return None, "rows must all be objects or all be lists"
    return {"columns": columns, "rows": body, "more": max(0, len(value) - TABLE_MAX_ROWS)}, ""


def _chat(value: Any) -> tuple[list[dict[str, str]] | None, str]:
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if not isinstance(value, list):
        return None, "not a list of {role, content} messages"
    messages = []
    for item in value[:CHAT_MAX_MESSAGES]:
        if not isinstance(item, dict) or "content" not in item:
            return None, "every message needs a role and a content"
        role = _scalar(item.get("role", "unknown"))[:40]
        content = item["content"]
        if isinstance(content, list):
            # Multi-part messages (OpenAI style): their text parts.
            content = "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
        kind = role.lower() if role.lower() in ("user", "assistant", "system", "tool") else "other"
        messages.append({"role": role, "content": _scalar(content), "kind": kind})
    return messages, ""


def build_blocks(
    case_input: Any,
    display: list[dict[str, Any]],
    *,
    attachment_url: Callable[[str], tuple[str, str] | None],
    allowed_origins: list[str],
    tree: Callable[[Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One template node per configured field: ``{renderer, label, field, ...}`` or a problem.

    ``attachment_url(name)`` gives ``(url, content_type)`` of an uploaded
    attachment; ``tree(value)`` builds the generic readable view (JSON tree).
    """
    blocks = []
    for entry in display:
        field, renderer = entry["field"], entry["renderer"]
        block: dict[str, Any] = {"field": field, "renderer": renderer, "label": entry.get("label") or field}
        value = resolve_path(case_input, field)
        if value is _MISSING:
            block["problem"] = "This field is not in the case input."
            blocks.append(block)
            continue
        if renderer in ("text", "long_text"):
            text = _scalar(value)
            spans = resolve_path(case_input, entry["highlights"]) if entry.get("highlights") else None
            block["segments"] = _text_segments(text, spans) if spans not in (None, _MISSING) else [
                {"text": text, "mark": False}]
            block["marked"] = any(s["mark"] for s in block["segments"])
        elif renderer in _DATA_URI_TYPES:
            url, why = _media_source(value, renderer, attachment_url=attachment_url, allowed_origins=allowed_origins)
            if url is None:
                block["problem"] = f"Not shown: {why}."
                block["raw"] = _scalar(value)[:200]
            else:
                block["url"] = url
        elif renderer == "chat":
            messages, why = _chat(value)
            if messages is None:
                block["problem"] = f"Not shown as a chat: {why}."
                block["tree"] = tree(value)
            else:
                block["messages"] = messages
        elif renderer == "table":
            table, why = _table(value)
            if table is None:
                block["problem"] = f"Not shown as a table: {why}."
                block["tree"] = tree(value)
            else:
                block["table"] = table
        elif renderer == "key_value":
            if isinstance(value, dict):
                block["pairs"] = [(str(k), _scalar(v)) for k, v in list(value.items())[:TABLE_MAX_ROWS]]
            else:
                block["problem"] = "Not shown as key-value pairs: not an object."
                block["tree"] = tree(value)
        else:  # json
            block["tree"] = tree(value)
        blocks.append(block)
    return blocks


def remaining_input(case_input: Any, display: list[dict[str, Any]]) -> Any:
    """The input without the fields the configuration shows (so nothing is shown twice or hidden)."""
    if not isinstance(case_input, dict):
        return case_input
    rest = copy.deepcopy(case_input)
    paths = [entry["field"] for entry in display] + [e["highlights"] for e in display if e.get("highlights")]
    for path in paths:
        parts = path.split(".")
        parents = [rest]
        for part in parts[:-1]:
            nxt = parents[-1].get(part) if isinstance(parents[-1], dict) else None
            if not isinstance(nxt, dict):
                break
            parents.append(nxt)
        else:
            parents[-1].pop(parts[-1], None)
            # Drop containers the removal left empty.
            for depth in range(len(parents) - 1, 0, -1):
                if not parents[depth]:
                    parents[depth - 1].pop(parts[depth - 1], None)
    return rest
