"""The one catalogue of audit actions.

``record_event`` refuses any action not listed here, so a new kind of state
change must be named (and described) before it can be recorded. Register new
actions with ``register_action``, which refuses duplicates.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {}


def register_action(name: str, description: str) -> str:
    if name in ACTIONS:
        raise ValueError(f"audit action {name!r} is already registered")
    if name.count(".") < 1:
        raise ValueError(f"audit action {name!r} must be a dotted name")
    ACTIONS[name] = description
    return name


for _name, _description in [
    # AI systems and intervention points
    ("system.created", "An AI system was registered."),
    ("system.updated", "An AI system's registration changed."),
    ("system.halted", "The system was halted (Art. 14(4)(e) stop button)."),
    ("system.resumed", "A halted system was resumed."),
    ("system.blocked", "A system was blocked as a prohibited practice (Art. 5)."),
    ("system.classified", "A system's risk tier was classified."),
    ("intervention_point.created", "An intervention point was created."),
    ("intervention_point.updated", "An intervention point's rules changed (new version)."),
    ("intervention_point.salt_rotated", "An intervention point's secret sampling salt was rotated."),
    # People
    ("user.created", "A user account was created."),
    ("user.secret_rotated", "An integration's webhook secret was rotated."),
    ("user.updated", "A user account's fields, role or password changed."),
    ("user.token_issued", "An API token was issued."),
    ("user.token_revoked", "API tokens were revoked (owner, rotation, or a password, role or status change)."),
    ("user.locked_out", "Repeated failed logins locked a user name or a client address out for the cool-off."),
    ("user.unlocked", "An administrator lifted a login lockout."),
    ("user.mfa_enrolled", "A user enrolled a TOTP second factor."),
    ("user.mfa_reset", "An administrator removed a user's second-factor devices."),
    ("reviewer.updated", "A reviewer's qualifications or adjudicator flag changed."),
    ("reviewer.suspended", "A reviewer was suspended."),
    ("reviewer.reinstated", "A suspended reviewer was reinstated."),
    ("reviewer.training_recorded", "A training record was added."),
    # Cases
    ("case.created", "A case was received from an integration."),
    ("case.routed", "A case was routed to human review."),
    ("case.auto_accepted", "A case was auto-accepted with the AI label."),
    ("case.claimed", "A reviewer claimed a case (lease)."),
    ("case.lease_renewed", "A reviewer renewed a claim lease."),
    ("case.released", "A reviewer released a case back to the queue."),
    ("case.lease_expired", "A claim lease expired; the case returned to the queue."),
    ("case.escalated", "A case was escalated to an adjudicator."),
    ("case.decided", "A case reached its final decision."),
    ("case.reopened", "A decided case was reopened for review."),
    ("case.sla_breached", "A case breached its SLA and the breach rule was applied."),
    ("case.outcome_reported", "Ground truth was reported for a case."),
    ("case.reassigned", "An administrator reassigned or unassigned a case."),
    ("case.attachment_added", "An integration uploaded an attachment to a case (recorded by SHA-256)."),
    ("case.alert_raised", "Nobody eligible can take an open case (or it waits past its SLA): officers alerted."),
    ("case.commented", "A comment was added to a case."),
    ("case.skipped", "A reviewer skipped a claimed case with a reason; it went back to the queue."),
    ("decision.recorded", "A reviewer recorded a decision."),
    ("decision.undone", "A reviewer undid their own decision while the case was still open."),
    ("webhook.delivered", "A webhook was delivered."),
    ("webhook.failed", "A webhook delivery gave up after its retries."),
    ("webhook.redelivery_requested", "A webhook redelivery was requested."),
    # Audit trail itself
    ("audit.verified", "The audit chain was verified."),
    ("audit.checkpoint_signed", "A signed checkpoint of the chain head was made."),
    ("audit.exported", "Audit events were exported."),
    ("audit.purged", "Payloads past retention were purged."),
    ("audit.legal_hold_placed", "A legal hold was placed."),
    ("audit.legal_hold_released", "A legal hold was released."),
    ("biometric_use.started", "A period of use of a remote biometric identification system began (Art. 12(3))."),
    ("biometric_use.ended", "A period of use of a remote biometric identification system ended (Art. 12(3))."),
    # Quality, fairness, incidents, compliance
    ("gold.created", "A gold item was created."),
    ("calibration.created", "A calibration session was created."),
    ("bias_audit.requested", "A bias audit was requested."),
    ("bias_audit.completed", "A bias audit finished."),
    ("bias_audit.flagged", "A bias audit breached a threshold."),
    ("bias_audit.failed", "A bias audit failed (a chunk gave up)."),
    ("threshold.applied", "A recommended confidence threshold was applied."),
    ("monitoring.alert", "Post-market monitoring found a metric of a point past its threshold (Art. 72)."),
    ("incident.created", "An incident was filed."),
    ("incident.updated", "An incident's status changed."),
    ("incident.report_drafted", "An Art. 73 incident report draft was generated (SHA-256)."),
    ("obligation.updated", "An obligation's status, owner or evidence changed."),
    ("fria.saved", "A fundamental rights impact assessment was saved."),
    ("dossier.generated", "A compliance dossier was generated."),
    ("training_data.exported", "Human-validated labels were exported for retraining (format, SHA-256)."),
]:
    register_action(_name, _description)

# Art. 86: the affected person's explanation and appeal channel (compliance app).
for _name, _description in [
    ("explanation.reference_issued", "A verification code for an affected person was issued for a case (hash kept)."),
    ("explanation.requested", "An affected person asked for an explanation of a decision (Art. 86)."),
    ("explanation.updated", "An officer changed an explanation request's status, assignee or note."),
    ("explanation.answered", "An explanation letter was sent (its SHA-256 recorded)."),
    ("explanation.contested", "A decision was contested after its explanation; the case was reopened."),
]:
    register_action(_name, _description)
