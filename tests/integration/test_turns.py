"""Questions on one thread as a user asks them: a failed question does not block the thread, and
the answer comes before the turn's summary."""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import threading
import time

from tests.conftest import need_bwrap
from tests.openai_server import HTTPFailure, ScriptedOpenAIServer, is_root_call, last_question, root_step

FIRST, SECOND = "What is kept, plus one?", "What is kept, doubled?"
HELD_SECONDS = 60


def failing_first_question(down: dict[str, bool]):
    """FIRST sets `kept` in its first step; its second model call fails while `down` says so."""

    def respond(messages):
        if not is_root_call(messages):
            return "summary"
        if last_question(messages) == SECOND:
            return "```repl\nFINAL(kept * 2)\n```"
        if root_step(messages) == 0:
            return "```repl\nkept = 41\n```"
        if down["now"]:
            raise HTTPFailure(500, "the model server is down")
        return "```repl\nFINAL(kept + 1)\n```"

    return respond


def test_a_different_question_after_a_failed_one_starts_a_new_turn_and_rewind_goes_back(user):
    need_bwrap()
    down = {"now": True}
    with ScriptedOpenAIServer(failing_first_question(down)) as server:
        user.use_model(server.url)
        failed = user.run(["run", FIRST, "-c", "examples/sample.log", "--sub-call-retries", "0"])
        assert failed.returncode == 5 and failed.stdout == "", failed.stderr

        second = user.run(["run", SECOND])
        assert second.returncode == 0, second.stderr
        assert second.stdout == "82\n", "the new turn sees the REPL the unfinished one left"
        warnings = [line for line in second.stderr.splitlines() if line.startswith("warning: thread default")]
        assert len(warnings) == 1 and FIRST in warnings[0], second.stderr
        command = re.search(r"(rlm rewind --thread default --to \S+), then ask it again", warnings[0]).group(
            1
        )
        seen = str([m for m in server.received if is_root_call(m)][-1])
        assert FIRST in seen and "kept = 41" in seen, "the unfinished turn stays in the conversation"

        unknown = user.run(["rewind", "--to", "no-such-checkpoint"])
        assert unknown.returncode == 2 and "has no checkpoint 'no-such-checkpoint'" in unknown.stderr
        back = user.run(shlex.split(command)[1:])
        assert back.returncode == 0, back.stderr
        assert "unfinished" in back.stderr

        down["now"] = False
        resumed = user.run(["run", FIRST])
        status = user.run(["status"])
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "42\n"
    assert "resuming the unfinished question" in resumed.stderr
    last_root = [m for m in server.received if is_root_call(m)][-1]
    assert root_step(last_root) == 1 and SECOND not in str(last_root), "resumed where it stopped"
    assert f"last question: {FIRST}" in status.stdout


def test_the_same_question_after_a_failure_resumes_it(user):
    need_bwrap()
    down = {"now": True}
    with ScriptedOpenAIServer(failing_first_question(down)) as server:
        user.use_model(server.url)
        failed = user.run(["run", FIRST, "-c", "examples/sample.log", "--sub-call-retries", "0"])
        assert failed.returncode == 5, failed.stderr
        down["now"] = False
        again = user.run(["run", FIRST])
    assert again.returncode == 0, again.stderr
    assert again.stdout == "42\n" and "resuming the unfinished question" in again.stderr
    assert [root_step(m) for m in server.received if is_root_call(m)] == [0, 1, 1], "step 1 is not redone"


ANSWER = "naïve  \tspaced"


def held_summary(release: threading.Event):
    """A child RLM answers first, then the root's FINAL; the turn's summary (the one call without
    the RLM's system prompt) waits for `release`."""

    def respond(messages):
        if not is_root_call(messages):
            release.wait(HELD_SECONDS)
            return "summary"
        if last_question(messages) == "child?":
            return "```repl\nFINAL('the child answer')\n```"
        if root_step(messages) == 0:
            return "```repl\nchild = rlm_query('child?')\n```"
        return f"```repl\nFINAL({ANSWER!r} if child == 'the child answer' else child)\n```"

    return respond


def read_line(process: subprocess.Popen, timeout: float) -> bytes:
    """One line of the process's stdout, or what came before `timeout` ran out."""
    line, deadline, stdout = b"", time.monotonic() + timeout, process.stdout.fileno()
    while (
        not line.endswith(b"\n") and select.select([stdout], [], [], max(0, deadline - time.monotonic()))[0]
    ):
        byte = os.read(stdout, 1)
        if not byte:
            break
        line += byte
    return line


def summary_requested(server: ScriptedOpenAIServer, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + HELD_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if any(not is_root_call(m) for m in server.received):
            return True
        time.sleep(0.05)
    return False


def test_run_prints_the_answer_before_the_turns_summary_is_made(user):
    need_bwrap()
    release = threading.Event()
    with ScriptedOpenAIServer(held_summary(release)) as server:
        user.use_model(server.url)
        with user.start(["run", "What is it?", "-c", "examples/sample.log"]) as process:
            try:
                assert summary_requested(server, process)
                first = read_line(process, timeout=20)
                held = not release.is_set()
            finally:
                release.set()
            rest, err = process.communicate(timeout=120)
    assert held and first == f"{ANSWER}\n".encode(), err.decode()
    assert process.returncode == 0, err.decode()
    assert rest == b"", "the answer is written once"


def test_chat_prints_each_answer_before_the_turns_summary_is_made(user):
    need_bwrap()
    release = threading.Event()
    with ScriptedOpenAIServer(held_summary(release)) as server:
        user.use_model(server.url)
        with user.start(["chat", "-c", "examples/sample.log"], stdin=subprocess.PIPE) as process:
            try:
                process.stdin.write(b"What is it?\n")
                process.stdin.flush()
                assert summary_requested(server, process)
                first = read_line(process, timeout=20)
                held = not release.is_set()
            finally:
                release.set()
            rest, err = process.communicate(b"", timeout=120)
    assert held and first == f"{ANSWER}\n".encode(), err.decode()
    assert process.returncode == 0, err.decode()
    assert rest == b""
