"""llm_query over the real litellm HTTP path: concurrency, the concurrency setting, failures."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.conftest import TEST_IMAGE, need_bwrap, need_e2b
from tests.openai_server import ScriptedOpenAIServer
from tests.scripted_models import ScriptedChatModel, steps


@pytest.fixture(autouse=True)
async def sandboxes():
    need_bwrap()
    yield
    await close_sandboxes()


def sub_model(messages):
    prompt = messages[-1]["content"]
    if "FAIL" in prompt:
        raise RuntimeError("this prompt always fails")
    return prompt.upper()


async def ask(server, tmp_path, code: str, **settings):
    root = ScriptedChatModel(respond=steps(f"```repl\n{code}\n```", "```repl\nFINAL(str(out))\n```"))
    graph = build_rlm_graph(
        root, "openai/sub", api_base=server.url, state_dir=str(tmp_path), sub_call_retries=0, **settings
    ).compile(checkpointer=InMemorySaver())
    return await graph.ainvoke({"query": "q"}, {"configurable": {"thread_id": "t"}})


async def test_batched_prompts_run_concurrently_up_to_the_default_of_16(tmp_path, backend):
    code = "out = llm_query_batched([f'p{i}' for i in range(48)])"
    with ScriptedOpenAIServer(sub_model, delay=0.1, hold_first=16) as server:
        result = await ask(
            server,
            tmp_path,
            code,
            sandbox=backend,
            docker_image=TEST_IMAGE,
            e2b_workdir=need_e2b().workdir() if backend == "e2b" else "",
        )
    assert eval(result["answer"]) == [f"P{i}" for i in range(48)]
    assert len(server.log) == 48
    assert server.max_overlap() == 16
    assert result["usage"]["sub_calls"] == 48 and result["usage"]["input_tokens"] > 0


async def test_the_concurrency_setting_caps_requests_in_flight(tmp_path):
    with ScriptedOpenAIServer(sub_model, delay=0.1, hold_first=3) as server:
        await ask(server, tmp_path, "out = llm_query_batched(['a'] * 12)", batch_concurrency=3)
    assert server.max_overlap() == 3


async def test_a_failing_prompt_yields_an_error_string_in_its_slot(tmp_path):
    with ScriptedOpenAIServer(sub_model) as server:
        result = await ask(server, tmp_path, "out = llm_query_batched(['one', 'FAIL two', 'three'])")
    first, failed, third = eval(result["answer"])
    assert (first, third) == ("ONE", "THREE")
    assert failed.startswith("Error:") and "always fails" in failed


async def test_a_failing_single_llm_query_raises_in_the_cell(tmp_path):
    code = "try:\n    llm_query('FAIL')\n    out = 'no error'\nexcept Exception as e:\n    out = type(e).__name__"
    with ScriptedOpenAIServer(sub_model) as server:
        result = await ask(server, tmp_path, code)
    assert result["answer"] == "LLMQueryError"


async def test_llm_query_can_name_another_allowed_model(tmp_path):
    def model(messages):
        return "from the named model"

    with ScriptedOpenAIServer(model) as server:
        code = "out = llm_query('hi', model='openai/other')"
        result = await ask(server, tmp_path, code, allowed_models=("openai/other",))
    assert result["answer"] == "from the named model"
    assert server.log[0]["messages"][-1]["content"] == "hi"
    assert server.log[0]["model"] == "other"
