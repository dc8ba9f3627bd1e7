"""A LangSmith trace of the `rlm` command, uploaded to a stand-in endpoint by the real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langgraph_rlm.llm.tracing import TRACED_PROMPT_CHARS
from tests.conftest import need_bwrap, run_rlm
from tests.langsmith_server import LangSmithServer
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

REPO = Path(__file__).parents[2]

CHILD_QUESTION = "child: which colour is the sky?"
TREE_STEP = (
    "```repl\n"
    "out = llm_query_batched(['first prompt', 'second prompt'])\n"
    "again = llm_query('first prompt')\n"
    f"kid = rlm_query({CHILD_QUESTION!r})\n"
    "big = llm_query('summarise: ' + context)\n"
    "```"
)
MARK = "Q" * 64
PRICED = "openai/gpt-4o-mini"


def tree_model(messages: list[dict[str, Any]]) -> str:
    if not is_root_call(messages):
        return "sub answer to " + messages[-1]["content"][:20]
    if "child:" in last_question(messages):
        return "```repl\nFINAL('blue')\n```"
    if root_step(messages) == 0:
        return TREE_STEP
    return "```repl\nFINAL(str(out) + again + kid + big[:5])\n```"


def steps_model(messages: list[dict[str, Any]]) -> str:
    """Asked for N steps, takes N: each step calls a sub-model and prints 4 KB."""
    if not is_root_call(messages):
        return "ok " * 50
    wanted = int(last_question(messages).split()[-1])
    step = root_step(messages)
    if step + 1 < wanted:
        return f"```repl\nx{step} = llm_query('step {step} ' + 'p' * 500)\nprint('seen', {step}, 'y' * 4000)\n```"
    return "```repl\nFINAL('done')\n```"


def traced_rlm(
    server: ScriptedOpenAIServer,
    langsmith: LangSmithServer,
    tmp_path: Path,
    *args: str,
    sub_model: str = "openai/scripted",
):
    flags = ["--model", "openai/scripted", "--sub-model", sub_model, "--api-base", server.url]
    env = {
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_ENDPOINT": langsmith.url,
        "LANGSMITH_API_KEY": "test",
    }
    done = run_rlm(["run", *args, *flags], tmp_path / "state", env)
    assert done.returncode == 0, done.stderr
    return done


def ancestors(runs: dict[str, dict[str, Any]], run: dict[str, Any]) -> list[dict[str, Any]]:
    chain = []
    while run.get("parent_run_id"):
        run = runs[str(run["parent_run_id"])]
        chain.append(run)
    return chain


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("extra") or {}).get("metadata") or {}


@pytest.mark.parametrize("upload", ["multipart", "batch"])
def test_sub_calls_and_child_rlms_nest_under_the_step_that_made_them(tmp_path, upload):
    need_bwrap()
    context = tmp_path / "context.txt"
    context.write_text(MARK + "x" * (1 << 20))
    with ScriptedOpenAIServer(tree_model) as server, LangSmithServer(upload == "multipart") as langsmith:
        done = traced_rlm(
            server, langsmith, tmp_path, "what is it", "--context", str(context), sub_model=PRICED
        )
        runs, uploaded = dict(langsmith.runs), langsmith.received
    assert done.stdout.strip().startswith("['sub answer to first prompt', 'sub answer to second prompt']")
    assert "Pydantic" not in done.stderr, done.stderr

    (root,) = [run for run in runs.values() if not run.get("parent_run_id")]
    assert root["name"] == "RLM"
    assert all(run.get("end_time") for run in runs.values()), "every run was closed"

    sub_calls = [run for run in runs.values() if run["name"] == "llm_query"]
    assert len(sub_calls) == 4  # the batch of two, a cache hit and the big one; the child made none
    prompts = {run["inputs"]["messages"][0]["content"][:20] for run in sub_calls}
    assert prompts == {"first prompt", "second prompt", "summarise: " + MARK[:9]}
    for run in sub_calls:
        assert run["run_type"] == "llm"
        chain = ancestors(runs, run)
        assert chain[0]["name"] == "execute" and chain[-1] is root
        assert metadata(run)["ls_model_name"] == PRICED
        assert metadata(run)["ls_provider"] == "openai"
    cached = [run for run in sub_calls if metadata(run)["cached"]]
    assert [run["inputs"]["messages"][0]["content"] for run in cached] == ["first prompt"]
    for run in [run for run in sub_calls if not metadata(run)["cached"]]:
        tokens = metadata(run)["usage_metadata"]
        assert tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0
        assert tokens["total_tokens"] == tokens["input_tokens"] + tokens["output_tokens"]
        assert tokens["total_cost"] > 0
        assert run["outputs"]["choices"][0]["message"]["content"].startswith("sub answer to")

    (big,) = [run for run in sub_calls if run["inputs"]["messages"][0]["content"].startswith("summarise")]
    assert metadata(big)["prompt_chars"] > 1 << 20
    assert len(json.dumps(big["inputs"])) < TRACED_PROMPT_CHARS + 1000
    assert any(len(entry["messages"][-1]["content"]) > 1 << 20 for entry in server.log), (
        "the model got it all"
    )
    assert uploaded < 1 << 20, "the context is in no run of the trace"

    (child,) = [run for run in runs.values() if run["name"].startswith("rlm_query")]
    assert child["name"] == f"rlm_query depth 1: {CHILD_QUESTION}"
    assert ancestors(runs, child)[0]["name"] == "execute"
    assert ancestors(runs, child)[0] is ancestors(runs, big)[0]
    child_models = [
        run for run in runs.values() if child in ancestors(runs, run) and run["run_type"] == "llm"
    ]
    assert child_models, "the child's own root call is traced under it"


def test_a_trace_grows_with_the_steps_of_a_question(tmp_path):
    """Each node's run counts the conversation instead of repeating it, and each root model run
    keeps the system prompt and what is new since the last call: every step adds about as much
    to the trace as the one before."""
    need_bwrap()
    uploaded = {}
    with ScriptedOpenAIServer(steps_model) as server, LangSmithServer() as langsmith:
        for steps in (3, 6, 9):
            langsmith.reset()
            traced_rlm(server, langsmith, tmp_path, f"take steps: {steps}", "--no-cache-sub-calls")
            runs = langsmith.runs.values()
            assert len([run for run in runs if run["name"] == "llm_query"]) == steps - 1
            assert len([run for run in runs if run["name"] == "root model"]) >= steps
            uploaded[steps] = langsmith.received
    first, second = uploaded[6] - uploaded[3], uploaded[9] - uploaded[6]
    assert second < 1.25 * first, uploaded


PYTHON_CALLER = """
import asyncio, sys
from langgraph_rlm import build_rlm_graph
graph = build_rlm_graph("openai/scripted", api_base=sys.argv[1], state_dir=sys.argv[2]).compile()
text = "a line of the context given as text\\n" * 30_000
result = asyncio.run(graph.ainvoke({"query": "how long?", "contexts": [text]}))
assert result["answer"] == str(len(text)), result
from langchain_core.tracers.langchain import wait_for_all_tracers
wait_for_all_tracers()
"""


def test_a_context_sent_as_text_is_traced_as_a_reference(tmp_path):
    """The graph's entry stores it before the graph runs, so even the root run's input holds the
    reference and its preview."""
    need_bwrap()

    def model(messages: list[dict[str, Any]]) -> str:
        return "```repl\nFINAL(len(context))\n```" if is_root_call(messages) else "summary"

    env = {"LANGSMITH_TRACING": "true", "LANGSMITH_API_KEY": "test", "PYTHONPATH": str(REPO)}
    with ScriptedOpenAIServer(model) as server, LangSmithServer() as langsmith:
        env["LANGSMITH_ENDPOINT"] = langsmith.url
        done = subprocess.run(
            [sys.executable, "-c", PYTHON_CALLER, server.url, str(tmp_path)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        (root,) = [run for run in langsmith.runs.values() if not run.get("parent_run_id")]
        assert root["name"] == "RLM"
        (ref,) = root["inputs"]["contexts"]
        assert ref["size"] == 30_000 * 36 and ref["preview"].startswith("a line of the context")
        assert langsmith.received < 300_000, f"{langsmith.received:,} bytes of trace for a 1 MB text"
