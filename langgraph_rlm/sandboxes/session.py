"""A REPL session: a live worker kept in step with a snapshot.

The snapshot named in the checkpoint is the truth and the worker is a cache of it: a worker
that dies, hangs or belongs to another checkpoint costs a restore, never data.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph_rlm.persistence.blobs import BlobStore
from langgraph_rlm.sandboxes.base import Sandbox, SandboxLost, WorkerDied
from langgraph_rlm.sandboxes.channel import Channel, Frame, Reply
from langgraph_rlm.sandboxes.file_gate import FileGate

HARD_TIMEOUT_GRACE = 10.0
CONTEXT_FIELDS = ("name", "label", "source", "sha")


class SubCalls(Protocol):
    """The host side of `llm_query` and `rlm_query`, supplied by the llm layer."""

    async def llm_query(self, prompt: str, model: str | None) -> str: ...

    async def rlm_query(self, prompt: str, context_sha: str | None) -> str: ...


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    final: str | None = None
    snapshot: str | None = None
    variables: list[dict[str, Any]] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)
    snapshot_seconds: float = 0.0


class ReplSession:
    def __init__(self, make_sandbox: Callable[[], Sandbox], blobs: BlobStore, gate: FileGate) -> None:
        self.make_sandbox = make_sandbox
        self.blobs = blobs
        self.gate = gate
        self.sandbox: Sandbox | None = None
        self.channel: Channel | None = None
        self.at: str | None = None
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()

    async def ensure(self, snapshot: str | None) -> None:
        """Brings the worker to `snapshot` (None: a fresh namespace), restoring only if needed."""
        self.last_used = time.monotonic()
        if self.channel is not None and self.at == snapshot:
            return
        if self.channel is None or snapshot is None:
            await self._restart()
            self.at = self.channel.at
        if snapshot is not None and self.at != snapshot:
            await self._restore(snapshot)
        self.at = snapshot

    async def run(
        self,
        code: str,
        *,
        contexts: list[dict[str, Any]],
        subcalls: SubCalls,
        history: Sequence[Mapping[str, str]] = (),
        timeout: float,
        output_limit: int,
    ) -> CellResult:
        """Runs one cell, then snapshots; a worker that dies or hangs is replaced and restored."""
        assert self.channel is not None, "ensure() first"
        self.last_used = time.monotonic()
        command = {
            "op": "exec",
            "code": code,
            "contexts": [{key: c.get(key) for key in CONTEXT_FIELDS} for c in contexts],
            "history": list(history),
            "timeout": timeout,
            "output_limit": output_limit,
        }
        handle = self._handler(subcalls)
        try:
            done = await asyncio.wait_for(self.channel.call(command, handle), timeout + HARD_TIMEOUT_GRACE)
            started = time.perf_counter()
            manifest = (await self.channel.call({"op": "snapshot"}, handle))["manifest"]
        except (TimeoutError, WorkerDied) as exc:
            return await self._recover(exc, timeout)
        result = CellResult(
            stdout=done.get("stdout", ""),
            stderr=done.get("stderr", ""),
            error=done.get("error"),
            final=done.get("final"),
            variables=manifest.pop("variables"),
            lost=manifest["lost"],
        )
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        result.snapshot = self.at = await asyncio.to_thread(self.blobs.put, manifest_bytes)
        result.snapshot_seconds = time.perf_counter() - started
        return result

    @property
    def sandbox_id(self) -> str | None:
        """What a later process can reconnect to (an E2B sandbox's id), when the backend has one."""
        return getattr(self.sandbox, "sandbox_id", None)

    async def close(self, keep: bool = True) -> None:
        if self.sandbox is not None:
            await self.sandbox.stop(keep)
        self.sandbox = self.channel = None
        self.at = None

    async def _recover(self, exc: Exception, timeout: float) -> CellResult:
        if isinstance(exc, asyncio.TimeoutError):
            what = f"the cell ran past its {timeout:g}s limit and did not stop"
        else:
            what = await self.sandbox.describe_exit() if self.sandbox else str(exc)
        snapshot = self.at
        await self.close(keep=False)
        try:
            await self.ensure(snapshot)
        except Exception as exc:
            await self.close(keep=False)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SandboxLost(f"{what}, and no new sandbox could be started: {reason}") from exc
        return CellResult(
            error=(
                f"WorkerDied: {what} (for example os._exit, a crash, or running out of memory). "
                "A fresh worker was started and the REPL restored to its state before this cell."
            ),
            snapshot=snapshot,
        )

    async def _restart(self) -> None:
        await self.close()
        self.sandbox = await asyncio.to_thread(self.make_sandbox)
        self.channel = await self.sandbox.start()

    async def _restore(self, snapshot: str) -> None:
        assert self.channel is not None
        manifest = json.loads(await asyncio.to_thread(self.blobs.get, snapshot))
        done = await self.channel.call({"op": "restore", "manifest": manifest}, self._handler(None))
        if done.get("error"):
            raise RuntimeError(f"the REPL snapshot {snapshot[:12]} could not be restored: {done['error']}")

    def _handler(self, subcalls: SubCalls | None):
        async def handle(frame: Frame, data: bytes | None) -> Reply | None:
            op = frame["op"]
            if op == "put_blob":
                await asyncio.to_thread(self.blobs.put, data)
                return None
            if op == "get_blob":
                return {"op": "blob"}, await asyncio.to_thread(self.blobs.get, frame["sha"])
            if op == "read_file":
                path = await asyncio.to_thread(self.gate.check, frame["path"])
                sha, size = await asyncio.to_thread(self.blobs.put_file, path)
                return {"value": {"sha": sha, "size": size}}, None
            if subcalls is None:
                raise RuntimeError(f"{op} is not available here")
            if op == "llm_query":
                return {"value": await subcalls.llm_query(frame["prompt"], frame.get("model"))}, None
            if op == "rlm_query":
                return {"value": await subcalls.rlm_query(frame["prompt"], frame.get("context_sha"))}, None
            raise ValueError(f"unknown request {op!r}")

        return handle
