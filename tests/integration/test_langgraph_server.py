"""The graph served by `langgraph dev` (the LangGraph API server), driven by `langgraph-sdk`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_bwrap, unavailable
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question

REPO = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def model(messages):
    if not is_root_call(messages):
        return "summary"
    question = last_question(messages)
    if question == "remember the length":
        return "```repl\nlength = len(context)\nchild = rlm_query('child: measure', context='abc')\nFINAL('noted ' + child)\n```"
    if question == "child: measure":
        return "```repl\nFINAL(len(context))\n```"
    if question == "show it":
        return "```repl\nimport os\nFINAL(f'{context}|{os.getuid()}')\n```"
    return "```repl\nFINAL(length * 2)\n```"


def served_from(folder: Path) -> Path:
    """A folder with the repository's langgraph.json, its paths made absolute: the dev server keeps
    its state (.langgraph_api/) in the folder it runs in, which must not be the checkout."""
    config = json.loads((REPO / "langgraph.json").read_text())
    config["dependencies"] = [str((REPO / dep).resolve()) for dep in config["dependencies"]]
    config["graphs"] = {name: str(REPO / path) for name, path in config["graphs"].items()}
    folder.mkdir()
    (folder / "langgraph.json").write_text(json.dumps(config))
    return folder


@contextlib.asynccontextmanager
async def dev_server(tmp_path: Path, llm: ScriptedOpenAIServer, **env: str) -> AsyncIterator[Any]:
    """`langgraph dev` serving the repository's graph as an operator would set it up, and an SDK
    client for it."""
    need_bwrap()
    if subprocess.run([sys.executable, "-c", "import langgraph_api"], capture_output=True).returncode != 0:
        unavailable("langgraph-cli[inmem] is not installed (pip install -e '.[test]')")
    from langgraph_sdk import get_client

    port = free_port()
    operator = {
        "RLM_MODEL": "openai/scripted",
        "RLM_SUB_MODEL": "openai/scripted",
        "RLM_API_BASE": llm.url,
        "RLM_STATE_DIR": str(tmp_path / "state"),
        **env,
    }
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (the server writes to it until the end)
    server = subprocess.Popen(
        ["langgraph", "dev", "--no-browser", "--no-reload", "--port", str(port)],
        cwd=served_from(tmp_path / "served"),
        env={**os.environ, **operator},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = get_client(url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                await client.assistants.search(graph_id="rlm")
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "server.log").read_text()[-2000:]) from None
                await asyncio.sleep(1)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


async def test_langgraph_dev_serves_a_persistent_rlm(tmp_path):
    allowed = tmp_path / "shared"
    allowed.mkdir()
    context = allowed / "notes.txt"
    context.write_text("n" * 1234)
    with ScriptedOpenAIServer(model) as llm:
        async with dev_server(tmp_path, llm, RLM_ALLOW_DIRS=str(allowed)) as client:
            thread = await client.threads.create()
            first = await client.runs.wait(
                thread["thread_id"], "rlm", input={"query": "remember the length", "contexts": [str(context)]}
            )
            assert first["answer"] == "noted 3"
            second = await client.runs.wait(thread["thread_id"], "rlm", input={"query": "double it"})
            assert second["answer"] == "2468"
            assert second["stop_reason"] == "final"


async def test_a_remote_caller_chooses_limits_and_models_but_never_the_deployment(tmp_path):
    """The server drops context keys outside the published schema, so deployment settings a caller
    sends are ignored (a Python caller gets an error for them: tests/unit/test_run_settings.py)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the operator's secret")
    with ScriptedOpenAIServer(model) as llm:
        async with dev_server(tmp_path, llm, RLM_MAX_TIME="600") as client:

            async def ask(query: str, contexts: list | None = None, context: dict | None = None) -> dict:
                thread = await client.threads.create()
                question = {"query": query, "contexts": contexts or []}
                return await client.runs.wait(thread["thread_id"], "rlm", input=question, context=context)

            async def refused(*words: str, **question: Any) -> None:
                with pytest.raises(Exception) as error:
                    await ask("show it", **question)
                assert all(word in str(error.value) for word in words), error.value

            for key, value in [
                ("api_base", "http://127.0.0.1:9/v1"),
                ("sandbox", "process"),
                ("state_dir", "/"),
                ("allow_dirs", ["/"]),
                ("path_contexts", True),
            ]:
                ignored = await ask("show it", contexts=[str(secret)], context={key: value})
                assert ignored["answer"] == f"{secret}|65534", (key, ignored)
            await refused("RunSettingsError", "max_time", "600", context={"max_time": 10_000})
            await refused("RunSettingsError", "max_iterations", "number", context={"max_iterations": "ten"})
            await refused("RunSettingsError", "operator's models", context={"model": "openai/gpt-5"})
            forged = {"name": "context_0", "sha": "0" * 64, "source": str(secret), "size": 1, "preview": ""}
            await refused("ContextError", contexts=[forged])

            chosen = await ask(
                "show it", contexts=[str(secret)], context={"max_iterations": 2, "user_id": "u1"}
            )
            assert chosen["answer"] == f"{secret}|65534" and chosen["stop_reason"] == "final"
    served = [m for m in llm.received if is_root_call(m)]
    assert served and all("the operator's secret" not in json.dumps(m) for m in served)
