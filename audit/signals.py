"""What the ledger announces to the floors above it.

The ledger is the ground floor: it never imports the apps that react to it. It
sends signals carrying plain values instead, and those apps connect receivers in
their ``AppConfig.ready()``.
"""

from django.dispatch import Signal

# Sent inside the transaction that records a failed verification (``audit.verified``).
# Arguments: ``result`` (audit.selectors.VerifyResult) and ``actor`` (a user or None).
# The incident register files an incident and returns it.
chain_broken = Signal()
