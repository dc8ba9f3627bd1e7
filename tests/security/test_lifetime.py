"""A sandbox never outlives the process that started it, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import need_bwrap

HOST = """
import asyncio, sys
from pathlib import Path
from langgraph_rlm.persistence.blobs import FileBlobStore
from langgraph_rlm.sandboxes import make_sandbox
from langgraph_rlm.sandboxes.base import SandboxSpec
from langgraph_rlm.sandboxes.file_gate import FileGate
from langgraph_rlm.sandboxes.session import ReplSession

class NoSubCalls:
    pass

async def main():
    spec = SandboxSpec(memory_mb=int(sys.argv[3]))
    session = ReplSession(lambda: make_sandbox(sys.argv[2], spec), FileBlobStore(Path(sys.argv[1])), FileGate())
    await session.ensure(None)
    print("ready", flush=True)
    await session.run("import subprocess, time\\nsubprocess.Popen(['sleep', '600'])\\ntime.sleep(600)",
                      contexts=[], subcalls=NoSubCalls(), timeout=600, output_limit=100)

asyncio.run(main())
"""


def workers_marked(mark: int) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--memory-mb" in cmdline and str(mark).encode() in cmdline:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("backend", ["local", "process"])
def test_killing_the_host_kills_the_sandbox(backend, tmp_path):
    if backend == "local":
        need_bwrap()
    mark = 3000 + os.getpid() % 1000
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(tmp_path), backend, str(mark)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        assert workers_marked(mark), "the worker should be running"
        host.send_signal(signal.SIGKILL)
        host.wait()
        deadline = time.monotonic() + 10
        while workers_marked(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers_marked(mark) == []
    finally:
        host.kill()


def test_a_container_orphaned_by_a_killed_host_is_removed(tmp_path):
    from tests.conftest import TEST_IMAGE, need_docker

    need_docker()
    import docker

    client = docker.from_env()
    mark = 3000 + os.getpid() % 1000 + 1
    host = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOST.replace("SandboxSpec(", f"SandboxSpec(docker_image={TEST_IMAGE!r}, "),
            str(tmp_path),
            "docker",
            str(mark),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout.readline().strip() == "ready"
        host.send_signal(signal.SIGKILL)
        host.wait()
        orphans = client.containers.list(all=True, filters={"label": "langgraph-rlm"})
        assert orphans, "a killed host leaves its container (the next start collects it)"
        from langgraph_rlm.sandboxes.docker import remove_orphans

        remove_orphans(client)
        assert client.containers.list(all=True, filters={"label": "langgraph-rlm"}) == []
    finally:
        host.kill()
