"""A sandbox never outlives the process that started it, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE, containers_of, need_bwrap, need_docker

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


def unique_mark() -> int:
    """A memory limit no other test's worker has, to find this test's workers by."""
    return 4000 + uuid.uuid4().int % 100_000


def wait_until(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("backend", ["local", "process"])
def test_killing_the_host_kills_the_sandbox(backend, tmp_path):
    if backend == "local":
        need_bwrap()
    mark = unique_mark()
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(tmp_path), backend, str(mark)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout.readline().strip() == "ready"
        assert wait_until(lambda: workers_marked(mark)), "the worker should be running"
        host.send_signal(signal.SIGKILL)
        host.wait()
        assert wait_until(lambda: not workers_marked(mark)), "the worker outlived its host"
    finally:
        host.kill()


def test_a_container_orphaned_by_a_killed_host_is_removed(tmp_path):
    from tests.conftest import TEST_IMAGE, need_docker

    need_docker()
    import docker

    client = docker.from_env()
    mark = unique_mark()
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
        assert containers_of(host.pid), "a killed host leaves its container (the next start collects it)"
        from langgraph_rlm.sandboxes.docker import remove_orphans

        remove_orphans(client)
        assert containers_of(host.pid) == []
    finally:
        host.kill()


def test_a_container_that_goes_while_orphans_are_collected_does_not_stop_a_start():
    """Another process's container may be removed between the listing and anything done with it."""
    need_docker()
    import docker

    from langgraph_rlm.sandboxes.docker import LABEL, remove_orphans

    client = docker.from_env()
    ended = subprocess.Popen(["true"])
    ended.wait()
    labels = {LABEL: "worker", f"{LABEL}.host": f"{socket.gethostname()}:{ended.pid}"}
    gone = client.containers.create(TEST_IMAGE, ["true"], labels=labels)
    listing = client.api.containers(all=True, filters={"label": LABEL})
    gone.remove(force=True)

    class ListedBeforeTheRemoval:
        def __getattr__(self, name: str):
            return getattr(client.api, name)

        def containers(self, **filters):
            return listing

    remove_orphans(type("Client", (), {"api": ListedBeforeTheRemoval()})())
