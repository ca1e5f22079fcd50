"""``manage.py demo_data``: a ready-to-explore portal (people of every role, three AI systems).

Idempotent: what already exists is left as it is, so running it twice changes
nothing. People and systems are created through the services; a month of traffic
ending now is written in bulk with its history rows and audit events
(``reviews.demo_traffic``); then ``demo_data_loaded`` lets the higher floors add
their part (``compliance.demo``: gold items, calibration, training, classification,
obligations, FRIA, an incident, a finished bias audit). All in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.services import record_event
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, MANAGER, REVIEWER
from reviews.demo_content import add_rich_demo
from reviews.demo_traffic import post_demo_traffic
from reviews.models import AISystem, Case, InterventionPoint, ReviewerProfile
from reviews.services.people import reviewer_update, user_create
from reviews.services.systems import intervention_point_create, system_create
from reviews.signals import demo_data_loaded

DEMO_PASSWORD = "hitl-demo-pass"
DEMO_URL = "http://127.0.0.1:8000"  # the default of --base-url (scripts/dev.py passes the port it uses)

# The three demo systems: one per typical EU AI Act situation.
DEMO_SYSTEMS: list[dict[str, Any]] = [
    {
        "slug": "credit-scoring",
        "name": "Credit scoring",
        "purpose": "Scores consumer loan applications for creditworthiness.",
        "provider": "Example Bank risk analytics",
        "role": "deployer",
        "sector": "financial services",
        "declared_tier": "high",
        "annex_iii_area": "5b",
        "labels": ["approve", "reject"],
        "positive_label": "approve",
        "protected_attributes": ["gender", "age_band"],
        "points": [
            {
                "slug": "loan-review",
                "name": "Loan review",
                "stage": "validation",
                "confidence_below": 0.75,
                "always_review_labels": ["reject"],
                "high_stakes": [{"field": "amount", "op": "gt", "value": 10000}],
                "random_sample_rate": 0.05,
                "sla_seconds": 3600,
                "on_sla_breach": "escalate",
                "guidelines": "Check income and obligations against the requested amount; "
                "every rejection needs a human decision and a rationale.",
            }
        ],
    },
    {
        "slug": "content-moderation",
        "name": "Content moderation",
        "purpose": "Classifies user posts flagged by the community.",
        "provider": "Example Social trust & safety",
        "role": "both",
        "sector": "online platforms",
        "declared_tier": "limited",
        "annex_iii_area": "",
        "labels": ["allow", "remove", "age_restrict"],
        "positive_label": "allow",
        "protected_attributes": [],
        "points": [
            {
                "slug": "flagged-content",
                "name": "Flagged content",
                "stage": "validation",
                "confidence_below": 0.6,
                "blind_review_rate": 0.1,
                "sla_seconds": 900,
                "on_sla_breach": "accept_ai",
                "guidelines": "Apply the community standards; age-restrict rather than remove borderline content.",
            }
        ],
    },
    {
        "slug": "remote-biometric-id",
        "name": "Remote biometric identification",
        "purpose": "Matches face images against a watch list (post-event identification).",
        "provider": "Example Vision Ltd",
        "role": "deployer",
        "sector": "law enforcement",
        "declared_tier": "high",
        "annex_iii_area": "1a",
        "labels": ["match", "no_match"],
        "positive_label": "match",
        "protected_attributes": [],
        "points": [
            {
                "slug": "match-verification",
                "name": "Match verification",
                "stage": "validation",
                "reviewers_required": 2,
                "always_review_labels": ["match"],
                "sla_seconds": 600,
                "on_sla_breach": "fail_closed",
                "guidelines": "Two separate verifications (Art. 14(5)); confirm a match only on clear evidence.",
            }
        ],
    },
]
ALL_SLUGS = [system["slug"] for system in DEMO_SYSTEMS]

# (username, role, systems, adjudicator)
DEMO_PEOPLE: list[tuple[str, str, list[str], bool]] = [
    ("officer", COMPLIANCE_OFFICER, [], False),
    ("manager", MANAGER, [], False),
    ("rev1", REVIEWER, ["credit-scoring", "content-moderation"], False),
    ("rev2", REVIEWER, ALL_SLUGS, False),
    ("rev3", REVIEWER, ALL_SLUGS, False),
    ("rev4", REVIEWER, ALL_SLUGS, True),
    ("rev5", REVIEWER, ALL_SLUGS, True),
    # Works content moderation; their required AI-literacy training expired (compliance.demo).
    ("rev6", REVIEWER, ["content-moderation"], False),
    ("integration", INTEGRATION, ALL_SLUGS, False),
]


@dataclass
class Credential:
    """One line of the printed table."""

    username: str
    role: str
    password: str
    note: str = ""


def ensure_admin(*, password: str) -> tuple[User, Credential]:
    """The superuser ``admin`` (the oversight console); created once, with its audit event."""
    existing = User.objects.filter(username="admin").first()
    if existing is not None:
        return existing, Credential("admin", "admin", "(unchanged)", "existing account")
    with transaction.atomic():
        admin = User.objects.create_superuser(username="admin", email="admin@example.org", password=password)
        # No service creates superusers (they are made by operators); the event
        # still goes through the one audit function, in the same transaction.
        record_event(
            "user.created", actor=None, obj=admin, object_label="admin", after={"username": "admin", "role": "admin"}
        )
    return admin, Credential("admin", "admin", password, "superuser: /admin/")


def ensure_demo_systems(*, actor: User) -> list[str]:
    """The three demo AI systems and their intervention points; returns what was created."""
    created: list[str] = []
    for spec in DEMO_SYSTEMS:
        fields = {key: value for key, value in spec.items() if key not in {"slug", "name", "labels", "points"}}
        system = AISystem.objects.filter(slug=spec["slug"]).first()
        if system is None:
            system = system_create(actor=actor, slug=spec["slug"], name=spec["name"], labels=spec["labels"], **fields)
            created.append(system.slug)
        for point_spec in spec["points"]:
            if InterventionPoint.objects.filter(system=system, slug=point_spec["slug"]).exists():
                continue
            rules = {key: value for key, value in point_spec.items() if key not in {"slug", "name"}}
            intervention_point_create(
                actor=actor, system=system, slug=point_spec["slug"], name=point_spec["name"], **rules
            )
            created.append(f"{system.slug}/{point_spec['slug']}")
    return created


def ensure_demo_users(*, actor: User, password: str) -> list[Credential]:
    """One account per role (reviewers rev1..rev6, rev4 and rev5 adjudicators), through ``user_create``."""
    rows: list[Credential] = []
    for username, role, systems, adjudicator in DEMO_PEOPLE:
        if User.objects.filter(username=username).exists():
            rows.append(Credential(username, role, "(unchanged)", "existing account"))
            continue
        user, secret = user_create(actor=actor, username=username, password=password, role=role, systems=systems)
        note = f"systems: {', '.join(systems)}" if systems else ""
        if role == REVIEWER and adjudicator:
            reviewer_update(
                actor=actor,
                profile=ReviewerProfile.objects.get(user=user),
                reason="Demo data: senior reviewer acts as adjudicator.",
                adjudicator=True,
            )
            note = f"adjudicator; {note}"
        if secret:
            note = f"{note}; webhook secret (shown once): {secret}"
        rows.append(Credential(username, role, password, note))
    return rows


class Command(BaseCommand):
    help = "Create demo users (every role) and three AI systems with intervention points. Safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cases",
            type=int,
            default=2000,
            help="Cases of demo traffic to replay over the last 30 days (0: none). Skipped when cases exist.",
        )
        parser.add_argument(
            "--password",
            default=DEMO_PASSWORD,
            help=f"Password for newly created demo accounts (default: {DEMO_PASSWORD}).",
        )
        parser.add_argument("--base-url", default=DEMO_URL, help=f"Where the portal runs (default: {DEMO_URL}).")
        parser.add_argument(
            "--force", action="store_true", help="Allow running with DJANGO_ENV=production (never do this for real)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION and not options["force"]:
            raise CommandError("Refusing to create demo accounts in production (use --force on a throwaway copy).")
        password: str = options["password"]
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(f"--password: {' '.join(exc.messages)}") from exc
        base_url = options["base_url"].rstrip("/")
        # One transaction: a failure leaves no half-built demo behind.
        with transaction.atomic():
            admin, admin_row = ensure_admin(password=password)
            created = ensure_demo_systems(actor=admin)
            rows = [admin_row, *ensure_demo_users(actor=admin, password=password)]
            self.stdout.write(
                self.style.SUCCESS(f"Created: {', '.join(created)}") if created else "Systems already present."
            )
            self.post_traffic(options["cases"])
            if options["cases"] > 0:
                for line in add_rich_demo(actor=admin, integration=User.objects.get(username="integration")):
                    self.stdout.write(f"Demo: {line}")
                for _receiver, lines in demo_data_loaded.send(sender=self.__class__, admin=admin):
                    for line in lines or []:
                        self.stdout.write(f"Demo: {line}")
        self.print_table(rows, base_url)
        self.stdout.write("")
        self.stdout.write(f"Every demo account's password is {password!r} (README, Quickstart).")
        self.stdout.write(
            f"Integrations get an API token with POST {base_url}/api/v1/auth/token/ (username, password)."
        )

    def post_traffic(self, cases: int) -> None:
        """Replay a month of traffic through the services, once (an existing case log is kept)."""
        if cases <= 0:
            return
        if Case.objects.exists():
            self.stdout.write("Cases already present: no demo traffic added.")
            return
        started = time.monotonic()
        reviewers = list(User.objects.filter(username__in=["rev1", "rev2", "rev3"]).order_by("username"))
        report = post_demo_traffic(
            integration=User.objects.get(username="integration"),
            reviewers=reviewers,
            adjudicators=list(User.objects.filter(username__in=["rev4", "rev5"]).order_by("username")),
            points=list(InterventionPoint.objects.filter(system__slug__in=ALL_SLUGS).select_related("system")),
            cases=cases,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo traffic (30 days up to now, written in {time.monotonic() - started:.1f}s): "
                f"{report.ingested} cases ({report.auto_accepted} auto-accepted), "
                f"{report.decisions} decisions, {report.outcomes} ground-truth outcomes, "
                f"{report.left_in_queue} waiting in the queue ({report.escalated_waiting} escalated to adjudicators)."
            )
        )

    def print_table(self, rows: list[Credential], base_url: str) -> None:
        headers = ("username", "role", "password", "notes")
        table = [headers, *((row.username, row.role, row.password, row.note) for row in rows)]
        widths = [max(len(line[column]) for line in table) for column in range(3)]
        self.stdout.write("")
        self.stdout.write(f"Open {base_url}  (admin console: {base_url}/admin/)")
        self.stdout.write("")
        for index, line in enumerate(table):
            cells = [line[column].ljust(widths[column]) for column in range(3)]
            self.stdout.write(("  ".join(cells) + "  " + line[3]).rstrip())
            if index == 0:
                self.stdout.write("  ".join("-" * width for width in widths) + "  " + "-" * 5)
