"""Budget bypass by tokens and dollars: a tree three deep with batched children at every level,
each also sending batched sub-calls. The question's max_tokens, max_cost and max_sub_calls hold
over the whole tree, counted where it costs money: the model server's own request log."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from langgraph_rlm.llm.models import import_litellm
from tests.conftest import need_backend
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step
from tests.scripted_models import ScriptedChatModel
from tests.security.test_subcall_budget import FINISH, question_of

PRICED = "openai/gpt-4o-mini"
FANOUT = 2
SUB_CALLS = 4
BEST_ANSWER = "['sub answer"
"""The root's best answer (FINISH) reports what its REPL gathered: the budget kept room for it."""


@pytest.fixture(autouse=True)
async def sandboxes():
    yield
    await close_sandboxes()


def deep_tree(messages: list[dict[str, Any]]) -> str:
    """'top' -> 'c 0' .. -> 'c 0.1' .. -> 'c 0.1.2' ..: every RLM above depth 3 asks FANOUT
    batched children; every RLM sends SUB_CALLS batched sub-calls."""
    if not is_root_call(messages):
        return "sub answer " * 20
    question = question_of(messages)
    if root_step(messages) > 0 or "reached its limit" in str(messages[-1]["content"]):
        return FINISH
    name = "c " if question == "top" else question + "."
    depth = 0 if question == "top" else question.count(".") + 1
    code = f"out = llm_query_batched(['sub of {question}'] * {SUB_CALLS})"
    if depth < 3:
        code += f"\nout += rlm_query_batched([f'{name}{{i}}' for i in range({FANOUT})], ['ctx'] * {FANOUT})"
    return f"```repl\n{code}\n```"


async def run_deep_tree(server: ScriptedOpenAIServer, tmp_path, model: str, **limits: Any) -> dict:
    need_backend("local")
    graph = build_rlm_graph(
        model,
        model,
        api_base=server.url,
        state_dir=str(tmp_path),
        max_depth=3,
        sandbox="local",
        sub_call_retries=0,
        child_concurrency=FANOUT,
        output_limit=2_000,
        cache_sub_calls=False,
        **limits,
    ).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 200}
    return await graph.ainvoke({"query": "top"}, config)


def tokens_served(server: ScriptedOpenAIServer) -> int:
    return sum(entry["prompt_tokens"] + entry["completion_tokens"] for entry in server.log)


def dollars_served(server: ScriptedOpenAIServer) -> float:
    litellm = import_litellm()
    total = 0.0
    for entry in server.log:
        prompt, completion = litellm.cost_per_token(
            model=PRICED, prompt_tokens=entry["prompt_tokens"], completion_tokens=entry["completion_tokens"]
        )
        total += prompt + completion
    return total


def depths_reached(server: ScriptedOpenAIServer) -> set[int]:
    questions = {question_of(e["messages"]) for e in server.log if is_root_call(e["messages"])}
    return {0 if q == "top" else q.count(".") + 1 for q in questions}


async def test_max_tokens_holds_over_a_three_deep_tree_of_batched_children(tmp_path):
    limit = 15_000
    with ScriptedOpenAIServer(deep_tree) as server:
        result = await run_deep_tree(server, tmp_path, "openai/root", max_tokens=limit)
    assert depths_reached(server) >= {0, 1, 2}
    assert 0.5 * limit < tokens_served(server) <= limit
    assert all(entry["max_tokens"] for entry in server.log)
    assert result["stop_reason"].startswith(f"max_tokens ({limit} tokens, reached at depth ")
    assert result["answer"].startswith(BEST_ANSWER)
    used = result["usage"]["input_tokens"] + result["usage"]["output_tokens"]
    assert used == tokens_served(server)


async def test_max_cost_holds_over_a_three_deep_tree_of_batched_children(tmp_path):
    limit = 0.003
    with ScriptedOpenAIServer(deep_tree) as server:
        result = await run_deep_tree(server, tmp_path, PRICED, max_cost=limit)
    assert depths_reached(server) >= {0, 1, 2}
    assert 0.5 * limit < dollars_served(server) <= limit
    assert result["stop_reason"].startswith(f"max_cost (${limit:g}, reached at depth ")
    assert result["answer"].startswith(BEST_ANSWER)
    assert result["usage"]["cost"] == pytest.approx(dollars_served(server))


async def test_max_sub_calls_holds_over_a_three_deep_tree_of_batched_children(tmp_path):
    limit = 30
    with ScriptedOpenAIServer(deep_tree) as server:
        result = await run_deep_tree(server, tmp_path, "openai/root", max_sub_calls=limit)
    sub_requests = sum(1 for entry in server.log if entry["messages"][0]["content"].startswith("sub of"))
    children = len({question_of(e["messages"]) for e in server.log if is_root_call(e["messages"])}) - 1
    assert depths_reached(server) >= {0, 1, 2}
    assert sub_requests + children <= limit
    assert result["stop_reason"].startswith("max_sub_calls") and result["answer"]


async def test_the_tree_without_limits_spends_more_than_the_limits_above(tmp_path):
    """The limits above are reached, not merely unapproached: the same tree, unlimited, costs more."""
    with ScriptedOpenAIServer(deep_tree) as server:
        result = await run_deep_tree(server, tmp_path, PRICED)
    assert result["stop_reason"] == "final"
    assert depths_reached(server) == {0, 1, 2, 3}
    assert tokens_served(server) > 15_000 and dollars_served(server) > 0.003
    assert sum(1 for entry in server.log if entry["messages"][0]["content"].startswith("sub of")) > 30
    assert not any(entry["max_tokens"] for entry in server.log)


async def test_max_tokens_holds_for_langchain_chat_model_objects_too(tmp_path):
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    model = ScriptedChatModel(
        respond=lambda messages: deep_tree([{"role": roles[m.type], "content": m.content} for m in messages])
    )
    limit = 15_000
    with ScriptedOpenAIServer(deep_tree) as server:
        result = await run_deep_tree(server, tmp_path, model, max_tokens=limit)
    assert not server.log and len(model.limits) > 10
    assert all(limit is not None for limit in model.limits), "every call was given its output allowance"
    assert 0.5 * limit < result["usage"]["input_tokens"] + result["usage"]["output_tokens"] <= limit
    assert result["stop_reason"].startswith(f"max_tokens ({limit} tokens, reached at depth ")
