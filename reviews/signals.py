"""What the review pipeline announces to the floors above it (they connect receivers in ``ready()``)."""

from django.dispatch import Signal

# The fields of a system that decide which obligations apply (tier, role, Annex III area, ...).
PROFILE_FIELDS = frozenset({
    "declared_tier", "classified_tier", "classification_rationale", "role", "annex_iii_area", "is_public_body",
})

# Sent inside the transaction that registered a system or changed one of PROFILE_FIELDS.
# Arguments: ``system`` (the AISystem), ``actor`` (a user or None), ``fields`` (the changed
# field names; every profile field on registration). The compliance workspace re-syncs
# the system's obligations, so a system declared high-risk through the API has them at once.
system_profile_changed = Signal()

# Sent by ``manage.py demo_data`` once the demo people, systems and traffic exist (inside
# its transaction), with ``admin=<User>``. Receivers (compliance.demo) add the governance
# demo and return a list of lines for the printed summary.
demo_data_loaded = Signal()
