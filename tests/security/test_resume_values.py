"""Resume values are hostile input. A caller answers a request for approval with any value it
likes, through `Command(resume=...)` in process or `command={"resume": ...}` on a server. A value
that is not a decision is asked about again, with an error naming what was wrong; LangGraph hands
a paused node every resume value it took again on each later resume, so one bad value that raised
would fail every later answer and the thread would be stuck for good."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from langgraph_rlm import build_rlm_graph, close_sandboxes
from langgraph_rlm.nodes.approval import MAX_CODE_CHARS, MAX_MESSAGE_CHARS
from tests.conftest import need_bwrap
from tests.integration.test_langgraph_server import dev_server
from tests.openai_server import ScriptedOpenAIServer, is_root_call
from tests.scripted_models import ScriptedChatModel, steps

CELL = "```repl\nx = 6\n```\n```repl\nFINAL(x * 7)\n```"
BLOCKS = ("x = 6", "FINAL(x * 7)")
QUESTION = "what is six times seven?"
APPROVE = {"action": "approve"}
ACTIONS = ("approve", "edit", "reject")
ERROR_CHARS = 200
MB = 1 << 20

TEXT = st.text(st.characters() | st.characters(categories=["Cs"]))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
NOT_AN_ACTION = JSON.filter(lambda action: action not in ACTIONS)
NOT_CODE = JSON.filter(lambda code: not isinstance(code, str)) | st.sampled_from(["", " \n\t "])
NOT_A_MESSAGE = JSON.filter(lambda message: not isinstance(message, str))
HUGE = st.sampled_from([MAX_CODE_CHARS + 1, MB, 4 * MB]).map(lambda n: "x" * n)
HOSTILE = st.one_of(
    JSON.filter(lambda value: not (isinstance(value, dict) and value.get("action", None) in ACTIONS)),
    st.fixed_dictionaries({"action": NOT_AN_ACTION}, optional={"code": JSON, "message": JSON}),
    st.fixed_dictionaries({"action": st.just("edit"), "code": NOT_CODE}),
    st.fixed_dictionaries({"action": st.just("reject"), "message": NOT_A_MESSAGE}),
    st.builds(
        lambda action, extra: {**extra, "action": action},
        st.sampled_from(ACTIONS),
        st.dictionaries(TEXT, JSON, min_size=1).filter(
            lambda d: not d.keys() <= {"action", "code", "message"}
        ),
    ),
    st.fixed_dictionaries({"action": st.just("edit"), "code": HUGE}),
    st.fixed_dictionaries(
        {"action": st.just("reject"), "message": HUGE.map(lambda s: s[: MAX_MESSAGE_CHARS + 1])}
    ),
    HUGE,
    st.sampled_from([[0] * MB, {str(i): i for i in range(100_000)}, {"action": ["approve"] * MB}]),
)
# Lone surrogates are stored as "?": an edit holding one is taken, and replayed as taken.
FIRST_BLOCK = st.sampled_from([APPROVE, {"action": "edit", "code": "x = 6  # \udc00 kept"}])


def is_resume_map(value: Any) -> bool:
    """LangGraph reads a dict whose keys all look like interrupt ids as answers by id ({} too)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and re.fullmatch("[0-9a-f]{32}", k) for k in value
    )


def refused_by_langgraph(value: Any, saver: AsyncSqliteSaver) -> bool:
    """None is no resume at all to LangGraph, and a value the checkpointer cannot serialise (an
    int past 64 bits, lists nested past its depth) fails where LangGraph stores it: the call
    raises LangGraph's own error, whether or not the graph has seen the value yet."""
    if value is None:
        return True
    try:
        saver.serde.dumps_typed(value)
    except (TypeError, ValueError):
        return True
    return False


def asked_again(request: dict, original: dict) -> None:
    """The same cell, with one short line saying what was wrong and nothing of the value itself."""
    error = request.get("error")
    assert {k: v for k, v in request.items() if k != "error"} == original, request
    assert isinstance(error, str) and error and "\n" not in error and len(error) <= ERROR_CHARS, error
    assert len(json.dumps(request)) <= len(json.dumps(original)) + ERROR_CHARS + 20


@pytest.fixture
async def graph(tmp_path):
    need_bwrap()
    root = ScriptedChatModel(respond=steps(CELL))
    sub = ScriptedChatModel(respond=lambda messages: "sub")
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "threads.sqlite")) as saver:
        yield build_rlm_graph(root, sub, state_dir=str(tmp_path / "state"), approve_code=True).compile(
            checkpointer=saver
        )
    await close_sandboxes()


async def waiting_request(graph: Any, config: dict) -> tuple[dict, str]:
    state = await graph.aget_state(config)
    assert state.next == ("execute",), state
    (interrupt,) = state.interrupts
    return interrupt.value, interrupt.id


HOSTILE_VALUES = st.lists(st.tuples(HOSTILE, st.booleans()), max_size=3)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=HOSTILE_VALUES, taken=FIRST_BLOCK, second=HOSTILE_VALUES)
@example(first=[({"action": ["approve"]}, False)], taken=APPROVE, second=[])
@example(first=[({"action": {"approve": 1}}, False), ({}, False)], taken=APPROVE, second=[(["no"], True)])
@example(first=[(None, True), (None, False), (2**70, False)], taken=APPROVE, second=[])
async def test_any_resume_value_in_process_is_asked_again_and_a_later_approval_answers(
    graph, first, taken, second
):
    """Each value is sent with `Command(resume=value)`, or addressed to the interrupt by its id."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 50}
    await graph.ainvoke({"query": QUESTION}, config)
    for block, values, answer in ((1, first, taken), (2, second, APPROVE)):
        original, _ = await waiting_request(graph, config)
        assert (original["block"], original["code"]) == (block, BLOCKS[block - 1])
        for value, by_id in values:
            before, interrupt_id = await waiting_request(graph, config)
            sent = {interrupt_id: value} if by_id else value
            refused = refused_by_langgraph(sent, graph.checkpointer)
            if refused:
                with pytest.raises(Exception):  # noqa: B017 (LangGraph's own)
                    await graph.ainvoke(Command(resume=sent), config)
            else:
                assert (await graph.ainvoke(Command(resume=sent), config))["answer"] is None
            request, _ = await waiting_request(graph, config)
            unseen = refused or (is_resume_map(sent) and not by_id)
            if not (unseen and request == before):
                asked_again(request, original)
        result = await graph.ainvoke(Command(resume=answer), config)
    assert (result["answer"], result["stop_reason"]) == ("42", "final")


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


SERVER_VALUES: list[Any] = [
    {"action": ["approve"]},
    {"action": {"approve": True}},
    ["approve"],
    [{"action": "approve"}],
    "approve",
    "",
    0,
    -1.5,
    True,
    False,
    {"action": None},
    {"action": 1},
    {"action": "APPROVE"},
    {"action": "approve", "code": "import os"},
    {"action": "approve", "": None, "x": [1, 2]},
    {"action": "edit"},
    {"action": "edit", "code": ["print(1)"]},
    {"action": "edit", "code": {"text": "print(1)"}},
    {"action": "edit", "code": "   "},
    {"action": "edit", "code": "x" * (4 * MB)},
    {"action": "reject", "message": 42},
    {"action": "reject", "message": "m" * (MAX_MESSAGE_CHARS + 1)},
    {"action": "reject", "message": None, "code": "x"},
    {"code": "print(1)"},
    {"Action": "approve"},
    nested(100),
    {"action": nested(50)},
    [None] * MB,
    "y" * (3 * MB),
]
RAW_BODIES = ["123456789012345678901234567890", "[" * 300 + "]" * 300, "NaN", '{"action": "approve"']


async def test_hostile_resume_values_through_a_server_are_asked_again_and_a_later_approval_answers(tmp_path):
    """The values go as `command={"resume": value}` through langgraph-sdk, those it cannot encode as
    raw JSON, and on the second block addressed to the interrupt by its id."""
    with ScriptedOpenAIServer(lambda messages: CELL if is_root_call(messages) else "summary") as server:
        async with dev_server(tmp_path, server) as client:
            thread = (await client.threads.create())["thread_id"]

            async def waiting() -> tuple[dict, str]:
                (task,) = (await client.threads.get_state(thread))["tasks"]
                return task["interrupts"][0]["value"], task["interrupts"][0]["id"]

            await client.runs.wait(thread, "rlm", input={"query": QUESTION}, context={"approve_code": True})
            original, _ = await waiting()
            assert original["code"] == BLOCKS[0]
            for value in SERVER_VALUES:
                ended = await client.runs.wait(thread, "rlm", command={"resume": value})
                assert ended["answer"] is None, (value, ended)
                asked_again((await waiting())[0], original)
            async with httpx.AsyncClient(base_url=str(client.http.client.base_url), timeout=120) as http:
                for raw in RAW_BODIES:
                    body = '{"assistant_id": "rlm", "command": {"resume": ' + raw + "}}"
                    sent = await http.post(
                        f"/threads/{thread}/runs/wait",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    assert sent.status_code in (200, 400, 422), sent.text
                    asked_again((await waiting())[0], original)
            await client.runs.wait(thread, "rlm", command={"resume": APPROVE})
            original, _ = await waiting()
            assert original["code"] == BLOCKS[1]
            for value in SERVER_VALUES[:5]:
                interrupt_id = (await waiting())[1]
                ended = await client.runs.wait(thread, "rlm", command={"resume": {interrupt_id: value}})
                assert ended["answer"] is None, (value, ended)
                asked_again((await waiting())[0], original)
            done = await client.runs.wait(thread, "rlm", command={"resume": APPROVE})
    assert (done["answer"], done["stop_reason"]) == ("42", "final")
