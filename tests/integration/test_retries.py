"""Model calls are tried again for passing failures only, through the real litellm HTTP path."""

from __future__ import annotations

import collections

import pytest

from langgraph_rlm import build_rlm_graph
from langgraph_rlm.llm.retry import backoff, is_transient, retry_after
from tests.conftest import need_bwrap
from tests.openai_server import HTTPFailure, ScriptedOpenAIServer, is_root_call, root_step

PROGRAM = [
    "```repl\ntry:\n    out = llm_query('hi')\nexcept Exception as exc:\n    out = f'{type(exc).__name__}: {exc}'\n```",
    "```repl\nFINAL(out)\n```",
]


def graph_for(server: ScriptedOpenAIServer, tmp_path, **settings):
    return build_rlm_graph(
        "openai/scripted",
        "openai/scripted-sub",
        api_base=server.url,
        state_dir=str(tmp_path / "state"),
        compact_turns=False,
        **settings,
    ).compile()


async def test_calls_that_fail_twice_for_passing_reasons_still_answer(tmp_path):
    need_bwrap()
    attempts: collections.Counter = collections.Counter()

    def model(messages):
        request = (
            is_root_call(messages),
            root_step(messages) if is_root_call(messages) else 0,
            str(messages[-1]),
        )
        attempts[request] += 1
        if attempts[request] == 1:
            raise HTTPFailure(429, "slow down", {"Retry-After": "0"})
        if attempts[request] == 2:
            raise HTTPFailure(503, "overloaded")
        return PROGRAM[root_step(messages)] if is_root_call(messages) else "steady"

    with ScriptedOpenAIServer(model) as server:
        result = await graph_for(server, tmp_path, sub_call_retries=2).ainvoke({"query": "q"})
    assert result["answer"] == "steady"
    assert len(attempts) == 3 and set(attempts.values()) == {3}, attempts


async def test_a_refused_key_fails_at_once_and_names_the_model(tmp_path):
    need_bwrap()
    sub_attempts = []

    def model(messages):
        if is_root_call(messages):
            return PROGRAM[root_step(messages)]
        sub_attempts.append(1)
        raise HTTPFailure(401, "invalid api key")

    with ScriptedOpenAIServer(model) as server:
        result = await graph_for(server, tmp_path, sub_call_retries=3).ainvoke({"query": "q"})
    assert len(sub_attempts) == 1
    answer = result["answer"]
    assert answer.startswith("LLMQueryError") and "openai/scripted-sub at http://" in answer
    assert "refused the credentials, not retried; check OPENAI_API_KEY" in answer
    assert "\n" not in answer


async def test_a_refused_root_call_ends_the_run_with_one_line_at_once(tmp_path):
    need_bwrap()
    calls = []

    def model(messages):
        calls.append(1)
        raise HTTPFailure(401, "invalid api key")

    with (
        ScriptedOpenAIServer(model) as server,
        pytest.raises(
            Exception,
            match=r"root model call failed: openai/scripted at http://\S+: .*not retried; check OPENAI_API_KEY",
        ) as failed,
    ):
        await graph_for(server, tmp_path, sub_call_retries=3).ainvoke({"query": "q"})
    assert len(calls) == 1 and "\n" not in str(failed.value)


class StatusError(Exception):
    def __init__(self, status: int, headers: dict | None = None) -> None:
        super().__init__(f"status {status}")
        self.status_code = status
        self.response = type("Response", (), {"headers": headers or {}})()


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (429, True),
        (408, True),
        (500, True),
        (502, True),
        (503, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_which_statuses_are_worth_another_attempt(status, transient):
    assert is_transient(StatusError(status)) is transient


def test_connection_failures_pass_and_a_full_window_does_not():
    class APIConnectionError(Exception):
        pass

    class ContextWindowExceededError(Exception):
        pass

    assert is_transient(APIConnectionError("reset")) and is_transient(TimeoutError())
    assert not is_transient(ContextWindowExceededError("too long"))


def test_retry_after_is_honoured_in_seconds_or_as_a_date_and_capped():
    assert retry_after(StatusError(429, {"retry-after": "7"})) == 7.0
    assert retry_after(StatusError(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(StatusError(429)) is None
    assert backoff(0, StatusError(429, {"retry-after": "3600"})) == 30.0
    delays = [backoff(2, StatusError(503)) for _ in range(50)]
    assert all(1.0 <= d <= 3.0 for d in delays) and len(set(delays)) > 1
