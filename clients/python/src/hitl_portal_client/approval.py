"""Human approval of agents' tool calls and human review of generated texts.

``require_approval`` wraps a tool function: each call is submitted to the
portal as an ``action`` case, waits for the decision and then runs the function
with the arguments the reviewer approved (possibly modified), or raises
``Denied`` with the reviewer's reason. ``request_approval`` does the same for a
call made by hand and can be used as a context manager. ``review_generation``
submits a text and returns the text that may go out (the reviewer's edit, if
any), or raises ``Rejected``.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

from hitl_portal_client.client import AsyncClient, Client
from hitl_portal_client.errors import Denied, Rejected

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Approval:
    """An approved tool call: the ``arguments`` to run it with (``modified`` when a reviewer changed them)."""

    case: dict[str, Any]
    arguments: dict[str, Any]
    modified: bool
    diff: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> Approval:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _action(tool: str, arguments: Mapping[str, Any], agent: str, conversation: Sequence[Mapping[str, str]] | None,
            rationale: str | None) -> dict[str, Any]:
    action: dict[str, Any] = {"tool": tool, "arguments": dict(arguments), "agent": agent}
    if conversation is not None:
        action["conversation"] = [dict(message) for message in conversation]
    if rationale:
        action["rationale"] = rationale
    return action


def _approval_of(case: dict[str, Any]) -> Approval:
    final = case.get("final_output") or {}
    if not final.get("approved"):
        raise Denied(final.get("reason") or "The tool call was not approved.", case=case)
    return Approval(case=case, arguments=dict(final.get("arguments") or {}), modified=bool(final.get("modified")),
                    diff=list(final.get("diff") or []))


def _final_text(case: dict[str, Any]) -> str:
    final = case.get("final_output") or {}
    if final.get("rejected") or final.get("text") is None:
        raise Rejected(final.get("reason") or "The text was rejected.", category=final.get("category"), case=case)
    return str(final["text"])


def request_approval(
    client: Client, *, system: str, intervention_point: str, tool: str, arguments: Mapping[str, Any], agent: str,
    conversation: Sequence[Mapping[str, str]] | None = None, rationale: str | None = None,
    external_id: str | None = None, timeout: float | None = None,
) -> Approval:
    """Submit a tool call, wait for the decision; ``Approval`` or ``Denied``."""
    created = client.submit_case(
        system=system, intervention_point=intervention_point, external_id=external_id or f"{tool}-{uuid.uuid4()}",
        action=_action(tool, arguments, agent, conversation, rationale),
    )
    return _approval_of(client.wait_for_decision(created["id"], timeout=timeout))


async def arequest_approval(
    client: AsyncClient, *, system: str, intervention_point: str, tool: str, arguments: Mapping[str, Any],
    agent: str, conversation: Sequence[Mapping[str, str]] | None = None, rationale: str | None = None,
    external_id: str | None = None, timeout: float | None = None,
) -> Approval:
    """``request_approval`` for the async client."""
    created = await client.submit_case(
        system=system, intervention_point=intervention_point, external_id=external_id or f"{tool}-{uuid.uuid4()}",
        action=_action(tool, arguments, agent, conversation, rationale),
    )
    return _approval_of(await client.wait_for_decision(created["id"], timeout=timeout))


def require_approval(
    client: Client | AsyncClient, *, system: str, intervention_point: str, agent: str, tool: str | None = None,
    rationale: str | None = None, timeout: float | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a tool function (sync with ``Client``, ``async def`` with ``AsyncClient``).

    The call's arguments (bound by name, defaults applied) are the tool call
    reviewed; the function then runs with the approved arguments as keywords.
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)
        name = tool or func.__name__

        def bound_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(func):
            if not isinstance(client, AsyncClient):
                raise TypeError("an async tool function needs an AsyncClient")

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                approval = await arequest_approval(
                    client, system=system, intervention_point=intervention_point, tool=name,
                    arguments=bound_arguments(args, kwargs), agent=agent, rationale=rationale, timeout=timeout,
                )
                return await cast(Callable[..., Awaitable[Any]], func)(**approval.arguments)

            return cast(Callable[P, R], async_wrapper)
        if not isinstance(client, Client):
            raise TypeError("a sync tool function needs a Client")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            approval = request_approval(
                client, system=system, intervention_point=intervention_point, tool=name,
                arguments=bound_arguments(args, kwargs), agent=agent, rationale=rationale, timeout=timeout,
            )
            return cast(Callable[..., Any], func)(**approval.arguments)

        return cast(Callable[P, R], wrapper)

    return decorator


def _generation(text: str, prompt: str | None, conversation: Sequence[Mapping[str, str]] | None,
                sources: Sequence[Mapping[str, str]] | None) -> dict[str, Any]:
    generation: dict[str, Any] = {"text": text}
    if prompt is not None:
        generation["prompt"] = prompt
    if conversation is not None:
        generation["conversation"] = [dict(message) for message in conversation]
    if sources is not None:
        generation["sources"] = [dict(source) for source in sources]
    return generation


def review_generation(
    client: Client, *, system: str, intervention_point: str, text: str, prompt: str | None = None,
    conversation: Sequence[Mapping[str, str]] | None = None, sources: Sequence[Mapping[str, str]] | None = None,
    external_id: str | None = None, timeout: float | None = None,
) -> str:
    """Submit a generated text and return the text that may go out (edited or as is); ``Rejected`` otherwise."""
    created = client.submit_case(
        system=system, intervention_point=intervention_point, external_id=external_id or f"text-{uuid.uuid4()}",
        generation=_generation(text, prompt, conversation, sources),
    )
    return _final_text(client.wait_for_decision(created["id"], timeout=timeout))


async def areview_generation(
    client: AsyncClient, *, system: str, intervention_point: str, text: str, prompt: str | None = None,
    conversation: Sequence[Mapping[str, str]] | None = None, sources: Sequence[Mapping[str, str]] | None = None,
    external_id: str | None = None, timeout: float | None = None,
) -> str:
    """``review_generation`` for the async client."""
    created = await client.submit_case(
        system=system, intervention_point=intervention_point, external_id=external_id or f"text-{uuid.uuid4()}",
        generation=_generation(text, prompt, conversation, sources),
    )
    return _final_text(await client.wait_for_decision(created["id"], timeout=timeout))
