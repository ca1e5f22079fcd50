"""Audit events as lines of a timeline (the case timeline, the incident page): what, who, before → after, why.

Presentation of the ledger, shared by the floors above it. The ledger does not know
their pages: an app that owns an object type registers how to link to it
(``register_object_link`` in its ``AppConfig.ready``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.dateparse import parse_datetime

from audit.catalogue import ACTIONS
from audit.models import AuditEvent

# Case fields whose values are user ids: shown as user names on the timeline.
USER_FIELDS = frozenset(("claimed_by", "submitted_by", "reviewer"))
VALUE_MAX_CHARS = 300
ISO_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

# object_type of an event → the URL of that object's page, filled by the apps that own the pages.
OBJECT_LINKS: dict[str, Callable[[int], str]] = {}


def register_object_link(object_type: str, link: Callable[[int], str]) -> None:
    """Make timeline entries about ``object_type`` link to ``link(object_id)``."""
    OBJECT_LINKS[object_type] = link


@dataclass
class Change:
    """One field's change: ``old`` → ``new`` (display text)."""

    field: str
    old: str
    new: str


@dataclass
class Entry:
    """One line of a case's timeline: an audit event or a historical change."""

    at: dt.datetime
    kind: str  # "event" or "change"
    order: int
    title: str
    who: str
    who_type: str = ""
    subject: str = ""
    description: str = ""
    changes: list[Change] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    why: str = ""
    seq: int | None = None
    sealed: bool = True
    link: str = ""
    note: str = ""


def text(value: Any, *, users: dict[int, str] | None = None, name: str = "") -> str:
    """A value as the timeline shows it (user ids as names, times in UTC, long text cut)."""
    if value is None or value == "":
        return "—"
    if name in USER_FIELDS and users is not None and isinstance(value, int):
        return users.get(value, f"user #{value}")
    if isinstance(value, str) and ISO_TIME_RE.match(value):
        # Event payloads keep times as canonical text; show them like the history's times.
        parsed = parse_datetime(value)
        value = parsed if parsed is not None else value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        text = ", ".join(str(v) for v in value) or "(none)"
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= VALUE_MAX_CHARS else text[: VALUE_MAX_CHARS - 1] + "…"


def event_entry(event: AuditEvent) -> Entry:
    """A timeline entry of one audit event: action, actor, before → after, the data, the reason."""
    entry = Entry(
        at=event.at, kind="event", order=1, title=event.action, who=event.actor_name or "system",
        who_type=event.actor_type, subject=event.object_label or f"{event.object_type} {event.object_id}",
        description=ACTIONS.get(event.action, ""), why=event.reason, seq=event.seq, sealed=event.seq is not None,
    )
    link = OBJECT_LINKS.get(event.object_type)
    if link is not None and event.object_id.isdigit():
        entry.link = link(int(event.object_id))
    if event.payload is None:
        entry.note = "Payload purged under the retention policy (its hash stays in the chain)."
        return entry
    payload = json.loads(event.payload)
    before, after = payload.get("before") or {}, payload.get("after") or {}
    for name in sorted(set(before) | set(after)):
        entry.changes.append(Change(name, text(before.get(name)), text(after.get(name))))
    for name, value in sorted((payload.get("data") or {}).items()):
        entry.facts.append((name, text(value)))
    return entry
