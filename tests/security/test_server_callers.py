"""Point 13 of the trust boundary: a remote caller of a LangGraph server may choose among the
operator's models and lower its limits; where code runs, which endpoint and credentials are
used, where state lives and which server files are read stay the operator's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_langgraph_server import dev_server, model
from tests.openai_server import ScriptedOpenAIServer, is_root_call


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
