"""One run per thread: a second `rlm run` on a thread another process is running waits, says
who holds it, and gives up with a status of its own, instead of running the same cells at the
same time and leaving a thread no command can load again. A run that died holding the thread
does not block it for good, and the Python API refuses a busy thread with ThreadBusy."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from langgraph.types import Command

from langgraph_rlm import RLMSettings, ThreadBusy, build_rlm_graph, close_sandboxes, open_checkpointer
from langgraph_rlm.cli import EXIT_BUSY
from tests.conftest import need_bwrap
from tests.integration.test_langgraph_server import dev_server
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question

EXAMPLES = Path(__file__).parents[2] / "examples"
QUESTION = "How many lines?"
LINES = "6000"
PROGRAMS = {
    QUESTION: "n = len(context.splitlines())\nFINAL(n)",
    "How many ERROR lines?": "FINAL(sum(' ERROR ' in line for line in context.splitlines()))",
    "And twice the lines?": "FINAL(n * 2)",
    "Count one more?": "n = n + 1\nFINAL(n)",
}
ANSWERS = {"How many ERROR lines?": "248", "And twice the lines?": "12000"}


class HeldModel:
    """Answers each question with one cell; root calls for `question` (or else the first root
    call of all) wait until `release()`, so the run that made one is midway, its thread held, for
    as long as a test needs."""

    def __init__(self, question: str | None = None) -> None:
        self.question = question
        self.held = threading.Event()
        self.released = threading.Event()

    def __call__(self, messages):
        if not is_root_call(messages):
            return "summary"
        question = last_question(messages)
        if question == self.question if self.question else not self.held.is_set():
            self.held.set()
            self.released.wait(120)
        return f"```repl\n{PROGRAMS[question]}\n```"

    def wait_until_held(self) -> None:
        assert self.held.wait(120), "the run never asked the model"

    def release(self) -> None:
        self.released.set()

    def rearm(self) -> None:
        self.held.clear()
        self.released.clear()


def holder_of(pid: int) -> str:
    return f"(pid {pid} on host {socket.gethostname()} since "


def test_a_second_run_on_a_busy_thread_waits_says_who_holds_it_and_exits_busy(user, database):
    """And the commands that change a thread outside a run (reset, rewind, init) refuse it at once."""
    need_bwrap()
    model = HeldModel()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        thread = ["--thread", "t", *database.flags]
        first = user.start(["run", QUESTION, "-c", "examples/sample.log", *thread])
        try:
            model.wait_until_held()
            at_once = user.run(["run", QUESTION, *thread, "--no-wait"])
            assert at_once.returncode == EXIT_BUSY == 7, at_once.stderr
            assert at_once.stdout == ""
            assert f"error: thread t is busy {holder_of(first.pid)}" in at_once.stderr

            started = time.monotonic()
            waited = user.run(["run", QUESTION, *thread, "--wait", "2"])
            assert time.monotonic() - started >= 2
            assert waited.returncode == EXIT_BUSY, waited.stderr
            assert f"thread t is busy {holder_of(first.pid)}" in waited.stderr
            assert "waiting up to 2 s" in waited.stderr

            for change in (["reset"], ["rewind"], ["init", "examples/diff/service_v1.ini"]):
                refused = user.run([*change, "--thread", "t", *database.flags])
                assert refused.returncode == EXIT_BUSY, (change, refused.stderr)
                assert f"error: thread t is busy {holder_of(first.pid)}" in refused.stderr
        finally:
            model.release()
            out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err.decode()
        assert out.decode().strip() == LINES

        status = user.run(["status", "--thread", "t", *database.flags])
        assert status.returncode == 0, status.stderr
        assert f"last question: {QUESTION}" in status.stdout
        for question, answer in ANSWERS.items():
            then = user.run(["run", question, *thread, "--no-wait"])
            assert then.returncode == 0, then.stderr
            assert then.stdout.strip() == answer


def test_a_run_waiting_for_a_busy_thread_goes_on_once_it_is_free(user):
    need_bwrap()
    model = HeldModel()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        first = user.start(["run", QUESTION, "-c", "examples/sample.log", "--thread", "t"])
        try:
            model.wait_until_held()
            second = user.start(["run", "And twice the lines?", "--thread", "t"])
            time.sleep(3)
            assert second.poll() is None
        finally:
            model.release()
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0 and out.decode().strip() == LINES, err.decode()
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err.decode()
        assert out.decode().strip() == "12000"
        assert f"thread t is busy {holder_of(first.pid)}" in err.decode()


def test_the_lease_of_a_killed_run_is_taken_over_with_a_warning(user, database):
    need_bwrap()
    model = HeldModel()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        thread = ["--thread", "t", *database.flags]
        killed = user.start(["run", QUESTION, "-c", "examples/sample.log", *thread])
        try:
            model.wait_until_held()
            killed.send_signal(signal.SIGKILL)
            killed.wait(30)
            again = user.run(["run", QUESTION, *thread])
        finally:
            model.release()
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == LINES
        taken = f"warning: thread t: took over the lease of pid {killed.pid} on host {socket.gethostname()}"
        assert taken in again.stderr and "its process is gone" in again.stderr
        then = user.run(["run", "And twice the lines?", *thread, "--no-wait"])
        assert then.returncode == 0, then.stderr
        assert then.stdout.strip() == "12000"


def test_a_run_stopped_by_sigterm_gives_its_thread_back_at_once(user):
    need_bwrap()
    model = HeldModel()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        stopped = user.start(["run", QUESTION, "-c", "examples/sample.log", "--thread", "t"])
        try:
            model.wait_until_held()
            stopped.send_signal(signal.SIGTERM)
            assert stopped.wait(60) == 143
            again = user.run(["run", QUESTION, "--thread", "t", "--no-wait"])
        finally:
            model.release()
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == LINES
        assert "busy" not in again.stderr and "took over" not in again.stderr


async def test_the_python_api_raises_thread_busy_for_a_thread_another_process_runs(user):
    need_bwrap()
    model = HeldModel()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        first = user.start(["run", QUESTION, "-c", "examples/sample.log", "--thread", "t"])
        settings = RLMSettings(
            model="openai/scripted",
            sub_model="openai/scripted",
            api_base=server.url,
            state_dir=str(user.cwd / ".rlm"),
            path_contexts=True,
        )
        config = {"configurable": {"thread_id": "t"}, "recursion_limit": 100}
        try:
            await asyncio.to_thread(model.wait_until_held)
            async with open_checkpointer(settings) as saver:
                graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
                with pytest.raises(ThreadBusy, match=f"thread t is busy \\(pid {first.pid} on host "):
                    await graph.ainvoke({"query": "And twice the lines?"}, config)
        finally:
            model.release()
        await asyncio.to_thread(first.communicate, timeout=120)
        assert first.returncode == 0
        try:
            async with open_checkpointer(settings) as saver:
                graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
                paused = await graph.ainvoke(
                    {"query": "And twice the lines?"}, config, context={"approve_code": True}
                )
                assert "__interrupt__" in paused
            async with open_checkpointer(settings) as saver:
                graph = build_rlm_graph(settings=settings).compile(checkpointer=saver)
                done = await graph.ainvoke(Command(resume={"action": "approve"}), config)
            assert done["answer"] == "12000"
        finally:
            await close_sandboxes()


async def test_a_langgraph_server_still_serialises_a_thread_by_its_own_strategies(tmp_path):
    """The server runs a thread's runs one at a time itself (multitask_strategy), so the graph
    takes no lease there: a run interrupted by the next one leaves its cell unrun and nothing in
    the way of its successor, and an enqueued run goes after the one before it."""
    model = HeldModel("Count one more?")
    text = (EXAMPLES / "sample.log").read_text()
    with ScriptedOpenAIServer(model) as llm:
        async with dev_server(tmp_path, llm) as client:
            thread = (await client.threads.create())["thread_id"]
            first = await client.runs.wait(thread, "rlm", input={"query": QUESTION, "contexts": [text]})
            assert first["answer"] == LINES

            cut = await client.runs.create(thread, "rlm", input={"query": "Count one more?"})
            await asyncio.to_thread(model.wait_until_held)
            after = await client.runs.create(
                thread, "rlm", input={"query": "And twice the lines?"}, multitask_strategy="interrupt"
            )
            assert (await client.runs.join(thread, after["run_id"]))["answer"] == "12000"
            assert (await client.runs.get(thread, cut["run_id"]))["status"] == "interrupted"
            model.release()

            model.rearm()
            counted = await client.runs.create(thread, "rlm", input={"query": "Count one more?"})
            await asyncio.to_thread(model.wait_until_held)
            queued = await client.runs.create(
                thread, "rlm", input={"query": "And twice the lines?"}, multitask_strategy="enqueue"
            )
            await asyncio.sleep(2)
            assert (await client.runs.get(thread, queued["run_id"]))["status"] == "pending"
            model.release()
            assert (await client.runs.join(thread, counted["run_id"]))["answer"] == "6001"
            assert (await client.runs.join(thread, queued["run_id"]))["answer"] == "12002"
