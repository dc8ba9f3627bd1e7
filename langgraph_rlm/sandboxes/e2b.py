"""The worker in an E2B cloud sandbox, driven through the code interpreter.

The worker module, cloudpickle and every blob (the contexts above all) are uploaded with
streamed `files.write`, never inlined into code. Each host command is one `run_code`; the
worker's requests come back as tagged lines on the cell's output, and the host answers by
writing files. So `llm_query` reaches the host with no port open in the sandbox and no key in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from typing import Any

from langgraph_rlm.extras import require
from langgraph_rlm.persistence.blobs import OpenBlob
from langgraph_rlm.sandboxes.base import SandboxSpec, SandboxUnavailable, WorkerDied, WorkerRefused
from langgraph_rlm.sandboxes.channel import Frame, Payload, RequestHandler, RequestServer, done_for
from langgraph_rlm.sandboxes.process import CLOUDPICKLE_DIR, WORKER_FILES
from langgraph_rlm.sandboxes.worker.protocol import MAX_LINE, ProtocolError, check_from_worker

TAG = "\x1eRLM\x1e"
GRACE = 30.0


def worker_files(workdir: str) -> list[tuple[str, io.BytesIO]]:
    """The worker and cloudpickle, read from disk (off the event loop) to stream into the sandbox."""
    files = [(f"{workdir}/{path.name}", path) for path in WORKER_FILES]
    files += [(f"{workdir}/lib/cloudpickle/{m.name}", m) for m in sorted(CLOUDPICKLE_DIR.glob("*.py"))]
    return [(target, io.BytesIO(path.read_bytes())) for target, path in files]


FORGET_WORKER = "import os\nos._exit(0)"
"""A kill is a no-op in E2B's debug mode (a local server keeps its one kernel): ending the kernel
makes the server start a fresh one, so a worker that was refused or died is never reused, and
leaves no thread of its own behind."""
FORGET_TIMEOUT = 5.0
DELIVERY_ATTEMPTS = 3


def code_interpreter() -> Any:
    return require("e2b_code_interpreter", "e2b", "--sandbox e2b")


def debug_mode() -> bool:
    return os.environ.get("E2B_DEBUG", "").lower() in ("1", "true", "yes")


class E2BChannel:
    closed = False
    """A remote sandbox that went away is found by the next command, which reports it."""

    def __init__(self, sandbox: Any, workdir: str, at: str | None, max_blob: int) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.at = at
        self.max_blob = max_blob
        self._calls = 0

    async def call(self, message: Frame, handle: RequestHandler) -> Frame:
        """One command as one executed cell; requests printed by the worker are served meanwhile."""
        self._calls += 1
        command = {**message, "id": self._calls}
        done: list[Frame] = []
        pending = ""
        requests = RequestServer(handle, self._deliver)

        async def on_stdout(output: Any) -> None:
            nonlocal pending
            pending += output.line
            if len(pending) > MAX_LINE:
                raise WorkerRefused(f"the worker wrote a line longer than {MAX_LINE:,} characters")
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                if not line.startswith(TAG):
                    continue
                frame = self.checked(line[len(TAG) :])
                data = await self.read(frame["file"]) if "file" in frame else None
                if frame["op"] == "done":
                    done.append(done_for(frame, command["id"]))
                else:
                    await requests.serve(frame, data)

        code = f"_rlm.handle_json({json.dumps(command)!r})"
        try:
            execution = await self.sandbox.run_code(code, on_stdout=on_stdout, timeout=0)
        except WorkerDied:
            raise
        except Exception as exc:
            raise WorkerDied(f"the E2B execution failed ({type(exc).__name__}: {exc})") from exc
        finally:
            requests.cancel()
        if not done:
            error = execution.error
            raise WorkerDied(
                f"the E2B kernel stopped ({error.name}: {error.value})" if error else "no answer"
            )
        return done[0]

    def checked(self, text: str) -> Frame:
        """A frame from the worker, checked like any channel's; its bytes may only come from
        the worker's own outbox (never, say, /dev/zero)."""
        try:
            frame = check_from_worker(text, self.max_blob)
        except ProtocolError as exc:
            raise WorkerRefused(f"the worker sent {exc}") from None
        outbox = f"{self.workdir}/out/"
        if "file" in frame and not (
            isinstance(frame["file"], str)
            and frame["file"].startswith(outbox)
            and frame["file"][len(outbox) :].replace("-", "").isdigit()
        ):
            raise WorkerRefused("the worker named a file outside its outbox")
        return frame

    async def read(self, path: str) -> bytes:
        return bytes(await self.sandbox.files.read(path, format="bytes"))

    async def _deliver(self, frame: Frame, message: Frame, payload: Payload | None) -> None:
        """An answer is a file the worker waits for; its payload, if any, is uploaded first."""
        base = f"{self.workdir}/replies/{frame['id']}"
        if payload is not None:
            with payload.file if isinstance(payload, OpenBlob) else contextlib.nullcontext():
                await self._write(base + ".blob", payload)
            message = {**message, "file": base + ".blob"}
        await self._write(base + ".json", json.dumps(message).encode())

    async def _write(self, path: str, data: Payload) -> None:
        """A connection dropped on the way must not lose an answer the worker is waiting for;
        a stored blob is uploaded from its file, not from a copy in memory."""
        file = data.file if isinstance(data, OpenBlob) else io.BytesIO(data)
        for attempt in range(DELIVERY_ATTEMPTS):
            try:
                file.seek(0)
                await self.sandbox.files.write(path, file)
                return
            except Exception:
                if attempt == DELIVERY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)


class E2BSandbox:
    kind = "e2b"
    isolated = True

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.bound_blobs: dict[str, str] = {}
        """A cloud sandbox cannot see the host's files: every blob is uploaded."""
        self.sandbox: Any = None

    @property
    def sandbox_id(self) -> str | None:
        return self.sandbox.sandbox_id if self.sandbox is not None else None

    @classmethod
    def check_available(cls) -> None:
        code_interpreter()
        if not os.environ.get("E2B_API_KEY", "").strip() and not debug_mode():
            raise SandboxUnavailable(
                "E2B_API_KEY is not set: create a key at e2b.dev and export it, or choose --sandbox local, "
                "docker or process"
            )

    async def start(self) -> E2BChannel:
        self.check_available()
        sandbox_class = code_interpreter().AsyncSandbox
        workdir = self.spec.e2b_workdir
        try:
            self.sandbox = await self._connect(sandbox_class) or await sandbox_class.create()
            for target, source in await asyncio.to_thread(worker_files, workdir):
                await self.sandbox.files.write(target, source)
            limits = f"{self.spec.memory_mb}, {self.spec.big_value_bytes}, {self.spec.max_processes}"
            setup = await self.sandbox.run_code(
                f"import sys\nsys.path[:0] = [{workdir!r}, {workdir + '/lib'!r}]\nimport repl_worker\n"
                f"if globals().get('_rlm') is None or _rlm.workdir != {workdir!r}:\n"
                f"    _rlm = repl_worker.KernelSession({workdir!r}, {limits})\n"
                "_rlm.announce()"
            )
        except Exception as exc:
            raise SandboxUnavailable(
                f"the E2B sandbox could not start: {type(exc).__name__}: {exc}"
            ) from None
        if setup.error:
            raise SandboxUnavailable(f"the E2B sandbox could not start its worker: {setup.error.value}")
        channel = E2BChannel(self.sandbox, workdir, None, self.spec.memory_mb << 20)
        lines = "".join(setup.logs.stdout).splitlines()
        try:
            ready = [channel.checked(line[len(TAG) :]) for line in lines if line.startswith(TAG)]
        except WorkerRefused as exc:
            raise SandboxUnavailable(f"the E2B sandbox's worker did not start properly: {exc}") from None
        channel.at = ready[-1].get("at") if ready else None
        return channel

    async def _connect(self, sandbox_class: Any) -> Any:
        """The thread's earlier sandbox (resumed if paused), when there is one to go back to."""
        if not self.spec.reconnect:
            return None
        try:
            return await sandbox_class.connect(self.spec.reconnect)
        except Exception:
            return None

    async def describe_exit(self) -> str:
        return "the worker's E2B kernel stopped"

    async def stop(self, keep: bool = True) -> None:
        """Kills the sandbox, or pauses it (the e2b_pause setting) so the thread can resume it later."""
        if self.sandbox is None:
            return
        sandbox, self.sandbox = self.sandbox, None
        if keep and self.spec.e2b_pause:
            with contextlib.suppress(Exception):
                await sandbox.pause()
                return
        if debug_mode():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sandbox.run_code(FORGET_WORKER), FORGET_TIMEOUT)
        with contextlib.suppress(Exception):
            await sandbox.kill()
