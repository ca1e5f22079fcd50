"""The pure rules of rich case content (reviews.content): blocks, media sources, charts, leftovers."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from reviews.content import (
    build_blocks,
    explanation_chart,
    remaining_input,
    validate_decision_fields,
    validate_display,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
MP3_HEAD = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 20
WEBM_HEAD = b"\x1a\x45\xdf\xa3" + b"\x00" * 20


def _tree(value: Any) -> dict[str, Any]:
    return {"kind": "tree", "value": value}


def _blocks(case_input: dict[str, Any], display: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    attachments = kwargs.pop("attachments", {})
    return build_blocks(case_input, validate_display(display), attachment_url=attachments.get,
                        allowed_origins=kwargs.pop("origins", []), tree=_tree)


def _uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def test_every_renderer_builds_its_block() -> None:
    case_input = {
        "t": "Hello world", "spans": [{"start": 6, "end": 11, "label": "who"}, {"start": 99, "end": 120}],
        "long": "line 1\nline 2", "img": _uri("image/png", PNG), "doc": "attachment:doc.pdf",
        "sound": _uri("audio/mpeg", MP3_HEAD), "clip": _uri("video/webm", WEBM_HEAD),
        "chat": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"text": "hello"}]}],
        "rows": [{"a": 1, "b": "x"}, {"a": 2, "c": True}], "kv": {"k": "v", "n": None}, "deep": {"x": [1]},
    }
    display = [
        {"field": "t", "renderer": "text", "highlights": "spans"}, {"field": "long", "renderer": "long_text"},
        {"field": "img", "renderer": "image"}, {"field": "doc", "renderer": "pdf"},
        {"field": "sound", "renderer": "audio"}, {"field": "clip", "renderer": "video"},
        {"field": "chat", "renderer": "chat"}, {"field": "rows", "renderer": "table"},
        {"field": "kv", "renderer": "key_value"}, {"field": "deep", "renderer": "json"},
        {"field": "absent", "renderer": "text"},
    ]
    blocks = {b["field"]: b for b in _blocks(case_input, display,
                                              attachments={"doc.pdf": ("/f/doc.pdf", "application/pdf")})}
    assert blocks["t"]["segments"] == [{"text": "Hello ", "mark": False},
                                       {"text": "world", "mark": True, "label": "who"}]
    assert blocks["img"]["url"].startswith("data:image/png;base64,")
    assert blocks["doc"]["url"] == "/f/doc.pdf"
    assert blocks["sound"]["url"].startswith("data:audio/mpeg;base64,")
    assert blocks["clip"]["url"].startswith("data:video/webm;base64,")
    assert [m["kind"] for m in blocks["chat"]["messages"]] == ["user", "assistant"]
    assert blocks["chat"]["messages"][1]["content"] == "hello"
    assert blocks["rows"]["table"]["columns"] == ["a", "b", "c"]
    assert blocks["rows"]["table"]["rows"][1] == ["2", "", "true"]
    assert blocks["kv"]["pairs"] == [("k", "v"), ("n", "null")]
    assert blocks["deep"]["tree"] == _tree({"x": [1]})
    assert blocks["absent"]["problem"] == "This field is not in the case input."


@pytest.mark.parametrize(("value", "why"), [
    ("javascript:alert(1)", "not a data: URI"),
    (_uri("image/svg+xml", b"<svg onload=alert(1)></svg>"), "not a image type"),
    (_uri("image/png", b"<svg onload=alert(1)></svg>"), "not a image type"),
    ("data:image/png,<svg>", "not base64"),
    ("https://elsewhere.example/x.png", "not on the allow-list"),
    ("//elsewhere.example/x.png", "not a data: URI"),
    ("attachment:missing.png", "has not been uploaded"),
    ("attachment:doc.pdf", "not a image file"),
    (42, "not a text value"),
])
def test_unsafe_or_unknown_media_sources_are_never_emitted(value: Any, why: str) -> None:
    [block] = _blocks({"img": value}, [{"field": "img", "renderer": "image"}],
                      attachments={"doc.pdf": ("/f/doc.pdf", "application/pdf")},
                      origins=["https://cdn.example.org"])
    assert "url" not in block
    assert why in block["problem"]


def test_allow_listed_origin_is_loaded() -> None:
    [block] = _blocks({"img": "https://cdn.example.org/a.png"}, [{"field": "img", "renderer": "image"}],
                      origins=["https://cdn.example.org/"])
    assert block["url"] == "https://cdn.example.org/a.png"


def test_bad_shapes_fall_back_to_the_tree() -> None:
    blocks = _blocks({"c": "not a chat", "t": 5, "k": [1]}, [
        {"field": "c", "renderer": "chat"}, {"field": "t", "renderer": "table"},
        {"field": "k", "renderer": "key_value"}])
    assert all("problem" in b and b["tree"]["kind"] == "tree" for b in blocks)


def test_remaining_input_leaves_out_what_is_shown() -> None:
    case_input = {"a": 1, "doc": {"scan": "x", "pages": 3}, "only": {"x": 1}, "spans": []}
    display = validate_display([{"field": "doc.scan", "renderer": "image"},
                                {"field": "only.x", "renderer": "text", "highlights": "spans"}])
    assert remaining_input(case_input, display) == {"a": 1, "doc": {"pages": 3}}
    assert case_input["doc"] == {"scan": "x", "pages": 3}


def test_explanation_chart_layout() -> None:
    chart = explanation_chart({"reason_codes": [], "attributions": [
        {"feature": "a", "weight": 0.5}, {"feature": "b", "weight": -1.0, "value": None}]})
    assert chart is not None
    first, second = chart["bars"]
    assert first["feature"] == "b" and not first["positive"] and first["x"] == 2.0 and first["width"] == 48.0
    assert second["x"] == 50 and second["width"] == 24.0
    assert first["has_value"] and first["value"] == "None"
    assert explanation_chart(None) is None


def test_validators_name_entries() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_display([{"field": "a", "renderer": "text"}, {"field": "a", "renderer": "image"}])
    assert exc.value.message_dict["display"] == ["entry 2: field a is configured twice."]
    with pytest.raises(ValidationError) as exc:
        validate_decision_fields([{"name": "x", "label": "X", "type": "text", "choices": ["a"]}])
    assert "choices apply to" in exc.value.message_dict["decision_fields"][0]
    assert validate_decision_fields([{"name": "x", "label": " X ", "type": "text"}]) == [
        {"name": "x", "label": "X", "type": "text", "required": False, "max_length": 1000}]
