"""The host side of the trust boundary: code in the REPL can reach the worker's end of the channel
(`llm_query.__self__.channel`), so it can send the host anything. Whatever it sends, the host
stays up, bounded and unbilled: the worker is ended, the REPL restored, the thread goes on."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable

import pytest

from tests.conftest import NoSubCalls, context_of

RAW = """
channel = llm_query.__self__.channel
def raw(line):
    if hasattr(channel, "_out"):
        channel._out.write(line)
        channel._out.flush()
    else:
        import os
        os.write(channel.fd, b"\\x1eRLM\\x1e" + line)
"""


async def run(session, code: str, timeout: float = 30, **kw):
    return await session.run(
        code,
        contexts=kw.pop("contexts", []),
        subcalls=NoSubCalls(),
        timeout=timeout,
        output_limit=20_000,
        **kw,
    )


def host_rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def host_growth_kib(attack: Awaitable[None]) -> int:
    """The most this process's resident memory rose above its start while `attack` ran, sampled
    every few milliseconds: the peak since the process began would hide a rise below it."""
    before = host_rss_kib()
    highest = before
    done = threading.Event()

    def sample() -> None:
        nonlocal highest
        while not done.wait(0.005):
            highest = max(highest, host_rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        await attack
    finally:
        done.set()
        sampler.join()
    return highest - before


async def refused(session, attack: str, *words: str, timeout: float = 30) -> None:
    """The attack ends the worker with a reason; the REPL comes back as it was before the cell."""
    await run(session, "kept = 41")
    result = await run(session, RAW + attack, timeout)
    assert result.error and result.error.startswith("WorkerDied"), result.error
    assert all(word in result.error for word in words), result.error
    after = await run(session, "print(kept + 1)")
    assert after.stdout.strip() == "42" and after.error is None


@pytest.mark.parametrize(
    "junk",
    [
        b"[1,2,3]\n",
        b"not json at all\n",
        b'{"op":"done","id":"not-a-number"}\n',
        b'{"op":"ready","pid":1,"pickler":"x"}\n',
        b'{"op":"llm_query","id":"w1","prompt":7,"model":null}\n',
        b'{"op":"put_blob","sha":"../../etc/passwd","nbytes":1}\nx',
    ],
    ids=["list", "text", "done-id", "ready", "prompt-type", "sha-path"],
)
async def test_a_forged_frame_ends_the_worker_not_the_host(isolated_backend, open_session, junk):
    session = await open_session(isolated_backend)
    await refused(session, f"raw({junk!r})\nimport time\ntime.sleep(5)", "the worker sent")


async def test_a_frame_announcing_a_terabyte_is_refused_before_it_is_read(isolated_backend, open_session):
    session = await open_session(isolated_backend, memory_mb=512)
    sha = "0" * 64
    attack = f'raw(b\'{{"op":"put_blob","sha":"{sha}","nbytes":{10**12}}}\\n\')\n'
    attack += "import time\nwhile True:\n    raw(b'x' * 1_000_000)\n"
    grown_kib = await host_growth_kib(refused(session, attack, "announcing"))
    assert grown_kib < 64_000, f"the host grew by {grown_kib:,} KiB"


async def test_a_blob_whose_bytes_do_not_match_its_hash_is_refused(isolated_backend, open_session, blobs):
    session = await open_session(isolated_backend)
    victim = hashlib.sha256(b"someone else's text").hexdigest()
    attack = (
        f"channel.send({{'op': 'put_blob', 'sha': {victim!r}}}, b'forged bytes')\nimport time\ntime.sleep(5)"
    )
    await refused(session, attack, "does not match")
    assert not blobs.has(victim)


async def test_another_threads_blob_cannot_be_read_by_its_hash(isolated_backend, open_session, blobs):
    secret = blobs.put(b"another thread's secret context")
    session = await open_session(isolated_backend)
    mine = context_of(blobs, "my own context")
    result = await run(
        session,
        RAW + f"print(channel.request({{'op': 'get_blob', 'sha': {secret!r}}})[0])\n"
        f"print(channel.request({{'op': 'rlm_query', 'prompt': 'x', 'context_sha': {secret!r}}})[0])\n"
        f"print(len(channel.request({{'op': 'get_blob', 'sha': {mine['sha']!r}}})[1]))",
        contexts=[mine],
    )
    lines = result.stdout.splitlines()
    assert "no blob" in lines[0] and "no blob" in lines[1], result.stdout
    assert lines[2] == str(len("my own context"))
    assert "secret" not in result.stdout


async def test_a_worker_that_shuts_its_blob_pipe_costs_itself_not_the_host(open_session, blobs):
    """On docker, blobs come in on a pipe beside the channel; a worker that closes its end makes
    the host's write fail at once, never wait."""
    session = await open_session("docker")
    context = context_of(blobs, "a context line\n" * 200_000)
    await run(session, "kept = 41", contexts=[context])
    attack = (
        "worker = llm_query.__self__\nworker.channel._blobs_in.close()\nworker.blobs.by_id.clear()\n"
        f"worker.blobs.fetch({context['sha']!r}, 'str')"
    )
    result = await run(session, attack, contexts=[context])
    assert result.error and result.error.startswith("WorkerDied"), result.error
    after = await run(session, "print(kept + 1, len(context))", contexts=[context])
    assert after.stdout.split() == ["42", str(len("a context line\n") * 200_000)], after


async def test_a_snapshot_naming_another_threads_blob_is_never_stored(isolated_backend, open_session, blobs):
    secret = blobs.put(b"another thread's snapshot value")
    session = await open_session(isolated_backend)
    before = set(sha for sha, _ in blobs.stored())
    attack = (
        "worker = llm_query.__self__\nhonest = worker.snapshot\n"
        f"worker.snapshot = lambda: dict(honest(), values={{'stolen': {secret!r}}})"
    )
    await refused(session, attack, "never stored")
    assert session.at is not None
    new_manifests = [
        sha for sha, _ in blobs.stored() if sha not in before and secret.encode() in blobs.get(sha)
    ]
    assert new_manifests == []


async def test_a_value_whose_pickling_hangs_costs_the_cell_not_the_host(isolated_backend, open_session):
    session = await open_session(isolated_backend)
    attack = "class Hang:\n    def __reduce__(self):\n        while True:\n            pass\nstuck = Hang()"
    await refused(session, attack, "snapshot after the cell did not finish", timeout=5)


async def test_a_len_that_hangs_is_never_called(isolated_backend, open_session):
    session = await open_session(isolated_backend)
    result = await run(
        session,
        "import time\nclass Slow(list):\n    def __len__(self):\n        time.sleep(10**9)\nslow = Slow()",
        5,
    )
    assert result.error is None
    assert {"name": "slow", "type": "Slow", "size": None} in result.variables


async def test_a_question_stores_at_most_its_quota(isolated_backend, open_session, blobs):
    session = await open_session(isolated_backend)
    await run(session, "kept = 41")
    result = await run(session, "import os\nbig = os.urandom(3 << 20)", store_quota=1 << 20)
    assert "WorkerDied" in result.error and "quota" in result.error
    stored = sum(blobs.size(sha) for sha, _ in blobs.stored())
    assert stored < 1 << 20, f"{stored:,} bytes stored: the refused value must not be"
    after = await run(session, "print(kept + 1, 'big' in globals())")
    assert after.stdout.strip() == "42 False"


async def test_an_e2b_worker_cannot_make_the_host_read_any_file(open_session):
    session = await open_session("e2b")
    attack = 'raw(b\'{"op":"put_blob","sha":"%s","file":"/dev/zero"}\\n\')' % ("0" * 64)
    await refused(session, attack, "outside its outbox")


@pytest.mark.parametrize("kind", ["local", "docker"])
async def test_output_written_while_no_cell_runs_does_not_fill_the_host(kind, open_session):
    session = await open_session(kind, memory_mb=512)
    await run(session, "kept = 41")
    flood = "import threading, time\ndef flood():\n    time.sleep(1)\n    while True:\n        raw(b'x' * 1_000_000)\n"
    await run(session, RAW + flood + "threading.Thread(target=flood, daemon=True).start()")
    before = host_rss_kib()
    await asyncio.sleep(8)
    grown_kib = host_rss_kib() - before
    assert grown_kib < 100_000, f"the host grew by {grown_kib:,} KiB while idle"
    await run(session, "pass")  # reads the flood: the worker is refused and replaced
    after = await run(session, "print(kept + 1)")
    assert after.stdout.strip() == "42" and after.error is None
