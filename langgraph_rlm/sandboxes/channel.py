"""The host end of the worker's framed channel: a JSON line per message, raw bytes after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from langgraph_rlm.persistence.blobs import CHUNK, OpenBlob
from langgraph_rlm.sandboxes.base import WorkerDied, WorkerRefused
from langgraph_rlm.sandboxes.worker.protocol import MAX_LINE, ProtocolError, check_from_worker, encode

Frame = dict[str, Any]
Payload = bytes | OpenBlob
Reply = tuple[Frame, Payload | None]
RequestHandler = Callable[[Frame, bytes | None], Awaitable[Reply | None]]
Deliver = Callable[[Frame, Frame, Payload | None], Awaitable[None]]

STREAM_LIMIT = MAX_LINE
MAX_IN_FLIGHT = 256
ANSWERED_IN_ORDER = ("get_blob", "read_file")


class ByteStream(Protocol):
    """What the channel reads from: an asyncio StreamReader, or docker's demultiplexed stream."""

    async def readline(self) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...

    def at_eof(self) -> bool: ...


class Channel(Protocol):
    """What a session needs of a worker's channel, whatever carries it."""

    at: str | None

    @property
    def closed(self) -> bool:
        """The worker's end is known to be gone, without asking it anything."""
        ...

    async def call(self, message: Frame, handle: RequestHandler) -> Frame: ...


class WorkerChannel:
    at: str | None = None
    """The snapshot the worker already holds when it starts (none: a fresh worker starts empty)."""
    blob_writer: asyncio.StreamWriter | None = None
    """A faster way in for stored blobs than the channel itself, where the sandbox has one."""

    def __init__(self, reader: ByteStream, writer: asyncio.StreamWriter, max_blob: int) -> None:
        self.reader = reader
        self.writer = writer
        self.max_blob = max_blob
        self._calls = 0

    @property
    def closed(self) -> bool:
        """Between commands the worker writes nothing, so the end of its output is its end."""
        return self.reader.at_eof()

    async def send(self, message: Frame, data: Payload | None = None) -> None:
        try:
            if isinstance(data, OpenBlob):
                await self._stream(message, data)
            else:
                self.writer.write(encode(message, data))
                await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerDied(f"the channel closed ({exc})") from exc

    async def _stream(self, message: Frame, blob: OpenBlob) -> None:
        """A stored blob goes out a chunk at a time, each written before the next is read: the
        host holds one chunk of a 1 GB context, never the context."""
        out = self.blob_writer or self.writer
        with blob.file:
            self.writer.write(encode({**message, "piped" if self.blob_writer else "nbytes": blob.size}))
            await self.writer.drain()
            left = blob.size
            while left:
                chunk = await asyncio.to_thread(blob.file.read, min(CHUNK, left))
                if not chunk:
                    raise WorkerDied("a blob shrank while it was being sent")
                out.write(chunk)
                await out.drain()
                left -= len(chunk)

    async def read(self) -> tuple[Frame, bytes | None]:
        """The next frame, checked: anything the worker should never send ends it."""
        try:
            line = await self.reader.readline()
            if not line:
                raise WorkerDied("the worker closed its channel")
            frame = check_from_worker(line, self.max_blob)
            data = await self.reader.readexactly(frame["nbytes"]) if "nbytes" in frame else None
        except ProtocolError as exc:
            raise WorkerRefused(f"the worker sent {exc}") from None
        except ValueError:
            raise WorkerRefused(f"the worker sent a line longer than {MAX_LINE:,} bytes") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerDied(f"the channel broke ({exc})") from exc
        return frame, data

    async def expect(self, op: str) -> Frame:
        frame, _ = await self.read()
        if frame["op"] != op:
            raise WorkerRefused(f"expected {op!r} from the worker, got {frame['op']!r}")
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
                if frame["op"] == "done":
                    return done_for(frame, call_id)
                await requests.serve(frame, data)
        finally:
            requests.cancel()

    async def _deliver(self, frame: Frame, message: Frame, payload: Payload | None) -> None:
        await self.send({"op": "reply", **message, "id": frame["id"]}, payload)


def done_for(frame: Frame, call_id: int) -> Frame:
    if frame["id"] != call_id:
        raise WorkerRefused(f"the worker answered command {frame['id']} while {call_id} was running")
    return frame


class RequestServer:
    """Serves a worker's requests while one command runs, whatever carries the answers.

    Uploads (frames without an id) are stored in order, before `done`, because the answer refers
    to them. Model calls run as tasks, so a batch is answered concurrently, at most
    MAX_IN_FLIGHT at once; blobs are answered one at a time, so a worker that asks for many
    cannot make the host hold them all. What still runs when the command ends is cancelled.
    """

    def __init__(self, handle: RequestHandler, deliver: Deliver) -> None:
        self.handle = handle
        self.deliver = deliver
        self.tasks: set[asyncio.Task] = set()

    async def serve(self, frame: Frame, data: bytes | None) -> None:
        if "id" not in frame:
            await self.handle(frame, data)
        elif frame["op"] in ANSWERED_IN_ORDER:
            await self._answer(frame, data)
        else:
            while len(self.tasks) >= MAX_IN_FLIGHT:
                await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._answer(frame, data))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, frame: Frame, data: bytes | None) -> None:
        try:
            reply = await self.handle(frame, data)
        except WorkerDied:
            raise
        except Exception as exc:  # the worker gets the reason, the cell decides what to do
            reply = ({"error": f"{type(exc).__name__}: {exc}"}, None)
        if reply is not None:
            await self.deliver(frame, *reply)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
