"""A REPL value can be built to hang when it is loaded (`__reduce__` returning `time.sleep`), and
a thread restores its REPL whenever its sandbox is new: in another process, after a worker died,
after time travel. Such a value costs the restore a bounded share of the cell timeout, is dropped
and said once, and is never tried again."""

from __future__ import annotations

import asyncio
import re
import time

from langgraph_rlm.persistence.blobs import FileBlobStore
from langgraph_rlm.sandboxes import make_sandbox
from langgraph_rlm.sandboxes.base import SandboxSpec
from langgraph_rlm.sandboxes.file_gate import FileGate
from langgraph_rlm.sandboxes.session import ReplSession
from tests.conftest import TEST_IMAGE, NoSubCalls, _e2b_stand_in, need_bwrap
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

ATTEMPT = b"restore attempt "
POISON = f"""
import os, time
def wake(seconds):
    llm_query.__self__.blobs.store({ATTEMPT!r} + os.urandom(8))
    time.sleep(seconds)
def stubborn(seconds):
    llm_query.__self__.blobs.store({ATTEMPT!r} + os.urandom(8))
    while True:
        try:
            time.sleep(seconds)
        except BaseException:
            pass
class Poison:
    def __init__(self, hang):
        self.hang = hang
    def __reduce__(self):
        return (self.hang, (10**6,))
"""
"""Each attempt to load a poisoned value first stores a blob of its own, through the worker's
real channel: the blobs that start with ATTEMPT count the attempts."""
TWO_SLEEPERS = POISON + "first = Poison(wake)\nsecond = Poison(wake)\nkept = 41"
BOUND = 30.0
"""Long enough for any restore here, far shorter than the minutes a poisoned one used to take."""


def attempts(blobs: FileBlobStore) -> int:
    return sum(blobs.get(sha).startswith(ATTEMPT) for sha, _ in blobs.stored())


async def run(session: ReplSession, code: str):
    return await asyncio.wait_for(
        session.run(code, contexts=[], subcalls=NoSubCalls(), timeout=10, output_limit=20_000), BOUND
    )


async def another_process(kind: str, blobs: FileBlobStore, restore_seconds: float) -> ReplSession:
    """The same thread picked up by another process: a new session on the same store, its sandbox
    already started, so that what is timed is the restore alone."""
    workdir = _e2b_stand_in[0].workdir() if kind == "e2b" else ""
    spec = SandboxSpec(docker_image=TEST_IMAGE, e2b_workdir=workdir)
    session = ReplSession(lambda: make_sandbox(kind, spec), blobs, FileGate())
    session.restore_seconds = restore_seconds
    await session.ensure(None)
    return session


async def timed_restore(session: ReplSession, snapshot: str) -> float:
    started = time.monotonic()
    await asyncio.wait_for(session.ensure(snapshot), BOUND)
    return time.monotonic() - started


async def test_two_poisoned_values_cost_one_restore_time_in_all(isolated_backend, open_session, blobs):
    stored = await run(await open_session(isolated_backend), TWO_SLEEPERS)
    assert stored.error is None and attempts(blobs) == 0
    later = await another_process(isolated_backend, blobs, restore_seconds=4)
    try:
        took = await timed_restore(later, stored.snapshot)
        result = await run(later, "print(kept + 1, 'first' in globals(), 'second' in globals())")
    finally:
        await later.close()
    assert result.stdout.strip() == "42 False False"
    assert set(result.dropped) == {"first", "second"}, result.dropped
    assert attempts(blobs) == 2, "each poisoned value is tried once"
    assert took < 4, f"the restore took {took:.1f}s of its 4s"


async def test_a_value_that_ignores_the_alarm_costs_a_fresh_worker_not_more_time(
    isolated_backend, open_session, blobs
):
    code = POISON + "first = Poison(wake)\nsecond = Poison(stubborn)\nkept = 41"
    stored = await run(await open_session(isolated_backend), code)
    later = await another_process(isolated_backend, blobs, restore_seconds=10)
    try:
        took = await timed_restore(later, stored.snapshot)
        result = await run(later, "print(kept + 1)")
    finally:
        await later.close()
    assert result.stdout.strip() == "42"
    assert set(result.dropped) == {"first", "second"}, result.dropped
    assert attempts(blobs) == 2, "the value dropped before the worker was replaced is not tried again"
    assert took < 10 + 2, f"the restore took {took:.1f}s of its 10s"


async def test_a_value_dropped_once_is_never_tried_again(isolated_backend, open_session, blobs):
    stored = await run(await open_session(isolated_backend), TWO_SLEEPERS)
    later = await another_process(isolated_backend, blobs, restore_seconds=4)
    try:
        await timed_restore(later, stored.snapshot)
        died = await run(later, "import os\nos._exit(1)")
        await timed_restore(later, stored.snapshot)
        after = await run(later, "print(kept + 1, 'first' in globals())")
    finally:
        await later.close()
    assert "WorkerDied" in died.error and set(died.dropped) == {"first", "second"}
    assert after.stdout.strip() == "42 False" and after.dropped == {}, "said once"
    assert attempts(blobs) == 2
    third = await another_process(isolated_backend, blobs, restore_seconds=4)
    try:
        await timed_restore(third, died.snapshot)
        result = await run(third, "print(kept + 1)")
    finally:
        await third.close()
    assert result.stdout.strip() == "42" and result.dropped == {}, "the checkpoint's snapshot names neither"
    assert attempts(blobs) == 2


STORE = TWO_SLEEPERS + "\nFINAL('stored')"


def poisoning_model(messages):
    if not is_root_call(messages):
        return "summary"
    step = root_step(messages)
    if last_question(messages) == "store":
        return f"```repl\n{STORE}\n```"
    if last_question(messages) == "crash, then answer" and step == 0:
        return "```repl\nimport os\nos._exit(1)\n```"
    if last_question(messages) == "sleep" and step == 0:
        return "```repl\nimport time\ntime.sleep(30)\n```"
    return f"```repl\nFINAL(kept + {step})\n```"


def reported_seconds(stderr: str) -> float:
    """The question's time, as the run's last line reports it."""
    return float(re.findall(r"· ([0-9.]+)s · ended by", stderr)[-1])


def rlm(user, question: str, *flags: str, timeout: float = 60):
    return user.run(["run", question, "--thread", "t", "--cell-timeout", "5", *flags], timeout=timeout)


def test_the_next_question_after_a_poisoned_snapshot_takes_well_under_max_time(user):
    need_bwrap()
    blobs = FileBlobStore(user.cwd / ".rlm" / "blobs")
    with ScriptedOpenAIServer(poisoning_model) as server:
        user.use_model(server.url)
        assert rlm(user, "store", "--max-time", "30").returncode == 0
        after = rlm(user, "crash, then answer", "--max-time", "30")
        assert after.returncode == 0 and after.stdout.strip() == "42", after.stderr
        assert reported_seconds(after.stderr) < 30 / 2, after.stderr
        assert attempts(blobs) == 2, "the restore after the crash tried neither poisoned value again"
        prompt = [m for m in server.received if is_root_call(m) and last_question(m) == "crash, then answer"][
            -1
        ]
        told = [m["content"] for m in prompt if "Dropped while the REPL" in str(m["content"])]
        assert len(told) == 1 and "first" in told[0] and "second" in told[0], told
        again = rlm(user, "and once more", "--max-time", "30")
        assert again.stdout.strip() == "41", again.stderr
        assert attempts(blobs) == 2 and "Dropped" not in again.stderr


def test_a_restore_spends_the_questions_time(user):
    need_bwrap()
    with ScriptedOpenAIServer(poisoning_model) as server:
        user.use_model(server.url)
        assert rlm(user, "store", "--max-time", "30").returncode == 0
        slept = rlm(user, "sleep", "--max-time", "5")
    limit = re.search(r"the cell ran longer than ([0-9.]+)s", slept.stderr)
    assert limit is not None, slept.stderr
    assert float(limit.group(1)) < 2.5, "the restore's 2.8s came out of the question's 5s"
    assert "ended by max_time" in slept.stderr
