"""An MCP server that lets any MCP-speaking agent ask the portal for a human decision.

Tools:

- ``request_approval``: a proposed tool call → waits for a reviewer → approved (with
  the arguments to use, possibly modified), denied (with the reason) or pending.
- ``request_review``: a generated text → waits → approved, edited (the text to use)
  or rejected (reason, category), or pending.
- ``get_case``: the portal's representation of a case (e.g. one left pending).

It talks to the portal's REST API with an integration token: over stdio the
token comes from ``HITL_TOKEN``; over streamable HTTP each request must carry its
own ``Authorization: Bearer <token>`` (a server reachable on a network never acts
on a token of its own).

    HITL_TOKEN=... python -m hitl_portal_client.mcp_server --portal https://portal.example.org \\
        --system payments-agent --action-point tool-calls --review-point replies
    python -m hitl_portal_client.mcp_server --portal ... --transport http --port 8765   # /mcp
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from hitl_portal_client.client import AsyncClient
from hitl_portal_client.errors import DecisionTimeout, HITLError

DEFAULT_WAIT_SECONDS = 300
INSTRUCTIONS = (
    "Human oversight for risky actions. Before a consequential tool call, call request_approval with the tool's "
    "name and arguments; run the call only if the decision is 'approved', with the returned arguments (a reviewer "
    "may have changed them). If 'denied', do not run it and tell the user the reason. If 'pending', ask get_case "
    "later. Before sending a generated text that needs review, call request_review and send the returned text."
)


class PortalToolError(ToolError):
    """Shown to the agent as the tool's error (a ToolError's message reaches the client)."""


def _token(headers: Mapping[str, str] | None, fallback: str | None) -> str:
    if headers is None:
        # stdio: the process's own token.
        if not fallback:
            raise PortalToolError("No integration token: set HITL_TOKEN for the stdio server.")
        return fallback
    value = {key.lower(): item for key, item in headers.items()}.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise PortalToolError("Send the portal integration token as 'Authorization: Bearer <token>'.")
    return token.strip()


def _pick(value: str | None, default: str | None, name: str) -> str:
    chosen = value or default
    if not chosen:
        raise PortalToolError(f"No {name}: pass it, or start the server with a default.")
    return chosen


def build_server(*, portal_url: str, token: str | None = None, system: str | None = None,
                 action_point: str | None = None, review_point: str | None = None) -> MCPServer:
    """The MCP server for one portal (defaults for system and intervention points optional)."""
    server: MCPServer = MCPServer(name="hitl-portal", instructions=INSTRUCTIONS)

    def client_for(ctx: Context) -> AsyncClient:
        return AsyncClient(portal_url, _token(ctx.headers, token))

    async def decided(portal: AsyncClient, case_id: int, timeout_seconds: int) -> dict[str, Any] | None:
        try:
            return await portal.wait_for_decision(case_id, timeout=max(0, min(timeout_seconds, 3600)))
        except DecisionTimeout:
            return None

    @server.tool()
    async def request_approval(tool: str, arguments: dict[str, Any], agent: str, ctx: Context,
                               rationale: str | None = None, system_slug: str | None = None,
                               intervention_point: str | None = None,
                               timeout_seconds: int = DEFAULT_WAIT_SECONDS) -> dict[str, Any]:
        """Ask a human to approve a tool call before running it; waits up to timeout_seconds.

        Returns {decision: approved|denied|pending, arguments, modified, reason, case_id}.
        """
        action: dict[str, Any] = {"tool": tool, "arguments": arguments, "agent": agent}
        if rationale:
            action["rationale"] = rationale
        async with client_for(ctx) as portal:
            try:
                created = await portal.submit_case(
                    system=_pick(system_slug, system, "system"),
                    intervention_point=_pick(intervention_point, action_point, "intervention point"),
                    external_id=f"mcp-{tool}-{uuid.uuid4()}", action=action,
                )
                case = await decided(portal, created["id"], timeout_seconds)
            except HITLError as exc:
                raise PortalToolError(str(exc)) from exc
        if case is None:
            return {"decision": "pending", "case_id": created["id"], "arguments": None, "modified": False,
                    "reason": "No reviewer has decided yet."}
        final = case.get("final_output") or {}
        approved = bool(final.get("approved"))
        return {"decision": "approved" if approved else "denied", "case_id": case["id"],
                "arguments": final.get("arguments") if approved else None,
                "modified": bool(final.get("modified")), "reason": final.get("reason") or ""}

    @server.tool()
    async def request_review(text: str, ctx: Context, prompt: str | None = None, system_slug: str | None = None,
                             intervention_point: str | None = None,
                             timeout_seconds: int = DEFAULT_WAIT_SECONDS) -> dict[str, Any]:
        """Ask a human to review a generated text; waits up to timeout_seconds.

        Returns {decision: approved|edited|rejected|pending, text, reason, category, case_id}.
        """
        generation: dict[str, Any] = {"text": text}
        if prompt:
            generation["prompt"] = prompt
        async with client_for(ctx) as portal:
            try:
                created = await portal.submit_case(
                    system=_pick(system_slug, system, "system"),
                    intervention_point=_pick(intervention_point, review_point, "intervention point"),
                    external_id=f"mcp-text-{uuid.uuid4()}", generation=generation,
                )
                case = await decided(portal, created["id"], timeout_seconds)
            except HITLError as exc:
                raise PortalToolError(str(exc)) from exc
        if case is None:
            return {"decision": "pending", "case_id": created["id"], "text": None, "reason": "", "category": None}
        final = case.get("final_output") or {}
        if final.get("rejected") or final.get("text") is None:
            return {"decision": "rejected", "case_id": case["id"], "text": None, "reason": final.get("reason") or "",
                    "category": final.get("category")}
        return {"decision": "edited" if final.get("edited") else "approved", "case_id": case["id"],
                "text": final["text"], "reason": "", "category": None}

    @server.tool()
    async def get_case(case_id: int, ctx: Context) -> dict[str, Any]:
        """The portal's current representation of a case (status, final_output, decisions)."""
        async with client_for(ctx) as portal:
            try:
                return await portal.get_case(case_id)
            except HITLError as exc:
                raise PortalToolError(str(exc)) from exc

    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hitl_portal_client.mcp_server", description=__doc__.split("\n")[0])
    parser.add_argument("--portal", default=os.environ.get("HITL_PORTAL_URL"), help="the portal's base URL")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--system", default=os.environ.get("HITL_SYSTEM"))
    parser.add_argument("--action-point", default=os.environ.get("HITL_ACTION_POINT"))
    parser.add_argument("--review-point", default=os.environ.get("HITL_REVIEW_POINT"))
    args = parser.parse_args(argv)
    if not args.portal:
        parser.error("--portal (or HITL_PORTAL_URL) is required")
    server = build_server(
        portal_url=args.portal, token=os.environ.get("HITL_TOKEN") if args.transport == "stdio" else None,
        system=args.system, action_point=args.action_point, review_point=args.review_point,
    )
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
