"""Live sandboxes are a bounded cache: idle ones close on a timer, the process keeps at most
`max_sandboxes`, and a thread has one live sandbox whichever event loop its runs use. A thread's
sandbox starts while the root model writes the step, and a run cancelled meanwhile leaves none."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.graph.resources import resources_for
from tests.conftest import need_bwrap
from tests.scripted_models import ScriptedChatModel, question_of


def respond(messages):
    question = question_of(messages)
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


def started_sandbox(pool, seconds: float):
    """The first session whose worker is up, waited for from the model's thread."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        live = [s for s in list(pool.sessions.values()) if s.channel is not None]
        if live:
            return live[0]
        time.sleep(0.02)
    return None


async def test_the_sandbox_starts_while_the_root_model_writes_the_first_step(settings):
    pool = (await resources_for(settings)).pool
    seen = []

    def respond(messages):
        seen.append(started_sandbox(pool, 20) is not None)
        return "```repl\nFINAL('ok')\n```"

    settings.model = ScriptedChatModel(respond=respond)
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    assert (await ask(graph, "t", "anything"))["answer"] == "ok"
    assert seen == [True], "the worker was up before the model answered"
    await close_sandboxes()


async def test_a_run_cancelled_while_the_model_thinks_leaves_no_worker(settings):
    pool = (await resources_for(settings)).pool
    workers, release = [], threading.Event()

    def respond(messages):
        session = started_sandbox(pool, 20)
        workers.append(session.sandbox.process.pid if session else None)
        release.wait(30)
        return "```repl\nFINAL('late')\n```"

    settings.model = ScriptedChatModel(respond=respond)
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    run = asyncio.create_task(ask(graph, "t", "anything"))
    while not workers:
        await asyncio.sleep(0.05)
    run.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    await close_sandboxes()
    (pid,) = workers
    assert pid is not None and not Path(f"/proc/{pid}").exists(), "the warm worker was stopped"
    assert pool.sessions == {}
