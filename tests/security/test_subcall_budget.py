"""Budget bypass: batched children of batched children, each asking for many sub-calls. The
sub-call limit holds over the whole tree, counted where it costs money (the model server), and
each parent keeps at most `child_concurrency` child RLMs (each with a sandbox) alive at once."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.conftest import TEST_IMAGE, need_backend
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step
from tests.scripted_models import FEEDBACK

FINISH = "```repl\nFINAL(repr(out)[:300])\n```"


@pytest.fixture(autouse=True)
async def sandboxes():
    yield
    await close_sandboxes()


@pytest.fixture(params=("local", "docker"))
def isolated_backend(request) -> str:
    """Not e2b: a child RLM's sandbox there stops its parent's kernel (WorkerDied), before and
    after this change; the budget itself lives on the host and is the same for every backend."""
    need_backend(request.param)
    return request.param


def question_of(messages: list[dict[str, Any]]) -> str:
    """The question an RLM was asked (not the feedback it got along the way)."""
    asked = [m for m in messages if m["role"] == "user" and not str(m["content"]).startswith(FEEDBACK)]
    return asked[-1]["content"]


def tree(children: int, grandchildren: int, sub_calls: int):
    """Root -> `children` batched child RLMs -> `grandchildren` batched grandchildren each; every
    child and grandchild also sends `sub_calls` llm_query_batched prompts."""

    def respond(messages: list[dict[str, Any]]) -> str:
        if not is_root_call(messages):
            return "sub answer"
        question = question_of(messages)
        if root_step(messages) > 0 or "reached its limit" in str(messages[-1]["content"]):
            return FINISH
        if question == "top":
            code = (
                f"out = rlm_query_batched([f'child {{i}}' for i in range({children})], ['ctx'] * {children})"
            )
        elif question.startswith("child"):
            n = question.split()[1]
            code = (
                f"out = rlm_query_batched([f'grandchild {n}.{{j}}' for j in range({grandchildren})], "
                f"['ctx'] * {grandchildren})\nout += llm_query_batched(['x'] * {sub_calls})"
            )
        else:
            code = f"out = llm_query_batched(['x'] * {sub_calls}) + [rlm_query('deeper')]"
        return f"```repl\n{code}\n```"

    return respond


async def run_tree(server: ScriptedOpenAIServer, backend: str, tmp_path, **settings: Any) -> dict:
    graph = build_rlm_graph(
        "openai/root",
        "openai/sub",
        api_base=server.url,
        state_dir=str(tmp_path),
        max_depth=2,
        sandbox=backend,
        docker_image=TEST_IMAGE,
        **{"sub_call_retries": 0, **settings},
    ).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 200}
    return await graph.ainvoke({"query": "top"}, config)


def rlm_lives(server: ScriptedOpenAIServer) -> dict[str, tuple[float, float]]:
    """Each RLM's span as the model server saw it: first root request start to last root request end."""
    spans: dict[str, tuple[float, float]] = {}
    for entry in server.log:
        if is_root_call(entry["messages"]):
            question = question_of(entry["messages"])
            start, end = spans.get(question, (entry["start"], entry["end"]))
            spans[question] = (min(start, entry["start"]), max(end, entry["end"]))
    return spans


def most_alive_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_the_sub_call_limit_holds_over_batched_children_of_batched_children(isolated_backend, tmp_path):
    limit = 20
    with ScriptedOpenAIServer(tree(children=6, grandchildren=3, sub_calls=10)) as server:
        result = await run_tree(server, isolated_backend, tmp_path, max_sub_calls=limit)
    sub_requests = sum(1 for entry in server.log if entry["model"] == "sub")
    rlms = set(rlm_lives(server))
    children = len(rlms - {"top"})
    assert 0 < sub_requests <= limit
    assert children >= 1 and any(q.startswith("grandchild") for q in rlms)
    assert sub_requests + children <= limit  # a child RLM counts one call, as the docs say
    assert result["usage"]["sub_calls"] <= limit
    assert result["answer"] and result["stop_reason"].startswith("max_sub_calls")


def parent_of(question: str) -> str:
    """'child 3' -> 'top'; 'grandchild 3.1' -> 'child 3'."""
    return "top" if question.startswith("child") else "child " + question.split()[1].split(".")[0]


async def test_each_parent_keeps_at_most_child_concurrency_children_alive(isolated_backend, tmp_path):
    with ScriptedOpenAIServer(tree(children=5, grandchildren=3, sub_calls=1), delay=0.05) as server:
        result = await run_tree(server, isolated_backend, tmp_path, child_concurrency=2, batch_concurrency=8)
    spans = rlm_lives(server)
    assert len(spans) == 1 + 5 + 5 * 3 and result["stop_reason"] == "final"
    by_parent: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for question, span in spans.items():
        if question != "top":
            by_parent[parent_of(question)].append(span)
    assert len(by_parent) == 6
    assert max(most_alive_at_once(lives) for lives in by_parent.values()) <= 2


async def test_retries_of_failing_sub_calls_count_against_the_limit(tmp_path):
    def respond(messages: list[dict[str, Any]]) -> str:
        if not is_root_call(messages):
            raise RuntimeError("the sub-model is down")
        if root_step(messages) > 0 or "reached its limit" in str(messages[-1]["content"]):
            return FINISH
        return "```repl\nout = llm_query_batched(['x'] * 4)\n```"

    need_backend("local")
    with ScriptedOpenAIServer(respond) as server:
        result = await run_tree(server, "local", tmp_path, max_sub_calls=5, sub_call_retries=2)
    assert len([entry for entry in server.received if entry == [{"role": "user", "content": "x"}]]) == 5
    assert result["answer"] and result["stop_reason"].startswith("max_sub_calls")
