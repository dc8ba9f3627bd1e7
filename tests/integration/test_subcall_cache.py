"""Identical sub-calls of a thread are answered from its store: a resumed, replayed or forked run
never pays twice, and the server's request log proves it."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.persistence.checkpointer import open_checkpointer
from tests.conftest import checkpoint_before_step, need_bwrap, run_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step
from tests.scripted_models import ScriptedChatModel, steps


@pytest.fixture(autouse=True)
async def sandboxes():
    need_bwrap()
    yield
    await close_sandboxes()


def upper(messages):
    return messages[-1]["content"].upper()


def root(*cells: str) -> ScriptedChatModel:
    return ScriptedChatModel(respond=steps(*(f"```repl\n{cell}\n```" for cell in cells)))


async def run_cells(server, tmp_path, cells, thread="t", checkpointer=None, **settings):
    """One question whose steps run `cells`; the stream's sub-call events come back too."""
    graph = build_rlm_graph(
        root(*cells),
        "openai/sub",
        api_base=server.url,
        state_dir=str(tmp_path),
        allowed_models=("openai/other",),
        **settings,
    ).compile(checkpointer=InMemorySaver() if checkpointer is None else checkpointer)
    config = {"configurable": {"thread_id": thread}} if thread else {}
    events = []
    async for mode, chunk in graph.astream({"query": "q"}, config, stream_mode=["custom", "values"]):
        if mode == "custom" and chunk.get("event") == "subcall":
            events.append(chunk)
        elif mode == "values":
            values = chunk
    return values, events


async def test_a_repeated_sub_call_is_answered_from_the_cache(tmp_path):
    with ScriptedOpenAIServer(upper) as server:
        values, events = await run_cells(
            server,
            tmp_path,
            [
                "a = llm_query('same')",
                "b = [llm_query('same')] + llm_query_batched(['same', 'other'])",
                "FINAL(repr([a, *b]))",
            ],
        )
    assert values["answer"] == repr(["SAME", "SAME", "SAME", "OTHER"])
    assert [log["messages"][-1]["content"] for log in server.log] == ["same", "other"]
    assert values["usage"]["cache_hits"] == 2 and values["usage"]["sub_calls"] == 2
    cached = [e for e in events if e.get("cached")]
    assert len(cached) == 4 and {e["phase"] for e in cached} == {"start", "end"}


async def test_another_model_prompt_or_thread_is_not_a_hit(tmp_path):
    cell = "out = [llm_query('p'), llm_query('p', model='openai/other'), llm_query('q')]"
    with ScriptedOpenAIServer(upper) as server:
        first, _ = await run_cells(server, tmp_path, [cell, "FINAL(repr(out))"])
        assert len(server.log) == 3 and "cache_hits" not in first["usage"]
        assert [log["model"] for log in server.log] == ["sub", "other", "sub"]
        again, _ = await run_cells(server, tmp_path, [cell, "FINAL(repr(out))"])
        assert len(server.log) == 3 and again["usage"]["cache_hits"] == 3
        await run_cells(server, tmp_path, [cell, "FINAL(repr(out))"], thread="u")
        assert len(server.log) == 6


async def test_off_or_without_a_thread_every_call_reaches_the_model(tmp_path):
    cells = ["out = [llm_query('p'), llm_query('p')]", "FINAL(repr(out))"]
    with ScriptedOpenAIServer(upper) as server:
        off, _ = await run_cells(server, tmp_path, cells, cache_sub_calls=False)
        assert len(server.log) == 2 and off["usage"]["sub_calls"] == 2 and "cache_hits" not in off["usage"]
        await run_cells(server, tmp_path, cells, cache_sub_calls=False)
        assert len(server.log) == 4
        await run_cells(server, tmp_path, cells, thread=None, checkpointer=False)
        assert len(server.log) == 6


async def test_replaying_or_forking_a_checkpoint_repeats_no_sub_call(tmp_path, database):
    cells = [
        "a = llm_query('first')",
        "b = llm_query_batched(['second', 'third'])",
        "FINAL(a + ' ' + ' '.join(b))",
    ]
    with ScriptedOpenAIServer(upper) as server:
        settings = RLMSettings(
            model=root(*cells),
            sub_model="openai/sub",
            api_base=server.url,
            state_dir=str(tmp_path),
            db=database.url,
            compact_turns=False,
        )
        async with open_checkpointer(settings) as saver:
            graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "travel"}}
            first = await graph.ainvoke({"query": "q"}, config)
            assert first["answer"] == "FIRST SECOND THIRD" and len(server.log) == 3

            start = await checkpoint_before_step(graph, config, 0)
            replayed = await graph.ainvoke(None, start.config)
            assert replayed["answer"] == first["answer"]
            assert replayed["usage"]["cache_hits"] == 3 and "sub_calls" not in replayed["usage"]
            hit = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "cache_hits": 3}
            assert replayed["usage"]["by_model"]["0:openai/sub"] == hit

            forked = await graph.aupdate_state(
                (await checkpoint_before_step(graph, config, 1)).config,
                {"messages": [HumanMessage("a fork")]},
                as_node="execute",
            )
            assert (await graph.ainvoke(None, forked))["answer"] == first["answer"]
        assert len(server.log) == 3


def test_the_cli_caches_by_default_and_reset_forgets_the_thread_answers(tmp_path, database):
    def model(messages):
        if not is_root_call(messages):
            return messages[-1]["content"].upper()  # a sub-call, or the summary of a finished turn
        return "```repl\nFINAL(llm_query('look it up'))\n```" if root_step(messages) == 0 else "unused"

    def sub_requests(server):
        return sum(1 for log in server.log if log["messages"][-1]["content"] == "look it up")

    with ScriptedOpenAIServer(model) as server:
        flags = [
            "--thread",
            "t",
            "--model",
            "openai/scripted",
            "--sub-model",
            "openai/scripted-sub",
            "--api-base",
            server.url,
            *database.flags,
        ]
        first = run_rlm(["run", "q", *flags], tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "LOOK IT UP" and sub_requests(server) == 1
        again = run_rlm(["run", "q", *flags], tmp_path)
        assert again.stdout.strip() == "LOOK IT UP" and sub_requests(server) == 1
        assert "(+1 from the cache)" in again.stderr
        assert "1 sub-calls answered (1 from the cache)" in again.stderr
        reset = run_rlm(["reset", "--thread", "t", *database.flags], tmp_path)
        assert reset.returncode == 0, reset.stderr
        assert run_rlm(["run", "q", *flags], tmp_path).stdout.strip() == "LOOK IT UP"
        assert sub_requests(server) == 2
        off = run_rlm(["run", "q", "--no-cache-sub-calls", *flags], tmp_path)
        assert off.returncode == 0, off.stderr
        assert sub_requests(server) == 3


async def test_a_replayed_rlm_query_tree_reuses_its_childs_answers(tmp_path):
    parent = steps("```repl\nout = rlm_query('child question')\n```", "```repl\nFINAL(out)\n```")
    child = steps("```repl\nFINAL(llm_query('deep'))\n```")

    def respond(messages):
        return (child if any(m.content == "child question" for m in messages) else parent)(messages)

    with ScriptedOpenAIServer(upper) as server:
        graph = build_rlm_graph(
            ScriptedChatModel(respond=respond),
            "openai/sub",
            api_base=server.url,
            state_dir=str(tmp_path),
            compact_turns=False,
        ).compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "tree"}}
        assert (await graph.ainvoke({"query": "q"}, config))["answer"] == "DEEP"
        assert len(server.log) == 1
        replayed = await graph.ainvoke(None, (await checkpoint_before_step(graph, config, 0)).config)
    assert replayed["answer"] == "DEEP" and len(server.log) == 1
    assert replayed["usage"]["cache_hits"] == 1
    assert [
        e["cache_hits"] for k, e in replayed["usage"]["by_model"].items() if k.endswith("openai/sub")
    ] == [1]
