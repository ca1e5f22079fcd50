"""Standing coverage of the audit trail: every catalogued action is emitted, every writing service audits.

(a) Each action of ``audit.catalogue.ACTIONS`` must appear as a string literal in
    the product's source (outside the catalogue and the tests), unless it is
    reserved for later work in ``RESERVED_ACTIONS`` with the issue that will emit it.
(b) Each public function of the service modules that writes (decorated with
    ``transaction.atomic``, or calling ``save``/``delete``/``bulk_create``/...,
    or ``create``/``update`` on a manager or queryset) must call ``record_event`` /
    ``bulk_record_events``, directly or through another function of these modules
    that does, unless ``UNAUDITED_WRITERS`` says why not.
Both allow-lists are checked for staleness: an entry that is no longer needed fails
the test, so the lists only ever shrink to the truth. Later work extends
``SERVICE_MODULES`` with its own service modules.

The rest of this module tests the services that exist so that every action has an
emitter: ``case_reassign`` (``case.reassigned``) and the account services the
console uses (``user_update``, ``user_set_password``, ``user_token_rotate``).
"""

from __future__ import annotations

import ast
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from knox.models import AuthToken

from audit.catalogue import ACTIONS
from audit.models import AuditEvent
from hitl_portal.api.exceptions import Conflict, Forbidden
from reviews.models import Case, CaseStatus
from reviews.services.decisions import decision_record
from reviews.services.people import (
    USER_UPDATED_ACTION,
    user_set_password,
    user_token_rotate,
    user_update,
)
from reviews.services.queue import case_reassign, claim_next
from tests.incidents.incident_helpers import make_case

ROOT = Path(__file__).resolve().parents[2]
# Where product code lives (not tests, migrations, virtualenvs or generated files).
SOURCE_EXCLUDE_DIRS = frozenset({".venv", "tests", "migrations", "node_modules", ".git", "var", "test-artifacts",
                                 "bench", "hitl_portal.egg-info", "static"})
CATALOGUE = ROOT / "audit" / "catalogue.py"

# Actions catalogued ahead of the code that will emit them: action -> the work that will.
# None today: every catalogued action has an emitter.
RESERVED_ACTIONS: dict[str, str] = {}

SERVICE_MODULES = ("reviews/services/*.py", "audit/services.py", "audit/retention.py", "audit/export.py",
                   "compliance/services/*.py", "dashboard/monitoring.py")
RECORDERS = frozenset({"record_event", "bulk_record_events"})
# Calls that always write to the database, whatever they are called on.
WRITE_CALLS = frozenset({"save", "delete", "bulk_create", "bulk_update", "get_or_create", "update_or_create",
                         "bulk_history_create"})
# ``create`` / ``update`` write when called on a manager or queryset (not on a dict or a set).
QUERYSET_WRITE_CALLS = frozenset({"create", "update"})
QUERYSET_HINTS = ("objects", "filter(", "exclude(", "select_for_update(", "history")

# Writers that record no event of their own: "module path:function" -> why that is right.
UNAUDITED_WRITERS: dict[str, str] = {
    "audit/services.py:bulk_record_events": "the recorder itself: it writes the events.",
    "reviews/services/queue.py:hand_back": (
        "the shared step of claim_release and claim_skip; each records its own event (case.released, "
        "case.skipped) in the same transaction."
    ),
    "reviews/services/identity.py:mfa_enrolment_start": (
        "makes an unconfirmed TOTP device that cannot verify anything yet; confirming it records "
        "user.mfa_enrolled (mfa_enrolment_confirm)."
    ),
    "reviews/services/decisions.py:decision_copies_fill": (
        "copies the case's system and AI label onto decisions written without them (during a deploy): "
        "derived values equal to the case's own columns, no change of any decision; the decision's events stand."
    ),
    "reviews/services/tokens.py:purge_expired_tokens": (
        "deletes tokens past their expiry, which already fail authentication; their issue was audited."
    ),
    "reviews/services/common.py:apply_changes": (
        "saves the fields a calling service changes; the caller records the event "
        "(system_update, intervention_point_update)."
    ),
    "reviews/services/webhooks.py:webhooks_enqueue": (
        "queues webhook messages in the transaction whose own events (case.decided, case.auto_accepted) "
        "record the change; each delivery attempt is audited (webhook.delivered / webhook.failed)."
    ),
    "reviews/services/idempotency.py:idempotency_store": (
        "stores the replayable response beside the case it created, in the same transaction as that "
        "case's events; it is a copy of a response, not a change of state."
    ),
    "reviews/services/idempotency.py:idempotency_purge": (
        "housekeeping: deletes replay keys older than their 24 h guarantee; no oversight record changes."
    ),
}


# --- (a) every catalogued action is emitted -----------------------------------------------


def product_sources() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SOURCE_EXCLUDE_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(".py") and path != CATALOGUE:
                yield path


def emitted_actions() -> set[str]:
    """Every catalogued action that appears as a string literal in the product's source."""
    found: set[str] = set()
    for path in product_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ACTIONS:
                found.add(node.value)
    return found


def test_every_catalogued_action_is_emitted_somewhere():
    emitted = emitted_actions()
    missing = sorted(set(ACTIONS) - emitted - set(RESERVED_ACTIONS))
    assert missing == [], f"catalogued actions no code emits (emit them or reserve them): {missing}"


def test_reserved_actions_are_catalogued_and_still_unemitted():
    assert set(RESERVED_ACTIONS) <= set(ACTIONS), "reserved actions must be in the catalogue"
    stale = sorted(set(RESERVED_ACTIONS) & emitted_actions())
    assert stale == [], f"these actions are emitted now: remove them from RESERVED_ACTIONS: {stale}"


# --- (b) every writing service audits --------------------------------------------------------


def _calls(node: ast.AST) -> Iterator[tuple[str, ast.expr | None]]:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Name):
                yield func.id, None
            elif isinstance(func, ast.Attribute):
                yield func.attr, func.value


def _is_atomic(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(ast.unparse(d).split("(")[0] in ("transaction.atomic", "atomic") for d in node.decorator_list)


def writes(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function (its body, nested functions included) writes to the database."""
    if _is_atomic(node):
        return True
    for name, receiver in _calls(node):
        if receiver is None:
            continue
        if name in WRITE_CALLS:
            return True
        if name in QUERYSET_WRITE_CALLS and any(hint in ast.unparse(receiver) for hint in QUERYSET_HINTS):
            return True
    return False


def unaudited_writers(modules: dict[str, str]) -> list[str]:
    """``module:function`` of each public writer that reaches no recorder (``modules``: name -> source)."""
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    by_name: dict[str, list[str]] = {}
    for module, source in modules.items():
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"{module}:{node.name}"
                functions[key] = node
                by_name.setdefault(node.name, []).append(key)
    # Audited: calls a recorder, or (transitively) a function of these modules that does.
    audited: set[str] = set()
    changed = True
    while changed:
        changed = False
        for key, node in functions.items():
            if key in audited:
                continue
            if any(name in RECORDERS or any(k in audited for k in by_name.get(name, ())) for name, _ in _calls(node)):
                audited.add(key)
                changed = True
    return sorted(
        key for key, node in functions.items()
        if not node.name.startswith("_") and key not in audited and writes(node)
    )


def service_sources() -> dict[str, str]:
    sources: dict[str, str] = {}
    for pattern in SERVICE_MODULES:
        for path in sorted(ROOT.glob(pattern)):
            sources[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return sources


def test_every_writing_service_records_an_event():
    found = unaudited_writers(service_sources())
    unexplained = [key for key in found if key not in UNAUDITED_WRITERS]
    assert unexplained == [], (
        "these services change state without an audit event (call record_event, or explain in "
        f"UNAUDITED_WRITERS): {unexplained}"
    )


def test_unaudited_allow_list_is_not_stale():
    found = set(unaudited_writers(service_sources()))
    stale = sorted(set(UNAUDITED_WRITERS) - found)
    assert stale == [], f"no longer unaudited writers (or gone): remove from UNAUDITED_WRITERS: {stale}"


def test_the_analysis_catches_a_silent_write():
    source = textwrap.dedent('''
        from django.db import transaction
        from audit.services import record_event

        @transaction.atomic
        def thing_close(*, actor, thing):
            thing.status = "closed"
            thing.save(update_fields=["status"])

        def thing_rename(*, actor, thing, name):
            Thing.objects.filter(pk=thing.pk).update(name=name)

        def _write(thing):
            thing.save()
            record_event("thing.updated", obj=thing)

        @transaction.atomic
        def thing_touch(*, actor, thing):
            _write(thing)

        def summary(values):
            totals = {}
            totals.update(values)
            seen = set()
            seen.add(1)
            return totals
    ''')
    assert unaudited_writers({"things.py": source}) == ["things.py:thing_close", "things.py:thing_rename"]


# --- Services that give the remaining actions an emitter ----------------------------------


@pytest.mark.django_db
class TestCaseReassign:
    @pytest.fixture
    def setup(self, make_user):
        case = make_case("app-1", confidence=0.6)
        first = make_user("reviewer", "rev1", systems=["credit-scoring"])
        second = make_user("reviewer", "rev2", systems=["credit-scoring"])
        admin = make_user("admin", "root")
        return case, first, second, admin

    def test_assign_a_queued_case(self, setup):
        case, _first, second, admin = setup
        case = case_reassign(actor=admin, case=case, reviewer=second, reason="rev2 knows this applicant type.")
        assert (case.status, case.claimed_by, case.lease_expires_at is not None) == ("claimed", second, True)
        event = AuditEvent.objects.get(action="case.reassigned")
        assert (event.actor_name, event.case_id, event.reason) == ("root", case.pk, "rev2 knows this applicant type.")
        assert '"claimed_by":"rev2"' in event.payload
        assert case.history.first().history_user == admin

    def test_move_a_held_case_and_unassign(self, setup):
        case, first, second, admin = setup
        assert claim_next(reviewer=first).pk == case.pk
        case = case_reassign(actor=admin, case=case, reviewer=second, reason="rev1 is on leave.")
        assert case.claimed_by == second
        case = case_reassign(actor=admin, case=case, reason="Back to the queue.")
        assert (case.status, case.claimed_by) == (CaseStatus.QUEUED, None)
        assert AuditEvent.objects.filter(action="case.reassigned").count() == 2

    def test_refusals(self, setup, make_user):
        case, first, second, admin = setup
        with pytest.raises(ValidationError) as excinfo:
            case_reassign(actor=admin, case=case, reviewer=second, reason=" ")
        assert "reason" in excinfo.value.message_dict
        with pytest.raises(Conflict):
            case_reassign(actor=admin, case=case, reason="Nobody holds it.")
        outsider = make_user("reviewer", "rev3", systems=[])
        with pytest.raises(Forbidden):
            case_reassign(actor=admin, case=case, reviewer=outsider, reason="Not qualified.")
        claimed = claim_next(reviewer=first)
        decision_record(reviewer=first, case=claimed, outcome="approve", label=None, rationale="")
        with pytest.raises(Conflict):
            case_reassign(actor=admin, case=Case.objects.get(pk=case.pk), reviewer=second, reason="Decided.")
        assert not AuditEvent.objects.filter(action="case.reassigned").exists()


@pytest.mark.django_db
def test_account_services_record_their_events(make_user):
    admin = make_user("admin", "root")
    user = make_user("manager", "mgr1")
    user_update(actor=admin, user=user, changes={"email": "m@example.org", "is_active": True},
                role="compliance_officer", reason="Promoted.")
    user.refresh_from_db()
    assert user.email == "m@example.org"
    assert list(user.groups.values_list("name", flat=True)) == ["compliance_officer"]
    event = AuditEvent.objects.filter(action=USER_UPDATED_ACTION).get()
    assert (event.actor_name, event.object_type, event.reason) == ("root", "user", "Promoted.")
    assert '"role":"manager"' in event.payload and '"email":"m@example.org"' in event.payload
    assert '"is_active"' not in event.payload  # unchanged fields are not recorded

    # Nothing changed: nothing recorded.
    user_update(actor=admin, user=user, changes={"email": "m@example.org"}, role="compliance_officer")
    assert AuditEvent.objects.filter(action=USER_UPDATED_ACTION).count() == 1
    with pytest.raises(ValidationError) as excinfo:
        user_update(actor=admin, user=user, changes={"password": "x"})
    assert "password" in excinfo.value.message_dict

    user_set_password(actor=admin, user=user, password="another-pass-word-456")
    user.refresh_from_db()
    assert user.check_password("another-pass-word-456")
    latest = AuditEvent.objects.filter(action=USER_UPDATED_ACTION).order_by("-id").first()
    assert '"password":"changed"' in latest.payload and "another-pass" not in latest.payload

    old_row, old = AuthToken.objects.create(user=user)
    new_row, new = user_token_rotate(actor=admin, user=user, reason="Key leaked in a log.")
    assert new != old and not AuthToken.objects.filter(digest=old_row.digest).exists()
    assert AuthToken.objects.filter(user=user).get().digest == new_row.digest
    rotated = AuditEvent.objects.get(action="user.token_issued")
    assert rotated.actor_name == "root" and old not in rotated.payload and new not in rotated.payload
