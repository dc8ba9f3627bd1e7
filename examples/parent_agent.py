"""A larger agent with the RLM as one of its nodes.

    START -> rlm -> review -> approve -> END
                                (interrupt: a person accepts or rejects the answer)

The RLM subgraph is compiled with `checkpointer=True`, so its REPL and conversation persist under
the parent's thread: a second question on the same thread can use what the first one computed.
Run it with a model of yours:

    RLM_MODEL=openai/gpt-5 python examples/parent_agent.py examples/sample.log
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, NotRequired

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from langgraph_rlm import build_rlm_graph


class AgentState(TypedDict):
    query: str
    contexts: NotRequired[list[str]]
    answer: NotRequired[str]
    stop_reason: NotRequired[str]
    report: NotRequired[str]
    approved: NotRequired[bool]


def review(state: AgentState) -> dict:
    """Post-processing in the parent: what a person is asked to approve."""
    return {"report": f"Q: {state['query']}\nA: {state['answer']} ({state['stop_reason']})"}


def approve(state: AgentState) -> dict:
    decision = interrupt({"report": state["report"]})
    return {"approved": bool(decision)}


def build_parent_agent(model: Any = None, sub_model: Any = None, **settings: Any) -> StateGraph:
    """The uncompiled parent graph; `model`, `sub_model` and `settings` go to the RLM."""
    rlm = build_rlm_graph(model, sub_model, **settings).compile(checkpointer=True)
    graph = StateGraph(AgentState)
    graph.add_node("rlm", rlm)
    graph.add_node("review", review)
    graph.add_node("approve", approve)
    graph.add_edge(START, "rlm")
    graph.add_edge("rlm", "review")
    graph.add_edge("review", "approve")
    graph.add_edge("approve", END)
    return graph


async def main(paths: list[str]) -> None:
    async with AsyncSqliteSaver.from_conn_string(".rlm/parent-agent.sqlite") as saver:
        agent = build_parent_agent(path_contexts=True).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "parent-demo"}, "recursion_limit": 200}
        state = await agent.ainvoke(
            {"query": "Which service logs the most errors?", "contexts": paths}, config
        )
        print(state["__interrupt__"][0].value["report"])
        state = await agent.ainvoke(Command(resume=input("approve? [y/N] ").strip().lower() == "y"), config)
        print("approved" if state["approved"] else "rejected")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
