"""Python client of the HITL Governance Portal.

    from hitl_portal_client import Client, require_approval

    portal = Client("https://portal.example.org", token="...")

    @require_approval(portal, system="payments-agent", intervention_point="tool-calls", agent="billing-bot")
    def send_payment(amount: float, to: str) -> str:
        ...

``send_payment(amount=1200, to="ACME")`` now waits for a reviewer; it runs with
the approved (possibly modified) arguments or raises ``Denied(reason)``.
"""

from hitl_portal_client.approval import (
    Approval,
    arequest_approval,
    areview_generation,
    request_approval,
    require_approval,
    review_generation,
)
from hitl_portal_client.client import AsyncClient, Client
from hitl_portal_client.errors import DecisionTimeout, Denied, HITLError, Rejected, WebhookVerificationError
from hitl_portal_client.webhooks import sign, verify_webhook

__all__ = [
    "Approval",
    "AsyncClient",
    "Client",
    "DecisionTimeout",
    "Denied",
    "HITLError",
    "Rejected",
    "WebhookVerificationError",
    "arequest_approval",
    "areview_generation",
    "request_approval",
    "require_approval",
    "review_generation",
    "sign",
    "verify_webhook",
]
