"""The worker in one long-lived, hardened Docker container per session.

Any image with python3 works: the worker and cloudpickle are bind-mounted read-only, not baked
in. The host channel is the container's attach stream, so the container needs no network;
the contexts the session started with are bound read-only from the blob store, and other stored
blobs come in on a FIFO beside the stream (see blob_pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from typing import Any

from langgraph_rlm.extras import require
from langgraph_rlm.sandboxes.base import (
    SandboxSpec,
    SandboxUnavailable,
    WorkerDied,
    bound_inside,
    exit_description,
    to_thread_to_the_end,
)
from langgraph_rlm.sandboxes.blob_pipe import BlobPipe, remove_stale_pipes
from langgraph_rlm.sandboxes.channel import STREAM_LIMIT, WorkerChannel
from langgraph_rlm.sandboxes.process import CLOUDPICKLE_DIR, START_TIMEOUT, WORKER_FILES

INSIDE = "/opt/rlm"
LABEL = "langgraph-rlm"
NOBODY = "65534:65534"
MEMORY_HEADROOM_MB = 256
READ_CHUNK = 1 << 16
STDERR_TAIL = 4096
ENVIRONMENT = {
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONPATH": f"{INSIDE}/lib",
    "PYTHONDONTWRITEBYTECODE": "1",
}
HINT = "start the Docker daemon, or choose --sandbox local, e2b or process"


def docker_module() -> Any:
    return require("docker", "docker", "--sandbox docker")


def docker_client() -> Any:
    """A client that has answered a ping; SandboxUnavailable (or MissingExtra) with one line
    otherwise."""
    docker = docker_module()
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise SandboxUnavailable(f"Docker is not reachable at {where} ({reason}): {HINT}") from None
    return client


def docker_fix(said: str) -> str:
    """What to do about what the Docker engine said when it refused the container."""
    lowered = said.lower()
    if "bind source path does not exist" in lowered or "no such file or directory" in lowered:
        return (
            "a file the container binds is missing; check that the context files and the state dir "
            "(--state-dir) exist on the machine the Docker daemon runs on, then run again"
        )
    return "see `rlm doctor`, or choose --sandbox local, e2b or process"


def host_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def remove_orphans(client: Any) -> None:
    """Containers left by a host process of this machine that no longer runs. The listing is the
    engine's summary, not an inspection of each container: another process's container may go
    between the two, and that must not stop this sandbox from starting."""
    hostname = socket.gethostname()
    for container in client.api.containers(all=True, filters={"label": LABEL}):
        owner_host, _, owner_pid = (container.get("Labels") or {}).get(f"{LABEL}.host", "").rpartition(":")
        if owner_host == hostname and owner_pid.isdigit() and not os.path.exists(f"/proc/{owner_pid}"):
            with contextlib.suppress(Exception):
                client.api.remove_container(container["Id"], force=True)


class DockerSandbox:
    kind = "docker"
    isolated = True

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        shown = set(spec.visible_files)
        inside = bound_inside(spec)
        self.bound_blobs = {sha: inside[sha] for sha, path in spec.bound_blobs.items() if path not in shown}
        """Docker keys its volumes by host path, so a store file also named as a context file
        keeps its one mount there and reaches the worker over the channel."""
        self.container: Any = None
        self.attached: Any = None
        self.writer: asyncio.StreamWriter | None = None
        self.stream: AttachStream | None = None
        self.blob_pipe: BlobPipe | None = None

    @classmethod
    def check_available(cls) -> None:
        docker_client()

    def container_options(self) -> dict[str, Any]:
        volumes = {str(path): {"bind": f"{INSIDE}/{path.name}", "mode": "ro"} for path in WORKER_FILES}
        volumes[str(CLOUDPICKLE_DIR)] = {"bind": f"{INSIDE}/lib/cloudpickle", "mode": "ro"}
        for path in self.spec.visible_files:
            volumes[str(path)] = {"bind": str(path), "mode": "ro"}
        for sha, inside in self.bound_blobs.items():
            volumes[str(self.spec.bound_blobs[sha])] = {"bind": inside, "mode": "ro"}
        pipe = []
        if self.blob_pipe is not None:
            volumes[str(self.blob_pipe.path)] = {"bind": f"{INSIDE}/{self.blob_pipe.path.name}", "mode": "ro"}
            pipe = ["--blob-pipe", f"{INSIDE}/{self.blob_pipe.path.name}"]
        memory = self.spec.memory_mb
        return {
            "image": self.spec.docker_image,
            "command": [
                "python3",
                "-s",
                f"{INSIDE}/repl_worker.py",
                "--isolated",
                "--memory-mb",
                str(memory),
                "--big-value",
                str(self.spec.big_value_bytes),
                *pipe,
            ],
            "stdin_open": True,
            "detach": True,
            "init": True,
            "user": NOBODY,
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"size={memory}m,mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": f"{memory + MEMORY_HEADROOM_MB}m",
            "memswap_limit": f"{memory + MEMORY_HEADROOM_MB}m",
            "nano_cpus": int(self.spec.cpus * 1e9),
            "pids_limit": self.spec.max_processes,
            "environment": ENVIRONMENT,
            "working_dir": "/tmp",
            "volumes": volumes,
            "labels": {LABEL: "worker", f"{LABEL}.host": host_label()},
            "log_config": {"type": "none", "config": {}},
        }

    async def start(self) -> WorkerChannel:
        docker = docker_module()
        client = await asyncio.to_thread(docker_client)
        await asyncio.to_thread(remove_orphans, client)
        await asyncio.to_thread(remove_stale_pipes)
        self.blob_pipe = BlobPipe()
        try:
            try:
                await to_thread_to_the_end(self._create, client)
            except docker.errors.ImageNotFound:
                await asyncio.to_thread(self._pull, client)
                await to_thread_to_the_end(self._create, client)
            self.attached = await asyncio.to_thread(
                client.api.attach_socket,
                self.container.id,
                params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1},
            )
            await asyncio.to_thread(self.container.start)
        except docker.errors.APIError as exc:
            await self.stop()
            said = " ".join(str(exc.explanation or exc).split())[:300]
            message = f"Docker could not start the sandbox ({said}): {docker_fix(said)}"
            raise SandboxUnavailable(message) from None
        reader, self.writer = await asyncio.open_connection(sock=self.attached._sock, limit=READ_CHUNK)
        self.stream = AttachStream(reader)
        channel = WorkerChannel(self.stream, self.writer, self.spec.memory_mb << 20)
        try:
            await asyncio.wait_for(channel.expect("ready"), START_TIMEOUT)
        except (WorkerDied, TimeoutError):
            await asyncio.sleep(0.2)
            said = self.stream.stderr.decode(errors="replace").strip().splitlines()
            reason = said or [await self.describe_exit()]
            await self.stop()
            raise SandboxUnavailable(f"the docker sandbox could not start its worker: {reason[-1]}") from None
        channel.blob_writer = await self.blob_pipe.open()
        return channel

    def _create(self, client: Any) -> None:
        self.container = client.containers.create(**self.container_options())

    def _pull(self, client: Any) -> None:
        image = self.spec.docker_image
        try:
            client.images.pull(image)
        except Exception as exc:
            said = " ".join(str(getattr(exc, "explanation", None) or exc).split())[:240]
            raise SandboxUnavailable(
                f"the Docker image {image} is not here and could not be pulled "
                f"({said}): set --docker-image to an image with python3 that is "
                "here (`docker images`) or that the daemon can pull"
            ) from None

    async def describe_exit(self) -> str:
        if self.container is None:
            return "the worker's container is gone"
        try:
            await asyncio.to_thread(self.container.reload)
            state = self.container.attrs["State"]
        except Exception:
            return "the worker's container is gone"
        if state.get("OOMKilled"):
            return "the worker was killed by the out-of-memory killer"
        if state.get("Running"):
            return "the worker stopped answering"
        return exit_description(state.get("ExitCode", 0))

    async def stop(self, keep: bool = True) -> None:
        """The transport closes its socket itself: a socket closed behind its back frees a
        descriptor number the next container's socket reuses, and the old transport, closed
        later, would then unregister the new one from the event loop (a channel that hangs)."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.transport.abort()
        if self.blob_pipe is not None:
            self.blob_pipe, pipe = None, self.blob_pipe
            pipe.close()
        if self.container is not None:
            container, self.container = self.container, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True)
        if self.attached is not None:
            attached, self.attached = self.attached, None
            with contextlib.suppress(OSError):
                attached.close()


class AttachStream:
    """The worker's stdout, demultiplexed from docker's attach stream only as the channel reads
    it: nothing is read ahead, so a worker that writes while no one listens fills the socket and
    waits, instead of filling the host. Stderr keeps its last STDERR_TAIL bytes, for start-up
    errors; what it drops is counted."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()
        self.stderr = bytearray()
        self.stderr_dropped = 0
        self.frame_kind = 0
        self.frame_left = 0

    async def readline(self) -> bytes:
        """Like StreamReader.readline: b"" at the end, ValueError past STREAM_LIMIT."""
        start = 0
        while (end := self.buffer.find(b"\n", start)) < 0:
            if len(self.buffer) > STREAM_LIMIT:
                raise ValueError("line too long")
            start = len(self.buffer)
            if not await self._fill():
                line, self.buffer = bytes(self.buffer), bytearray()
                return line
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self.buffer), n)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def at_eof(self) -> bool:
        return not self.buffer and self.reader.at_eof()

    async def _fill(self) -> bool:
        """Reads one piece of stdout (at most READ_CHUNK bytes); False at the end of the stream."""
        try:
            while True:
                if self.frame_left == 0:
                    header = await self.reader.readexactly(8)
                    self.frame_kind, self.frame_left = header[0], struct.unpack(">I", header[4:])[0]
                    continue
                piece = await self.reader.read(min(self.frame_left, READ_CHUNK))
                if not piece:
                    return False
                self.frame_left -= len(piece)
                if self.frame_kind == 1:
                    self.buffer += piece
                    return True
                self.stderr += piece
                self.stderr_dropped += max(0, len(self.stderr) - STDERR_TAIL)
                del self.stderr[:-STDERR_TAIL]
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
