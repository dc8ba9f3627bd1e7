"""Live sandboxes are a bounded cache: idle ones close on a timer, the process keeps at most
`max_sandboxes`, and a thread has one live sandbox whichever event loop its runs use."""

from __future__ import annotations

import asyncio
import threading

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.graph.resources import resources_for
from tests.conftest import need_bwrap
from tests.scripted_models import ScriptedChatModel


def respond(messages):
    question = [m for m in messages if m.type == "human"][-1].content
    if question.startswith("set "):
        return f"```repl\nx = {question[4:]!r}\nFINAL('ok')\n```"
    return "```repl\nFINAL(x)\n```"


@pytest.fixture
def settings(tmp_path):
    need_bwrap()
    root = ScriptedChatModel(respond=respond)
    return RLMSettings(model=root, sub_model=root, state_dir=str(tmp_path), compact_turns=False)


def ask(graph, thread: str, question: str):
    return graph.ainvoke({"query": question}, {"configurable": {"thread_id": thread}})


async def test_an_idle_sandbox_closes_on_its_timer_without_another_request(settings):
    settings.sandbox_idle_timeout = 1.0
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    await ask(graph, "t", "set 1")
    pool = (await resources_for(settings)).pool
    (session,) = pool.sessions.values()
    await asyncio.sleep(3)
    assert pool.sessions == {} and session.sandbox is None
    assert (await ask(graph, "t", "what is x"))["answer"] == "1", "the REPL comes back from its snapshot"
    await close_sandboxes()


async def test_the_process_keeps_at_most_max_sandboxes_alive(settings):
    settings.max_sandboxes = 2
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    for thread in ("a", "b", "c", "d"):
        await ask(graph, thread, f"set {thread}")
        assert len((await resources_for(settings)).pool.sessions) <= 2
    assert set((await resources_for(settings)).pool.sessions) == {"c", "d"}, "the longest idle closed first"
    assert (await ask(graph, "a", "what is x"))["answer"] == "a"
    await close_sandboxes()


async def test_a_thread_has_one_live_sandbox_across_event_loops(settings):
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    other = asyncio.new_event_loop()
    runner = threading.Thread(target=other.run_forever, daemon=True)
    runner.start()
    try:
        there = asyncio.run_coroutine_threadsafe(ask(graph, "t", "set far"), other).result(120)
        assert there["answer"] == "ok"
        far_pool = asyncio.run_coroutine_threadsafe(resources_for(settings), other).result(10).pool
        assert set(far_pool.sessions) == {"t"}

        assert (await ask(graph, "t", "what is x"))["answer"] == "far"
        assert far_pool.sessions == {}, "the other loop's sandbox for the thread was closed"
        assert set((await resources_for(settings)).pool.sessions) == {"t"}
    finally:
        asyncio.run_coroutine_threadsafe(close_sandboxes(), other).result(30)
        other.call_soon_threadsafe(other.stop)
        runner.join(10)
        other.close()
        await close_sandboxes()
