"""Usage a user can trust: every call of every depth is counted, by depth and model, exactly as the
model server reported it; each depth's root calls go to the model routed to that depth."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from langgraph_rlm import build_rlm_graph, close_sandboxes
from langgraph_rlm.progress import usage_line
from tests.conftest import need_backend
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step
from tests.security.test_subcall_budget import FINISH, question_of


@pytest.fixture(autouse=True)
async def sandboxes():
    yield
    await close_sandboxes()


def parent_and_child(messages: list[dict[str, Any]]) -> str:
    if not is_root_call(messages):
        return "summary" if "sub of" not in messages[0]["content"] else "sub answer"
    if root_step(messages) > 0 or "reached its limit" in str(messages[-1]["content"]):
        return FINISH
    if question_of(messages) == "top":
        return "```repl\nout = [llm_query('sub of top'), rlm_query('kid')]\n```"
    return "```repl\nout = llm_query_batched(['sub of kid'] * 2)\n```"


async def run(server: ScriptedOpenAIServer, tmp_path) -> dict:
    need_backend("local")
    graph = build_rlm_graph(
        "openai/root",
        "openai/sub",
        api_base=server.url,
        state_dir=str(tmp_path),
        sandbox="local",
        max_depth=1,
        depth_models=("openai/strong", "openai/cheap"),
    ).compile()
    return await graph.ainvoke({"query": "top"})


def depth_of(entry: dict[str, Any]) -> int:
    messages = entry["messages"]
    if is_root_call(messages):
        return 0 if question_of(messages) == "top" else 1
    return 1 if "sub of kid" in messages[0]["content"] else 0


async def test_each_depth_has_its_own_root_model(tmp_path):
    with ScriptedOpenAIServer(parent_and_child) as server:
        result = await run(server, tmp_path)
    roots = [(depth_of(e), e["model"]) for e in server.log if is_root_call(e["messages"])]
    assert result["stop_reason"] == "final"
    assert set(roots) == {(0, "strong"), (1, "cheap")}


async def test_usage_counts_every_call_of_every_depth_as_the_server_reported_it(tmp_path):
    with ScriptedOpenAIServer(parent_and_child) as server:
        result = await run(server, tmp_path)
    usage = result["usage"]
    assert usage["input_tokens"] == sum(e["prompt_tokens"] for e in server.log)
    assert usage["output_tokens"] == sum(e["completion_tokens"] for e in server.log)
    root_models = {"strong", "cheap"}
    assert usage["root_calls"] == sum(1 for e in server.log if e["model"] in root_models)
    assert usage["sub_calls"] == sum(1 for e in server.log if e["model"] == "sub") + 1  # + the child RLM

    served: dict[str, Counter] = {}
    for entry in server.log:
        key = f"{depth_of(entry)}:openai/{entry['model']}"
        counts = served.setdefault(key, Counter())
        counts.update(calls=1, input_tokens=entry["prompt_tokens"], output_tokens=entry["completion_tokens"])
    by_model = usage["by_model"]
    assert set(by_model) == {"0:openai/strong", "0:openai/sub", "1:openai/cheap", "1:openai/sub"}
    for key, counts in served.items():
        entry = by_model[key]
        assert (entry["calls"], entry["input_tokens"], entry["output_tokens"]) == (
            counts["calls"],
            counts["input_tokens"],
            counts["output_tokens"],
        )
        assert entry["cost"] is None and entry["cache_hits"] == 0

    line = usage_line(usage)
    assert "cost unknown for openai/cheap, openai/strong, openai/sub" in line and "$" not in line
