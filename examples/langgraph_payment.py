"""A LangGraph graph that pauses on ``interrupt()`` until a human in the portal decides its tool call.

The graph: ``agent`` (a chat model proposes a ``send_payment`` tool call) ->
``review`` (``interrupt()`` with the proposed call: the graph stops, its state
saved by the checkpointer) -> ``execute`` (pays with the approved arguments, or
records the denial) -> end. The driver, ``run``, takes each interrupt to the portal
through the Python SDK (``hitl_portal_client.request_approval``: an ``action``
case, then a long-poll until a reviewer decides) and resumes the graph with
``Command(resume=<the portal's decision>)``: approved (maybe with the reviewer's
modified arguments) or denied with the reviewer's reason.

No LLM and no network but the portal: the chat model is LangChain's
``GenericFakeChatModel``, scripted to propose one payment. Run against a portal
with an action point that routes ``send_payment`` to humans::

    HITL_PORTAL_URL=http://127.0.0.1:8000 HITL_TOKEN=<integration token> \\
    HITL_SYSTEM=<system slug> HITL_ACTION_POINT=<action point slug> \\
    PYTHONPATH=clients/python/src python examples/langgraph_payment.py

then decide the case on the workbench (/review/). tests/clients/test_framework_examples.py
drives ``run`` against the live test server.
"""

from __future__ import annotations

import operator
import os
import sys
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from hitl_portal_client import Client, Denied, request_approval
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

PAYMENT = {"amount": 1200, "to": "ACME Ltd", "reference": "invoice 42"}
AGENT = "langgraph-payments"


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    decision: dict[str, Any]
    payments: Annotated[list[str], operator.add]


def build_graph(model: GenericFakeChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph, compiled with an in-memory checkpointer (interrupts need one; use a durable one in production)."""

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def review(state: State) -> dict[str, Any]:
        call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]  # agent's AIMessage
        # Stops the graph here; the value is what the driver sends to the portal, and the
        # node re-runs on resume with interrupt() returning the portal's decision.
        decision = interrupt({"tool": call["name"], "arguments": call["args"], "call_id": call["id"],
                              "rationale": "The user asked to pay this invoice."})
        return {"decision": decision}

    def execute(state: State) -> dict[str, Any]:
        call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
        decision = state["decision"]
        if not decision["approved"]:
            return {"messages": [ToolMessage(f"payment not made: a reviewer denied it ({decision['reason']})",
                                             tool_call_id=call["id"])]}
        args = decision["arguments"]
        # The side effect runs only now, with the arguments as approved (maybe modified).
        paid = f"paid {args['amount']} to {args['to']} ({args['reference']})"
        return {"messages": [ToolMessage(paid, tool_call_id=call["id"])], "payments": [paid]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("review", review)
    builder.add_node("execute", execute)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "review")
    builder.add_edge("review", "execute")
    builder.add_edge("execute", END)
    return builder.compile(checkpointer=InMemorySaver())


def scripted_model(payment: dict[str, Any]) -> GenericFakeChatModel:
    """A chat model that answers once, with a ``send_payment`` tool call."""
    return GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "send_payment", "args": payment, "id": "call-pay-1"}]),
    ]))


def decision_of(portal: Client, request: dict[str, Any], *, system: str, intervention_point: str,
                thread_id: str, timeout: float | None) -> dict[str, Any]:
    """The portal's decision on one interrupted tool call, as the graph's resume value."""
    try:
        approval = request_approval(
            portal, system=system, intervention_point=intervention_point, tool=request["tool"],
            arguments=request["arguments"], agent=AGENT, rationale=request["rationale"],
            # One case per interrupted call: a driver restarted on the same thread asks again
            # under the same external id.
            external_id=f"{thread_id}-{request['call_id']}", timeout=timeout,
        )
    except Denied as denied:
        return {"approved": False, "reason": denied.reason}
    return {"approved": True, "arguments": approval.arguments, "modified": approval.modified}


def run(portal: Client, *, system: str, intervention_point: str, payment: dict[str, Any] | None = None,
        timeout: float | None = None, say: Callable[[str], None] = print) -> tuple[str, list[str]]:
    """Run the graph to the end, resuming each interrupt with the portal's decision.

    Returns the tool's last message and the payments made.
    """
    graph = build_graph(scripted_model(payment or PAYMENT))
    thread_id = f"langgraph-{uuid.uuid4()}"
    config: Any = {"configurable": {"thread_id": thread_id}}
    result = graph.invoke({"messages": [HumanMessage("Please pay invoice 42 to ACME Ltd.")]}, config)
    while result.get("__interrupt__"):
        request = result["__interrupt__"][0].value
        say(f"graph: interrupted on {request['tool']}({request['arguments']}); waiting for a reviewer…")
        decision = decision_of(portal, request, system=system, intervention_point=intervention_point,
                               thread_id=thread_id, timeout=timeout)
        result = graph.invoke(Command(resume=decision), config)
    answer = str(result["messages"][-1].content)
    say(f"graph: {answer}")
    return answer, list(result.get("payments", []))


def main() -> int:
    missing = [name for name in ("HITL_PORTAL_URL", "HITL_TOKEN", "HITL_SYSTEM", "HITL_ACTION_POINT")
               if not os.environ.get(name)]
    if missing:
        print(f"set {', '.join(missing)} (see the docstring)", file=sys.stderr)
        return 2
    with Client(os.environ["HITL_PORTAL_URL"], os.environ["HITL_TOKEN"]) as portal:
        run(portal, system=os.environ["HITL_SYSTEM"], intervention_point=os.environ["HITL_ACTION_POINT"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
