"""An OpenAI Agents SDK agent whose payment tool needs a human's approval in the portal.

The agent (``openai-agents``) has one tool, ``send_payment``. Its body asks the
portal through the Python SDK (``hitl_portal_client.arequest_approval``): the call
becomes an ``action`` case, a reviewer approves, denies or approves it with
modified arguments on the workbench (or over the API), and only then does the
payment run, with the arguments the reviewer approved. A denial goes back to the
model as the tool's output, with the reviewer's reason, so the agent can tell its
user why. (The SDK's own ``needs_approval`` pause could carry approve and deny
too, but not a reviewer's modified arguments; asking from the tool body keeps
all three.)

No LLM and no network but the portal: the model is the SDK's ``ScriptedModel``
(``agents.testing``), scripted to call the tool once and then answer with what the
tool returned. Run against a portal with an action point that routes
``send_payment`` to humans (the demo's, or your own)::

    HITL_PORTAL_URL=http://127.0.0.1:8000 HITL_TOKEN=<integration token> \\
    HITL_SYSTEM=<system slug> HITL_ACTION_POINT=<action point slug> \\
    PYTHONPATH=clients/python/src python examples/openai_agents_payment.py

then decide the case on the workbench (/review/). ``run`` is the same agent as a
coroutine; tests/clients/test_framework_examples.py drives it against the live
test server.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from hitl_portal_client import AsyncClient, Denied, arequest_approval

PAYMENT = {"amount": 1200, "to": "ACME Ltd", "reference": "invoice 42"}


def _last_tool_output(call: ModelCall) -> str:
    """What the tool returned, from the model's input (the Responses-format items the runner sent)."""
    for item in reversed(call.input if isinstance(call.input, list) else []):
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            return str(item.get("output"))
    return "no tool output"


def scripted_model(payment: dict[str, Any]) -> ScriptedModel:
    """Turn 1: call ``send_payment`` with ``payment``; turn 2: report the tool's answer."""
    return ScriptedModel([
        [function_call("send_payment", payment, call_id="call-pay-1")],
        ModelStep.respond(lambda call: [assistant_message(f"Done: {_last_tool_output(call)}")]),
    ])


def build_agent(portal: AsyncClient, *, system: str, intervention_point: str, ledger: list[str],
                model: ScriptedModel, timeout: float | None = None) -> Agent[Any]:
    """The payments agent; ``ledger`` receives each payment actually made."""

    @function_tool
    async def send_payment(amount: float, to: str, reference: str) -> str:
        """Pay an invoice: ``amount`` in EUR to the payee ``to``, with the invoice ``reference``."""
        try:
            approval = await arequest_approval(
                portal, system=system, intervention_point=intervention_point, tool="send_payment",
                arguments={"amount": amount, "to": to, "reference": reference}, agent="payments-agent",
                rationale="The user asked to pay this invoice.", timeout=timeout,
            )
        except Denied as denied:
            return f"payment not made: a reviewer denied it ({denied.reason})"
        # The side effect runs only now, with the arguments as approved (maybe modified).
        args = approval.arguments
        ledger.append(f"paid {args['amount']} to {args['to']} ({args['reference']})")
        return ledger[-1] + (" [amount changed by the reviewer]" if approval.modified else "")

    return Agent(name="payments-agent", instructions="Pay the invoices the user asks for.",
                 tools=[send_payment], model=model)


async def run(portal: AsyncClient, *, system: str, intervention_point: str,
              payment: dict[str, Any] | None = None, timeout: float | None = None,
              say: Callable[[str], None] = print) -> tuple[str, list[str]]:
    """One agent run: the final answer and the payments made."""
    ledger: list[str] = []
    agent = build_agent(portal, system=system, intervention_point=intervention_point, ledger=ledger,
                        model=scripted_model(payment or PAYMENT), timeout=timeout)
    say("agent: asked to pay invoice 42; the tool waits for a reviewer on the portal…")
    # Tracing off: the default exporter would send traces to OpenAI.
    result = await Runner.run(agent, "Please pay invoice 42 to ACME Ltd.", run_config=RunConfig(tracing_disabled=True))
    say(f"agent: {result.final_output}")
    return str(result.final_output), ledger


def main() -> int:
    missing = [name for name in ("HITL_PORTAL_URL", "HITL_TOKEN", "HITL_SYSTEM", "HITL_ACTION_POINT")
               if not os.environ.get(name)]
    if missing:
        print(f"set {', '.join(missing)} (see the docstring)", file=sys.stderr)
        return 2

    async def go() -> None:
        async with AsyncClient(os.environ["HITL_PORTAL_URL"], os.environ["HITL_TOKEN"]) as portal:
            await run(portal, system=os.environ["HITL_SYSTEM"], intervention_point=os.environ["HITL_ACTION_POINT"])

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
