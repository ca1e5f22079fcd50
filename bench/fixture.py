"""Set up the benchmark's accounts and rules through the portal's own services.

Run by ``bench/pipeline.py`` in a subprocess whose ``DATABASE_URL`` points at
the freshly migrated benchmark database (never at a real one). Prints one JSON
line on stdout: the API tokens and the slugs the clients need.

The system routes on ``confidence_below = 0.5``; the benchmark draws confidences
uniformly from [0, 1), so about half of the cases are routed to humans.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")

SYSTEM = "bench-credit"
POINT = "loan-review"
LABELS = ["approve", "reject"]


def main(reviewers: int) -> dict[str, object]:
    import django

    django.setup()
    from django.conf import settings

    if not settings.IS_POSTGRES or not settings.DATABASES["default"]["NAME"].startswith("hitl_bench_"):
        raise SystemExit("bench/fixture.py only runs against a hitl_bench_* PostgreSQL database")
    # These accounts authenticate with tokens only; a cheap hasher saves seconds of
    # PBKDF2 per account in this throwaway database (the running server is unaffected).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    from django.contrib.auth.models import User
    from knox.models import AuthToken

    from reviews.services.people import training_record_add, user_create
    from reviews.services.systems import intervention_point_create, system_create

    password = "bench-pass-word-123"
    admin = User.objects.create_superuser(username="bench-admin", password=password, email="bench@example.org")
    system = system_create(
        actor=admin, slug=SYSTEM, name="Bench credit scoring", labels=LABELS,
        purpose="Consumer credit decisions (benchmark fixture)", provider="Bench Ltd", role="deployer",
        sector="finance", declared_tier="high", annex_iii_area="5b", positive_label="approve",
        protected_attributes=["gender", "age_band"],
    )
    intervention_point_create(
        actor=admin, system=system, slug=POINT, name="Loan review", stage="validation",
        confidence_below=0.5, sla_seconds=86400, on_sla_breach="escalate",
    )
    integration, _secret = user_create(
        actor=admin, username="bench-integration", password=password, role="integration",
        systems=[SYSTEM], validate=False,
    )
    reviewer_tokens = []
    for index in range(reviewers):
        reviewer, _ = user_create(
            actor=admin, username=f"bench-rev{index + 1}", password=password, role="reviewer",
            systems=[SYSTEM], validate=False,
        )
        # Every system requires AI literacy (Art. 4) by default: bench reviewers hold it.
        training_record_add(actor=admin, profile=reviewer.reviewer_profile, title="AI literacy",
                               completed_at=dt.date.today())
        reviewer_tokens.append(AuthToken.objects.create(user=reviewer, expiry=None)[1])
    return {
        "system": SYSTEM,
        "intervention_point": POINT,
        "labels": LABELS,
        "admin_token": AuthToken.objects.create(user=admin, expiry=None)[1],
        "integration_token": AuthToken.objects.create(user=integration, expiry=None)[1],
        "reviewer_tokens": reviewer_tokens,
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    print(json.dumps(main(count)))
