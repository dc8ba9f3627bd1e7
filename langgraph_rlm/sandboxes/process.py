"""The worker as a plain child process: the base the isolated backends build on.

`process` on its own isolates nothing (no namespace, no file or network limits); it exists
for machines where no sandbox can run, and only when asked for by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import cloudpickle

from langgraph_rlm.sandboxes.base import (
    SandboxSpec,
    SandboxUnavailable,
    WorkerDied,
    exit_description,
    to_thread_to_the_end,
)
from langgraph_rlm.sandboxes.channel import STREAM_LIMIT, WorkerChannel

WORKER_DIR = Path(__file__).parent / "worker"
WORKER_PATH = WORKER_DIR / "repl_worker.py"
WORKER_FILES = (WORKER_PATH, WORKER_DIR / "protocol.py")
"""What every sandbox gets of this package: the worker and the protocol module it imports."""
CLOUDPICKLE_DIR = Path(cloudpickle.__file__).parent
START_TIMEOUT = 60.0
REAP_TIMEOUT = 10.0
STOP_GRACE_SECONDS = 2.0


def sandbox_environment(pythonpath: str) -> dict[str, str]:
    """A cleared environment: no key, token or setting of the host reaches the worker."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


class ProcessSandbox:
    kind = "process"
    isolated = False

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.bound_blobs = self.blob_paths()
        self.process: asyncio.subprocess.Process | None = None
        self.passed_fds: list[int] = []
        """Descriptors the command names (bwrap's --seccomp): the child inherits them, the host
        closes them once the child has started."""

    def blob_paths(self) -> dict[str, str]:
        """Without a sandbox the worker reads the store's files where they are."""
        return {sha: str(path) for sha, path in self.spec.bound_blobs.items()}

    @classmethod
    def check_available(cls) -> None:
        """Nothing to check: a Python interpreter is all this backend needs."""

    def worker_arguments(self) -> list[str]:
        args = ["--memory-mb", str(self.spec.memory_mb), "--big-value", str(self.spec.big_value_bytes)]
        if self.isolated:
            args += ["--isolated", "--max-processes", str(self.process_limit())]
        return args

    def process_limit(self) -> int:
        """The worker's RLIMIT_NPROC (0: none)."""
        return self.spec.max_processes

    def command(self) -> list[str]:
        return [sys.executable, "-s", str(WORKER_PATH), *self.worker_arguments()]

    def environment(self) -> dict[str, str]:
        return sandbox_environment(str(CLOUDPICKLE_DIR.parent))

    async def start(self) -> WorkerChannel:
        command = await to_thread_to_the_end(self.command)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(),
                cwd="/tmp",
                start_new_session=True,
                pass_fds=self.passed_fds,
                limit=STREAM_LIMIT,
            )
        finally:
            while self.passed_fds:
                os.close(self.passed_fds.pop())
        channel = WorkerChannel(self.process.stdout, self.process.stdin, self.spec.memory_mb << 20)
        try:
            await asyncio.wait_for(channel.expect("ready"), START_TIMEOUT)
        except (TimeoutError, WorkerDied):
            reason = await self._startup_error()
            await self.stop()
            raise SandboxUnavailable(self.unavailable_message(reason)) from None
        return channel

    def unavailable_message(self, reason: str) -> str:
        return f"the {self.kind} sandbox could not start its worker: {reason}"

    async def _startup_error(self) -> str:
        assert self.process is not None
        try:
            raw = await asyncio.wait_for(self.process.stderr.read(4096), 2)
        except TimeoutError:
            raw = b""
        lines = [line for line in raw.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"it exited with status {self.process.returncode}"

    async def describe_exit(self) -> str:
        code = None
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(self.process.wait(), 2)
        return "the worker stopped answering" if code is None else exit_description(code)

    async def stop(self, keep: bool = True) -> None:
        """An idle worker ends when its input closes; a broken one (`keep=False`), which may be
        busy with a cell, is killed at once."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            process.stdin.close()
            if keep:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await reap(process)


async def reap(process: asyncio.subprocess.Process) -> None:
    """`wait()` also waits for the pipes to close, and a pipe whose reader filled up (a worker that
    flooded its channel) stays paused and never sees its end: read what is left, then wait."""

    async def drain(stream: asyncio.StreamReader | None) -> None:
        while stream is not None and await stream.read(1 << 16):
            pass

    with contextlib.suppress(TimeoutError, RuntimeError):
        await asyncio.wait_for(
            asyncio.gather(drain(process.stdout), drain(process.stderr), process.wait()), 10
        )
