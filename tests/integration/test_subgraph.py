"""The RLM inside larger graphs: a parent agent whose turns share the RLM's REPL, an interrupt in
the parent resumed after a restart, and parallel `Send` branches with a sandbox each."""

from __future__ import annotations

import operator
from typing import Annotated

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, Send
from typing_extensions import TypedDict

from examples.parent_agent import build_parent_agent
from langgraph_rlm import build_rlm_graph
from langgraph_rlm.graph.resources import resources_for
from tests.conftest import need_bwrap
from tests.scripted_models import ScriptedChatModel, question_of

LOG = "INFO up\nERROR disk\nERROR net\n"
CODE = {
    "count the lines": "```repl\nlines = context.splitlines()\nFINAL(str(len(lines)))\n```",
    "how many are errors?": "```repl\nFINAL(str(sum('ERROR' in line for line in lines)))\n```",
    "wait": "```repl\nimport time\nt0 = time.time()\ntime.sleep(2)\nFINAL(f'{t0} {time.time()}')\n```",
}


def by_question(messages: list[BaseMessage]) -> str:
    return CODE[question_of(messages)] if messages[0].type == "system" else "summary"


async def test_a_parent_agent_keeps_the_rlms_repl_across_turns_and_an_interrupt(tmp_path):
    need_bwrap()
    root, sub = ScriptedChatModel(respond=by_question), ScriptedChatModel(respond=lambda m: "sub")
    agent = build_parent_agent(root, sub, state_dir=str(tmp_path / "state"))
    config = {"configurable": {"thread_id": "p"}, "recursion_limit": 200}
    database = str(tmp_path / "parent.sqlite")

    async with AsyncSqliteSaver.from_conn_string(database) as saver:
        first = await agent.compile(checkpointer=saver).ainvoke(
            {"query": "count the lines", "contexts": [LOG]}, config
        )
    assert first["__interrupt__"][0].value["report"] == "Q: count the lines\nA: 3 (final)"

    async with AsyncSqliteSaver.from_conn_string(database) as saver:  # a restart, then the resume
        compiled = agent.compile(checkpointer=saver)
        resumed = await compiled.ainvoke(Command(resume=True), config)
        assert resumed["approved"] is True
        second = await compiled.ainvoke({"query": "how many are errors?"}, config)
        assert second["__interrupt__"][0].value["report"] == "Q: how many are errors?\nA: 2 (final)"
        rejected = await compiled.ainvoke(Command(resume=False), config)
    assert rejected["approved"] is False and rejected["answer"] == "2"


class FanOut(TypedDict):
    questions: list[str]
    answers: Annotated[list[str], operator.add]


async def test_parallel_send_branches_each_get_a_sandbox_that_ends_with_them(tmp_path):
    need_bwrap()
    settings = {"state_dir": str(tmp_path / "state")}
    rlm = build_rlm_graph(
        ScriptedChatModel(respond=by_question), ScriptedChatModel(respond=lambda m: "x"), **settings
    )
    compiled_rlm = rlm.compile()

    async def ask(state: dict) -> dict:
        result = await compiled_rlm.ainvoke({"query": state["query"]})
        return {"answers": [result["answer"]]}

    parent = StateGraph(FanOut)
    parent.add_node("ask", ask)
    parent.add_conditional_edges(START, lambda s: [Send("ask", {"query": q}) for q in s["questions"]])
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "fan.sqlite")) as saver:
        result = await parent.compile(checkpointer=saver).ainvoke(
            {"questions": ["wait"] * 3, "answers": []}, {"configurable": {"thread_id": "f"}}
        )
    spans = [tuple(map(float, answer.split())) for answer in result["answers"]]
    assert len(spans) == 3
    assert max(start for start, _ in spans) < min(end for _, end in spans), (
        f"the branches ran in turn: {spans}"
    )
    from langgraph_rlm.graph.config import RLMSettings

    pool = (await resources_for(RLMSettings(**settings))).pool
    assert pool.sessions == {}
