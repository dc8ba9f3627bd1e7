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
from langgraph_rlm.sandboxes.base import Sandbox, SandboxLost, WorkerDied, WorkerHung, WorkerRefused
from langgraph_rlm.sandboxes.blob_access import BlobAccess
from langgraph_rlm.sandboxes.channel import Channel, Frame, Reply, RequestHandler
from langgraph_rlm.sandboxes.file_gate import FileGate
from langgraph_rlm.sandboxes.worker.protocol import manifest_blobs, overran, value_seconds

HARD_TIMEOUT_GRACE = 10.0
RESTORE_SECONDS = 120.0
RESTORE_PATIENCE = 1.5
"""How many times a value's share the host waits for the worker's alarm to drop it (see
protocol.value_seconds)."""
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
    dropped: dict[str, str] = field(default_factory=dict)
    """Variables a restore before or during this cell could not bring back, and why."""
    stored_bytes: int = 0
    snapshot_seconds: float = 0.0


@dataclass
class RestoreProgress:
    """What the worker said of a restore so far: the value it is loading (since when), and the
    values it dropped."""

    loading: str | None = None
    since: float = 0.0
    dropped: dict[str, str] = field(default_factory=dict)


class ReplSession:
    def __init__(self, make_sandbox: Callable[[], Sandbox], blobs: BlobStore, gate: FileGate) -> None:
        self.make_sandbox = make_sandbox
        self.blobs = blobs
        self.access = BlobAccess(blobs)
        self.gate = gate
        self.sandbox: Sandbox | None = None
        self.channel: Channel | None = None
        self.at: str | None = None
        self.dropped: dict[str, str] = {}
        self.restore_seconds = RESTORE_SECONDS
        """How long a restore may take in all: a run sets its cell timeout."""
        self.pruned: dict[str, str] = {}
        """Snapshots restored without values that had to be dropped, each to the snapshot of what
        did load: asked for again, the session goes to the latter, and tries none of them again."""
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.warming: asyncio.Task | None = None

    def warm(self, snapshot: str | None) -> None:
        """Starts bringing the worker to `snapshot` in the background, so a sandbox starts (and a
        REPL restores) while the root model thinks; whoever takes the lock next waits for it. A
        failure here is left for that `ensure` to meet again and report."""
        if self.lock.locked() or (self.channel is not None and self.at == self._target(snapshot)):
            return
        self.warming = asyncio.create_task(self._warm(snapshot))
        self.warming.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _warm(self, snapshot: str | None) -> None:
        if self.lock.locked():
            return
        async with self.lock:
            await self.ensure(snapshot)

    async def ensure(self, snapshot: str | None) -> None:
        """Brings the worker to `snapshot` (None: a fresh namespace), restoring only if needed. A
        worker that died since its last cell (killed from outside) is replaced before the next
        cell, which then runs, instead of being reported as a cell that failed."""
        self.last_used = time.monotonic()
        snapshot = self._target(snapshot)
        if self.channel is not None and self.channel.closed:
            await self.close(keep=False)
        if self.channel is not None and self.at == snapshot:
            return
        if self.channel is None or snapshot is None:
            await self._restart()
            self.at = self.channel.at
        if snapshot is not None and self.at == snapshot:
            self.access.allow(manifest_blobs(await self._manifest(snapshot)))
        elif snapshot is not None:
            await self._restore(snapshot)
        else:
            self.at = None

    async def run(
        self,
        code: str,
        *,
        contexts: list[dict[str, Any]],
        subcalls: SubCalls,
        history: Sequence[Mapping[str, str]] = (),
        timeout: float,
        output_limit: int,
        store_quota: int | None = None,
    ) -> CellResult:
        """Runs one cell, then snapshots; a worker that dies, hangs or misbehaves is replaced
        and restored. `store_quota`: bytes the cell may add to the blob store."""
        assert self.channel is not None, "ensure() first"
        self.last_used = time.monotonic()
        self.access.allow(c["sha"] for c in contexts)
        self.access.start_cell(store_quota)
        command = {
            "op": "exec",
            "code": code,
            "contexts": [{key: c.get(key) for key in CONTEXT_FIELDS} for c in contexts],
            "history": list(history),
            "timeout": timeout,
            "output_limit": output_limit,
        }
        handle = self._handler(subcalls)
        bound = timeout + HARD_TIMEOUT_GRACE
        try:
            done = await self._call(
                command, handle, bound, f"the cell ran past its {timeout:g}s limit and did not stop"
            )
            started = time.perf_counter()
            snapshot = await self._call(
                {"op": "snapshot"}, handle, bound, f"the snapshot after the cell did not finish in {bound:g}s"
            )
            manifest = await self._keep(snapshot.get("manifest"))
        except WorkerDied as exc:
            return await self._recover(exc)
        return CellResult(
            stdout=done.get("stdout", ""),
            stderr=done.get("stderr", ""),
            error=done.get("error"),
            final=done.get("final"),
            snapshot=self.at,
            variables=manifest["variables"],
            lost=manifest["lost"],
            dropped=self._take_dropped(),
            stored_bytes=self.access.stored,
            snapshot_seconds=time.perf_counter() - started,
        )

    @property
    def sandbox_id(self) -> str | None:
        """What a later process can reconnect to (an E2B sandbox's id), when the backend has one."""
        return getattr(self.sandbox, "sandbox_id", None)

    async def close(self, keep: bool = True) -> None:
        warming = self.warming
        if warming is not None and warming is not asyncio.current_task():
            self.warming = None
            await asyncio.wait([warming])
        if self.sandbox is not None:
            await self.sandbox.stop(keep)
        self.sandbox = self.channel = None
        self.at = None

    async def _call(self, command: Frame, handle: RequestHandler, seconds: float, hung: str) -> Frame:
        """Every wait on the worker is bounded: one that does not answer in time is dead."""
        assert self.channel is not None
        try:
            return await asyncio.wait_for(self.channel.call(command, handle), seconds)
        except TimeoutError:
            raise WorkerHung(hung) from None
        except asyncio.CancelledError:
            await self._abandon()
            raise

    async def _recover(self, exc: WorkerDied) -> CellResult:
        if isinstance(exc, WorkerHung | WorkerRefused):
            what = str(exc)
        else:
            what = await self.sandbox.describe_exit() if self.sandbox else str(exc)
            what += " (for example os._exit, a crash, or running out of memory)"
        before = self.at
        await self.close(keep=False)
        try:
            await self.ensure(before)
        except Exception as exc:
            await self.close(keep=False)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SandboxLost(f"{what}, and no new sandbox could be started: {reason}") from exc
        return CellResult(
            error=(
                f"WorkerDied: {what}. A fresh worker was started and the REPL restored to its state "
                "before this cell."
            ),
            snapshot=self.at,
            dropped=self._take_dropped(),
        )

    async def _restart(self) -> None:
        await self.close()
        self.sandbox = await asyncio.to_thread(self.make_sandbox)
        self.channel = await self.sandbox.start()

    async def _manifest(self, snapshot: str) -> dict[str, Any]:
        return json.loads(await asyncio.to_thread(self.blobs.get, snapshot))

    def _target(self, snapshot: str | None) -> str | None:
        return self.pruned.get(snapshot, snapshot) if snapshot is not None else None

    async def _keep(self, manifest: Any) -> dict[str, Any]:
        """Stores a snapshot manifest the worker sent, once checked, and moves the session to it."""
        checked = self.access.check_snapshot(manifest if isinstance(manifest, dict) else {})
        stored = {key: value for key, value in checked.items() if key != "variables"}
        self.at = await asyncio.to_thread(self.blobs.put, json.dumps(stored, sort_keys=True).encode())
        self.access.allow([self.at])
        return checked

    async def _restore(self, snapshot: str) -> None:
        """Loads the snapshot in at most `restore_seconds` in all. The worker drops a value that
        fails to load or overruns its share of that time; one whose loading hangs past the
        worker's own alarm costs a fresh worker that restores the rest without it, in what time
        is left. The model is told once what was dropped, and the session moves to the snapshot of
        what did load, so the next restore, and the next checkpoint, leave them out."""
        manifest = await self._manifest(snapshot)
        self.access.allow([snapshot, *manifest_blobs(manifest)])
        names = [*manifest["values"], *manifest.get("modules", {})]
        deadline = time.monotonic() + self.restore_seconds
        progress = RestoreProgress()
        for _ in range(len(names) + 2):
            seconds = max(0.0, deadline - time.monotonic())
            command = {
                "op": "restore",
                "manifest": manifest,
                "skip": sorted(progress.dropped),
                "seconds": seconds,
            }
            try:
                done = await self._watched(command, progress, deadline)
                break
            except WorkerHung as exc:
                culprit = progress.loading if progress.loading not in progress.dropped else None
                progress.dropped.update({culprit: str(exc)} if culprit else dict.fromkeys(names, str(exc)))
                await self._restart()
        else:
            raise WorkerRefused(f"the REPL snapshot {snapshot[:12]} could not be restored")
        if not progress.dropped:
            self.at = snapshot
            return
        self.dropped.update(progress.dropped)
        await self._keep(done.get("manifest"))
        self.pruned[snapshot] = self.at

    async def _watched(self, command: Frame, progress: RestoreProgress, deadline: float) -> Frame:
        """Waits for the restore while each value's loading keeps to its share of the time left."""
        assert self.channel is not None
        task = asyncio.ensure_future(self.channel.call(command, self._handler(None, progress)))
        progress.loading, progress.since = None, time.monotonic()
        try:
            while True:
                loading, since = progress.loading, progress.since
                share = value_seconds(deadline - since)
                wait = since + share * RESTORE_PATIENCE - time.monotonic()
                finished, _ = await asyncio.wait({task}, timeout=max(0.0, wait))
                if finished:
                    return task.result()
                if (progress.loading, progress.since) == (loading, since):
                    raise WorkerHung(overran(share))
        except asyncio.CancelledError:
            await self._abandon()
            raise
        finally:
            task.cancel()

    async def _abandon(self) -> None:
        """A command cancelled midway (Ctrl-C, a cancelled run) is still running in the worker,
        its answer unread: the worker is stopped at once, the snapshot before it is the truth."""
        await self.close(keep=False)

    def _take_dropped(self) -> dict[str, str]:
        dropped, self.dropped = self.dropped, {}
        return dropped

    async def _blob(self, sha: str, copy: bool) -> Reply:
        """A blob the sandbox bound as it started is named by its path there (the worker maps
        it); any other, or one the worker could not map (`copy`), is sent over the channel."""
        self.access.check(sha)
        inside = None if copy or self.sandbox is None else self.sandbox.bound_blobs.get(sha)
        if inside is not None:
            return {"op": "blob", "path": inside}, None
        return {"op": "blob"}, await asyncio.to_thread(self.access.open, sha)

    def _handler(self, subcalls: SubCalls | None, restoring: RestoreProgress | None = None) -> RequestHandler:
        async def handle(frame: Frame, data: bytes | None) -> Reply | None:
            op = frame["op"]
            if op == "put_blob":
                await asyncio.to_thread(self.access.put, frame["sha"], data or b"")
                return None
            if op == "restoring" and restoring is not None:
                restoring.loading, restoring.since = frame["name"], time.monotonic()
                return None
            if op == "dropped" and restoring is not None:
                restoring.dropped[frame["name"]] = frame["reason"]
                return None
            if op == "get_blob":
                return await self._blob(frame["sha"], frame.get("copy", False))
            if op == "read_file":
                path = await asyncio.to_thread(self.gate.check, frame["path"])
                sha, size = await asyncio.to_thread(self.blobs.put_file, path)
                self.access.allow([sha])
                return {"value": {"sha": sha, "size": size}}, None
            if op not in ("llm_query", "rlm_query"):
                raise WorkerRefused(f"the worker sent a {op!r} frame where none belongs")
            if subcalls is None:
                raise RuntimeError(f"{op} is not available while the REPL is restored")
            if op == "llm_query":
                return {"value": await subcalls.llm_query(frame["prompt"], frame["model"])}, None
            sha = frame["context_sha"]
            if sha is not None and sha not in self.access.readable:
                raise LookupError(f"no blob {sha[:12]} in this thread")
            return {"value": await subcalls.rlm_query(frame["prompt"], sha)}, None

        return handle
