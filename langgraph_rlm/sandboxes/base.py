"""The contract every sandbox backend keeps: start the worker, hand back its channel, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from langgraph_rlm.sandboxes.channel import Channel


def exit_description(code: int) -> str:
    """A worker's exit status in words; a signal shows as a negative code or, through a shell,
    bubblewrap or Docker, as 128 plus its number."""
    number = -code if code < 0 else code - 128 if 128 < code < 160 else None
    if number is None:
        return f"the worker exited with status {code}"
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
    return f"the worker was killed by {name}"


async def to_thread_to_the_end(function: Callable[..., Any], *args: Any) -> Any:
    """`function` in a thread; a cancellation waits for it to return before passing on, so what it
    made (a container, a cgroup) is in place for `stop()` to remove, not made after it."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


class SandboxUnavailable(RuntimeError):
    """A backend that cannot run on this machine; the message is one line that says what to do."""


class WorkerDied(RuntimeError):
    """The worker process ended while the host was waiting on it."""


class WorkerRefused(WorkerDied):
    """The host ended the worker for what it sent (a malformed frame, a forged snapshot, too
    much data): code in the REPL can reach the channel, so the worker is never trusted."""


class WorkerHung(WorkerDied):
    """The worker did not finish a command in the time the host allows for it."""


class SandboxLost(RuntimeError):
    """The worker died and no new one could be started, so the run cannot go on; the
    checkpoint before the failed step stays as it was."""


@dataclass(frozen=True)
class SandboxSpec:
    """What a backend needs to know to start a worker."""

    memory_mb: int = 4096
    """Also the largest blob the host accepts from the worker: no value in it can be bigger."""
    max_processes: int = 64
    big_value_bytes: int = 1 << 20
    visible_files: tuple[Path, ...] = field(default_factory=tuple)
    bound_blobs: Mapping[str, Path] = field(default_factory=dict)
    """Stored blobs (by hash) whose files the sandbox binds read-only as it starts, so the worker
    maps a context instead of receiving a copy of it over the channel."""
    docker_image: str = "python:3.12-slim"
    cpus: float = 1.0
    e2b_workdir: str = "/home/user/.rlm"
    e2b_pause: bool = False
    reconnect: str | None = None


BOUND_BLOBS = "/rlm/blobs"


def bound_inside(spec: SandboxSpec) -> dict[str, str]:
    """Where an isolated sandbox binds each of `spec.bound_blobs`: a fixed folder, named by hash."""
    return {sha: f"{BOUND_BLOBS}/{sha}" for sha in spec.bound_blobs}


class Sandbox(Protocol):
    kind: str
    isolated: bool
    bound_blobs: Mapping[str, str]
    """The path inside the sandbox of each blob it bound; empty where it binds none."""

    async def start(self) -> Channel:
        """Starts the worker and returns its channel once it has said it is ready."""
        ...

    async def stop(self, keep: bool = True) -> None:
        """Ends the sandbox; `keep=False` (a broken one) forbids keeping it for later."""
        ...

    async def describe_exit(self) -> str:
        """Why the worker is gone, for the message the root model sees."""
        ...
