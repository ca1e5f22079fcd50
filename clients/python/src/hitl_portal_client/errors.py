"""Errors raised by the client."""

from __future__ import annotations

from typing import Any


class HITLError(Exception):
    """The portal refused a request (``status`` and the error ``body`` it answered)."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Denied(Exception):
    """A reviewer denied the agent's tool call (or it expired unanswered); ``reason`` says why."""

    def __init__(self, reason: str, *, case: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.case = case


class Rejected(Exception):
    """A reviewer rejected a generated text; ``reason`` and ``category`` say why."""

    def __init__(self, reason: str, *, category: str | None, case: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category
        self.case = case


class DecisionTimeout(Exception):
    """No decision within the caller's deadline (the case stays open in the portal)."""

    def __init__(self, case: dict[str, Any]) -> None:
        super().__init__(f"case {case.get('id')} is still {case.get('status')}")
        self.case = case


class WebhookVerificationError(Exception):
    """A webhook's signature or timestamp does not verify."""
