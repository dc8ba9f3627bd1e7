"""max_reply_tokens: a small local model can ramble for thousands of tokens in one reply; the cap
reaches the model server on every request of the tree, with or without a question budget."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.conftest import need_bwrap
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step
from tests.security.test_subcall_budget import question_of

CAP = 300


@pytest.fixture(autouse=True)
async def sandboxes():
    need_bwrap()
    yield
    await close_sandboxes()


def root_sub_call_and_child(messages: list[dict[str, Any]]) -> str:
    if not is_root_call(messages):
        return "sub answer"
    if question_of(messages) == "child":
        return "```repl\nFINAL('child answer')\n```"
    if root_step(messages) == 0:
        return "```repl\nout = [llm_query('sub'), rlm_query('child', 'ctx')]\n```"
    return "```repl\nFINAL(repr(out))\n```"


@pytest.mark.parametrize("budget", [{}, {"max_tokens": 100_000}], ids=["no budget", "token budget"])
async def test_every_request_of_the_tree_carries_the_reply_cap(tmp_path, budget):
    with ScriptedOpenAIServer(root_sub_call_and_child) as server:
        graph = build_rlm_graph(
            "openai/root",
            "openai/sub",
            api_base=server.url,
            state_dir=str(tmp_path),
            sandbox="local",
            max_reply_tokens=CAP,
            **budget,
        ).compile(checkpointer=InMemorySaver())
        result = await graph.ainvoke({"query": "top"}, {"configurable": {"thread_id": "t"}})
    assert result["answer"] == repr(["sub answer", "child answer"])
    asked = {question_of(entry["messages"]) for entry in server.log if is_root_call(entry["messages"])}
    assert {"top", "child"} <= asked and "sub" in [entry["model"] for entry in server.log]
    assert [entry["max_tokens"] for entry in server.log] == [CAP] * len(server.log)
