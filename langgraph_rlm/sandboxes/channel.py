"""The host end of the worker's framed channel: a JSON line per message, raw bytes after it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from langgraph_rlm.sandboxes.base import WorkerDied

Frame = dict[str, Any]
Reply = tuple[Frame, bytes | None]
RequestHandler = Callable[[Frame, bytes | None], Awaitable[Reply | None]]
Deliver = Callable[[Frame, Frame, bytes | None], Awaitable[None]]

STREAM_LIMIT = 1 << 28


class Channel(Protocol):
    """What a session needs of a worker's channel, whatever carries it."""

    at: str | None

    async def call(self, message: Frame, handle: RequestHandler) -> Frame: ...


class WorkerChannel:
    at: str | None = None
    """The snapshot the worker already holds when it starts (none: a fresh worker starts empty)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._calls = 0

    async def send(self, message: Frame, data: bytes | None = None) -> None:
        if data is not None:
            message = {**message, "nbytes": len(data)}
        frame = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            self.writer.write(frame + data if data is not None else frame)
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerDied(f"the channel closed ({exc})") from exc

    async def read(self) -> tuple[Frame, bytes | None]:
        try:
            line = await self.reader.readline()
            if not line:
                raise WorkerDied("the worker closed its channel")
            frame = json.loads(line)
            data = await self.reader.readexactly(frame["nbytes"]) if "nbytes" in frame else None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise WorkerDied(f"the channel broke ({exc})") from exc
        return frame, data

    async def expect(self, op: str) -> Frame:
        frame, _ = await self.read()
        if frame.get("op") != op:
            raise WorkerDied(f"expected {op!r} from the worker, got {frame.get('op')!r}")
        return frame

    async def call(self, message: Frame, handle: RequestHandler) -> Frame:
        """Sends a command and serves the worker's requests until its `done` comes back."""
        self._calls += 1
        call_id = self._calls
        await self.send({**message, "id": call_id})
        requests = RequestServer(handle, self._deliver)
        try:
            while True:
                frame, data = await self.read()
                if frame.get("op") == "done" and frame.get("id") == call_id:
                    return frame
                await requests.serve(frame, data)
        finally:
            requests.cancel()

    async def _deliver(self, frame: Frame, message: Frame, payload: bytes | None) -> None:
        await self.send({"op": "reply", **message, "id": frame["id"]}, payload)


class RequestServer:
    """Serves a worker's requests while one command runs, whatever carries the answers.

    Uploads (frames without an id) are stored in order, before `done`, because the answer refers
    to them; requests run as tasks so a batch is answered concurrently; what is still running
    when the command ends is cancelled.
    """

    def __init__(self, handle: RequestHandler, deliver: Deliver) -> None:
        self.handle = handle
        self.deliver = deliver
        self.tasks: set[asyncio.Task] = set()

    async def serve(self, frame: Frame, data: bytes | None) -> None:
        if "id" not in frame:
            await self.handle(frame, data)
            return
        task = asyncio.create_task(self._answer(frame, data))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, frame: Frame, data: bytes | None) -> None:
        try:
            reply = await self.handle(frame, data)
        except Exception as exc:  # the worker gets the reason, the cell decides what to do
            reply = ({"error": f"{type(exc).__name__}: {exc}"}, None)
        if reply is not None:
            await self.deliver(frame, *reply)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
