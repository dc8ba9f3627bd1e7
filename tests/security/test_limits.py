"""Limits that hold: memory outside the heap (/tmp, memfd, captured output) counts against the memory
limit, one sandbox's tasks do not use up another's, and the CPU quota applies. On `local` these need
a cgroup per sandbox, which the host can make as root; docker has them from its container."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NoSubCalls, unavailable

MIB = 1024 * 1024
LOCAL_AND_DOCKER = ("local", "docker")


async def run(session, code: str, timeout: float = 120):
    return await session.run(code, contexts=[], subcalls=NoSubCalls(), timeout=timeout, output_limit=2000)


def need_cgroups(kind: str) -> None:
    """A `local` sandbox gets its own cgroup where the host is root and cgroups are mounted."""
    if kind == "local" and (os.geteuid() != 0 or not Path("/sys/fs/cgroup").is_dir()):
        unavailable("local sandboxes get their own cgroup only as root")


def cgroup_value(session, controller: str, v1_file: str, v2_file: str) -> str:
    folder = session.sandbox.cgroup.dirs[controller]
    name = v2_file if (folder / v2_file).exists() else v1_file
    return (folder / name).read_text().strip()


FILL_TMP_THEN_MEMFD = """
import os
held = 0
try:
    while True:
        with open('/tmp/fill-%d' % held, 'wb') as f:
            f.write(b'x' * (16 << 20))
        held += 16
except OSError:
    pass
fd = os.memfd_create('hog')
for _ in range(64):
    os.write(fd, b'x' * (16 << 20))
    held += 16
print('held', held, 'MiB')
"""


@pytest.mark.parametrize("kind", LOCAL_AND_DOCKER)
async def test_tmp_and_memfd_count_against_the_memory_limit(kind, open_session):
    need_cgroups(kind)
    session = await open_session(kind, memory_mb=256)
    await run(session, "kept = 'alive'")
    result = await run(session, FILL_TMP_THEN_MEMFD)
    assert "held" not in result.stdout, (
        f"the sandbox held {result.stdout.split()[1:2]} MiB past a 256 MiB limit"
    )
    assert "WorkerDied" in result.error or "Error" in result.error
    after = await run(session, "print(kept)")
    assert after.stdout.strip() == "alive"


PRINT_GIGABYTES = """
import os
line = 'x' * (1 << 20)
for _ in range(2048):
    print(line)
print('allocated', os.fstat(1).st_blocks * 512)
"""


@pytest.mark.parametrize("kind", LOCAL_AND_DOCKER)
async def test_printing_gigabytes_stays_within_the_memory_limit(kind, open_session):
    """Captured output is held in memory: it either stays bounded or counts, and then ends the worker."""
    need_cgroups(kind)
    session = await open_session(kind, memory_mb=256)
    await run(session, "kept = 'alive'")
    result = await run(session, PRINT_GIGABYTES)
    if result.error:
        assert "WorkerDied" in result.error
    else:
        allocated = int(result.stdout.split()[-1])
        assert allocated <= 256 * MIB, f"{allocated // MIB} MiB of output held past a 256 MiB limit"
    after = await run(session, "print(kept)")
    assert after.stdout.strip() == "alive"


HOG_THREADS = """
import threading, time
started = 0
try:
    for _ in range(2000):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        started += 1
except RuntimeError:
    pass
print(started)
"""


@pytest.mark.parametrize("hog_kind", LOCAL_AND_DOCKER)
async def test_a_sandbox_out_of_tasks_does_not_stop_another_from_forking(hog_kind, open_session):
    need_cgroups("local")
    victim = await open_session("local", max_processes=32)
    hog = await open_session(hog_kind, max_processes=32)
    hogged = await run(hog, HOG_THREADS)
    assert hogged.error is None and 0 < int(hogged.stdout) <= 32
    result = await run(victim, "import subprocess\nprint(subprocess.run(['true']).returncode)")
    assert result.error is None, result.error
    assert result.stdout.strip() == "0"


BUSY_TWO_PROCESSES = """
import os, time
start = time.monotonic()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
times = os.times()
print(times.children_user + times.children_system, time.monotonic() - start)
"""


@pytest.mark.parametrize("kind", LOCAL_AND_DOCKER)
async def test_the_cpu_quota_holds(kind, open_session):
    need_cgroups(kind)
    session = await open_session(kind, cpus=0.5)
    if kind == "local":
        quota = cgroup_value(session, "cpu", "cpu.cfs_quota_us", "cpu.max").split()[0]
        assert quota == "50000"
    else:
        await asyncio.to_thread(session.sandbox.container.reload)
        assert session.sandbox.container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    result = await run(session, BUSY_TWO_PROCESSES)
    cpu, wall = map(float, result.stdout.split())
    assert cpu <= 0.5 * wall * 1.5 + 0.3, f"{cpu:.2f}s of CPU in {wall:.2f}s under a quota of 0.5 CPU"


async def test_local_cgroup_carries_the_limits_and_goes_with_the_sandbox(open_session):
    need_cgroups("local")
    session = await open_session("local", memory_mb=256, max_processes=32)
    memory = int(cgroup_value(session, "memory", "memory.limit_in_bytes", "memory.max"))
    assert 256 * MIB <= memory <= 512 * MIB
    assert cgroup_value(session, "pids", "pids.max", "pids.max") == "32"
    folders = session.sandbox.cgroup.folders()
    await session.close()
    assert not any(folder.exists() for folder in folders)


async def test_a_cgroup_left_by_a_killed_host_is_removed_at_the_next_start(open_session):
    need_cgroups("local")
    first = await open_session("local")
    bases = {folder.parent for folder in first.sandbox.cgroup.folders()}
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [base / f"{dead.pid}-0" for base in bases]
    for folder in stale:
        folder.mkdir()
    await open_session("local")
    assert not any(folder.exists() for folder in stale)


async def test_docker_swap_is_off(open_session):
    session = await open_session("docker", memory_mb=256)
    await asyncio.to_thread(session.sandbox.container.reload)
    config = session.sandbox.container.attrs["HostConfig"]
    assert config["MemorySwap"] == config["Memory"] > 0


async def test_docker_keeps_no_log_of_the_workers_output(open_session):
    session = await open_session("docker", memory_mb=256)
    result = await session.run(
        "print('x' * 5_000_000)", contexts=[], subcalls=NoSubCalls(), timeout=30, output_limit=100
    )
    assert result.error is None
    await asyncio.to_thread(session.sandbox.container.reload)
    container = session.sandbox.container.attrs
    assert container["HostConfig"]["LogConfig"]["Type"] == "none"
    log_path = container.get("LogPath") or ""
    assert not log_path or not os.path.exists(log_path) or os.path.getsize(log_path) < 10_000


def test_doctor_says_which_local_limits_hold():
    need_cgroups("local")
    from langgraph_rlm.doctor import local_limits

    assert local_limits() == (
        "memory: all of it (heap, /tmp, memfd) by a cgroup; processes: per sandbox (pids cgroup); "
        "CPU: --cpus quota; "
        "syscalls: seccomp refuses new namespaces, mounts, ptrace, keyrings, bpf and kernel modules"
    )
