"""The contract every sandbox backend keeps: start the worker, hand back its channel, stop it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from langgraph_rlm.sandboxes.channel import Channel


class SandboxUnavailable(RuntimeError):
    """A backend that cannot run on this machine; the message is one line that says what to do."""


class WorkerDied(RuntimeError):
    """The worker process ended while the host was waiting on it."""


@dataclass(frozen=True)
class SandboxSpec:
    """What a backend needs to know to start a worker."""

    memory_mb: int = 4096
    max_processes: int = 64
    big_value_bytes: int = 1 << 20
    visible_files: tuple[Path, ...] = field(default_factory=tuple)
    docker_image: str = "python:3.12-slim"
    cpus: float = 1.0
    e2b_workdir: str = "/home/user/.rlm"
    e2b_pause: bool = False
    reconnect: str | None = None


class Sandbox(Protocol):
    kind: str
    isolated: bool

    async def start(self) -> Channel:
        """Starts the worker and returns its channel once it has said it is ready."""
        ...

    async def stop(self, keep: bool = True) -> None:
        """Ends the sandbox; `keep=False` (a broken one) forbids keeping it for later."""
        ...

    async def describe_exit(self) -> str:
        """Why the worker is gone, for the message the root model sees."""
        ...
