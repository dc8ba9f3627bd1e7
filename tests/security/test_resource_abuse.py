"""The conformance suite, part three: a cell that loops, hogs memory, forks without end or kills the
worker; the session survives on every backend (the plain process backend sets no memory or process limit)."""

from __future__ import annotations

import gc

import pytest

from tests.conftest import NoSubCalls


async def run(session, code: str, timeout: float = 30):
    return await session.run(code, contexts=[], subcalls=NoSubCalls(), timeout=timeout, output_limit=20_000)


async def test_infinite_loop_times_out_and_keeps_the_namespace(backend, open_session):
    session = await open_session(backend)
    await run(session, "kept = 'before the loop'")
    result = await run(session, "n = 0\nwhile True:\n    n += 1", timeout=1)
    assert "TimeoutError" in result.error
    after = await run(session, "print(kept, n > 0)")
    assert after.stdout.strip() == "before the loop True"


async def test_a_cell_that_disarms_the_timeout_is_killed_and_restored(backend, open_session, monkeypatch):
    from langgraph_rlm.sandboxes import session as session_module

    monkeypatch.setattr(session_module, "HARD_TIMEOUT_GRACE", 2.0)
    session = await open_session(backend)
    await run(session, "kept = 41")
    result = await run(
        session, "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass", 1
    )
    assert "WorkerDied" in result.error and "did not stop" in result.error
    after = await run(session, "kept + 1")
    assert after.stdout.strip() == "42"


async def test_memory_bomb_fails_inside_the_cell(isolated_backend, open_session):
    session = await open_session(isolated_backend, memory_mb=512)
    await run(session, "kept = [1, 2, 3]")
    result = await run(session, "hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 * 1024))")
    assert "MemoryError" in result.error
    after = await run(session, "del hog\nprint(sum(kept))")
    assert after.stdout.strip() == "6"


async def test_fork_bomb_is_capped_and_cleaned_up(isolated_backend, open_session):
    session = await open_session(isolated_backend, max_processes=32)
    await run(session, "kept = 'alive'")
    result = await run(session, "import os\nwhile True:\n    os.fork()", timeout=10)
    assert "BlockingIOError" in result.error or "Resource temporarily unavailable" in result.error
    after = await run(session, "import os\nprint(kept, len([p for p in os.listdir('/proc') if p.isdigit()]))")
    word, processes = after.stdout.split()
    assert word == "alive" and int(processes) <= 3


WORKER_DEATHS = {
    "os._exit": ("import os\nos._exit(3)", "exited with status 3"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "killed by SIGSEGV"),
    # what the OOM killer does: SIGKILL from outside, mid-cell
    "sigkill": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
}


@pytest.mark.parametrize("death", sorted(WORKER_DEATHS))
async def test_a_dead_worker_is_replaced_and_restored_to_the_last_snapshot(backend, open_session, death):
    code, reason = WORKER_DEATHS[death]
    if backend == "e2b":
        reason = "E2B kernel stopped"  # a notebook kernel's death carries no exit status
    session = await open_session(backend)
    await run(session, "def double(x):\n    return 2 * x\nkept = 21")
    result = await run(session, f"lost_value = 1\n{code}")
    assert "WorkerDied" in result.error and reason in result.error
    after = await run(session, "print(double(kept), 'lost_value' in globals())")
    assert after.stdout.strip() == "42 False"


async def test_a_replaced_worker_answers_once_the_dead_ones_channel_is_collected(backend, open_session):
    session = await open_session(backend)
    await run(session, "import sys\nx = 41")
    dead_channel = session.channel
    result = await run(session, "import os\nos._exit(0)")
    assert "WorkerDied" in result.error
    del dead_channel  # in a graph run the dead worker's channel lives until a later collection
    gc.collect()
    after = await run(session, "print(x + 1, sys.version_info[0])", timeout=20)
    assert after.error is None and after.stdout.split() == ["42", "3"]
