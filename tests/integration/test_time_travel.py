"""Replaying or forking any checkpoint brings the REPL back to exactly what that checkpoint saw."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.persistence.checkpointer import open_checkpointer
from tests.conftest import checkpoint_before_step, need_bwrap
from tests.scripted_models import ScriptedChatModel, steps

RUN = steps("```repl\nx = 1\n```", "```repl\nprint(x)\n```", "```repl\nx = 2\n```", "```repl\nFINAL(x)\n```")


@pytest.fixture(autouse=True)
async def sandboxes():
    need_bwrap()
    yield
    await close_sandboxes()


async def test_replay_and_fork_from_step_one_see_the_old_value(tmp_path, database):
    script = {"respond": RUN}
    root = ScriptedChatModel(respond=lambda messages: script["respond"](messages))
    settings = RLMSettings(
        model=root, sub_model=root, state_dir=str(tmp_path), db=database.url, compact_turns=False
    )
    async with open_checkpointer(settings) as saver:
        graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "travel"}, "recursion_limit": 100}
        first = await graph.ainvoke({"query": "set x"}, config)
        assert first["answer"] == "2"

        script["respond"] = lambda messages: "```repl\nFINAL(f'x={x}')\n```"
        after_step_one = await checkpoint_before_step(graph, config, 1)
        replayed = await graph.ainvoke(None, after_step_one.config)
        assert replayed["answer"] == "x=1"

        forked_config = await graph.aupdate_state(
            after_step_one.config, {"messages": [HumanMessage("a fork")]}, as_node="execute"
        )
        forked = await graph.ainvoke(None, forked_config)
        assert forked["answer"] == "x=1"

        after_step_three = await checkpoint_before_step(graph, config, 3)
        assert (await graph.ainvoke(None, after_step_three.config))["answer"] == "x=2"


async def test_a_question_about_text_replays_from_its_first_checkpoints(tmp_path, database):
    text = "a line of the context\n" * 10_000
    root = ScriptedChatModel(respond=steps("```repl\nFINAL(len(context_0))\n```"))
    settings = RLMSettings(
        model=root, sub_model=root, state_dir=str(tmp_path), db=database.url, compact_turns=False
    )
    async with open_checkpointer(settings) as saver:
        graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "text"}, "recursion_limit": 100}
        first = await graph.ainvoke({"query": "measure", "contexts": [text]}, config)
        assert first["answer"] == str(len(text))
        *_, before_start_turn, given = [s async for s in graph.aget_state_history(config)]
        assert before_start_turn.next == ("start_turn",) and given.next == ("__start__",)
        (arrived,) = before_start_turn.values["contexts"]
        assert arrived["size"] == len(text) and arrived["preview"] == text[:300]
        for snapshot in (before_start_turn, given):
            again = await graph.ainvoke(None, snapshot.config)
            assert again["answer"] == str(len(text))
