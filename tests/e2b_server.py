"""A local stand-in for an E2B code-interpreter sandbox, for the real E2B SDK in debug mode.

It speaks the parts of the protocol the SDK uses: `POST /execute` answered with a JSON-lines
stream, `POST /files` (multipart or octet-stream) and `GET /files`, `GET /health`, and, as the API,
`POST /sandboxes/{id}/pause`. Code runs
for real in a persistent Python subprocess (the "kernel"), restarted when it dies, as Jupyter
does. Like a remote sandbox, the kernel is isolated (bubblewrap, when installed): no network, its
own processes, and of this machine's files only its own folder (`root`), where uploads land.
"""

from __future__ import annotations

import codecs
import email.parser
import email.policy
import json
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackServer, QuietHandler

KERNEL = r"""
import json, os, sys, traceback
marker = sys.argv[1]
if len(sys.argv) > 2:
    os.setgroups([])
    os.setgid(int(sys.argv[2]))
    os.setuid(int(sys.argv[2]))
namespace = {"__name__": "__main__"}
channel = os.fdopen(0, "rb")
while True:
    line = channel.readline()
    if not line:
        break
    code = json.loads(line)["code"]
    error = None
    try:
        exec(compile(code, "<cell>", "exec"), namespace)
    except BaseException as exc:
        error = {"name": type(exc).__name__, "value": str(exc), "traceback": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (marker + json.dumps({"error": error}) + "\n").encode())
"""
OUTPUT_PIECE = 64 << 10
OUTPUT_PIECES = 64


def isolated(command: list[str], root: Path) -> list[str]:
    """The kernel in its own little machine, as a remote sandbox is: no network, its own
    processes, a read-only system, a private /tmp, and only the sandbox's folder of this one."""
    if shutil.which("bwrap") is None:
        return command
    from langgraph_rlm.sandboxes.local import (
        NAMESPACES,
        SYSTEM_DIRS,
        SYSTEM_FILES,
        python_dirs,
        readable_mount,
    )

    args = ["bwrap", *NAMESPACES, "--die-with-parent", "--new-session"]
    args += (
        ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if os.geteuid() == 0 else ["--unshare-user"]
    )
    for path in SYSTEM_DIRS + SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    for path in python_dirs():
        args += readable_mount(path)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--bind", str(root), str(root), "--chdir", str(root)]
    return [*args, *command, *(["65534"] if os.geteuid() == 0 else [])]


class Kernel:
    """A Python process that keeps its namespace between executions."""

    def __init__(self, root: Path) -> None:
        self.marker = f"\x1f{uuid.uuid4().hex}\x1f"
        self.process = subprocess.Popen(
            isolated([str(Path(sys.executable).resolve()), "-u", "-c", KERNEL, self.marker], root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"},
        )
        self.events: queue.Queue = queue.Queue(maxsize=OUTPUT_PIECES)
        self.killed = False
        threading.Thread(target=self._pump, args=(self.process.stdout, "stdout"), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, "stderr"), daemon=True).start()

    def _pump(self, stream, kind: str) -> None:
        """Output goes on in pieces of some OUTPUT_PIECE characters, as a remote sandbox streams it,
        and the kernel waits while the client is behind: a line that never ends costs no memory."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while chunk := os.read(stream.fileno(), OUTPUT_PIECE):
            *lines, pending = (pending + decoder.decode(chunk)).split("\n")
            for line in lines:
                if kind == "stdout" and line.startswith(self.marker):
                    self._put(("done", json.loads(line[len(self.marker) :])))
                else:
                    self._put((kind, line + "\n"))
            if len(pending) >= OUTPUT_PIECE:
                self._put((kind, pending))
                pending = ""
        if pending:
            self._put((kind, pending))
        if kind == "stdout":
            self._put(("died", None))

    def _put(self, event: tuple) -> None:
        """Waits for the client, but not for one that has gone with the kernel it killed."""
        while not self.killed:
            try:
                self.events.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def execute(self, code: str):
        """Events of one execution; ("waiting", None) now and then while nothing happens."""
        self.process.stdin.write((json.dumps({"code": code}) + "\n").encode())
        self.process.stdin.flush()
        while True:
            try:
                kind, payload = self.events.get(timeout=0.2)
            except queue.Empty:
                kind, payload = "waiting", None
            yield kind, payload
            if kind in ("done", "died"):
                return

    def kill(self) -> None:
        self.killed = True
        self.process.kill()


class E2BStandIn(LoopbackServer):
    """Kernels are started from one long-lived thread: bubblewrap's --die-with-parent ends a
    child when the *thread* that started it exits, and HTTP handler threads are short-lived."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="e2b-stand-in-"))
        self.root.chmod(0o777)
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2b-kernels")
        self.kernel = self.new_kernel()
        self.lock = threading.Lock()
        self.executions = 0
        self.codes: list[str] = []
        self.uploads: list[tuple[str, int]] = []
        self.paused: list[str] = []
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.origin

    def workdir(self) -> str:
        """A fresh folder for one sandbox's files, inside what the kernel can see."""
        return str(self.root / uuid.uuid4().hex[:12])

    def make_folder(self, folder: Path) -> None:
        """Folders the sandbox's user may write in, as in a real sandbox's home."""
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        for path in missing:
            path.chmod(0o777)

    def new_kernel(self) -> Kernel:
        return self.spawner.submit(Kernel, self.root).result()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.kernel.kill()
        self.spawner.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/health":
                    self.reply(200, b"")
                elif url.path == "/files":
                    path = Path(parse_qs(url.query)["path"][0])
                    if not path.is_file():
                        self.reply(404, json.dumps({"message": f"{path} not found", "code": 404}).encode())
                    else:
                        self.reply(200, path.read_bytes(), "application/octet-stream")
                else:
                    self.reply(404, b"{}")

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = self._body()
                if url.path == "/files":
                    self._upload(url, body)
                elif url.path.startswith("/sandboxes/") and url.path.endswith("/pause"):
                    server.paused.append(url.path.split("/")[2])
                    self.reply(204, b"")
                elif url.path == "/execute":
                    self._execute(json.loads(body))
                else:
                    self.reply(404, b"{}")

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _upload(self, url, body: bytes) -> None:
                query = parse_qs(url.query)
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        f"Content-Type: {content_type}\r\n\r\n".encode() + body
                    )
                    files = [
                        (part.get_filename(), part.get_payload(decode=True)) for part in message.iter_parts()
                    ]
                else:
                    files = [(query["path"][0], body)]
                written = []
                for name, data in files:
                    target = Path(query["path"][0] if "path" in query else name)
                    server.make_folder(target.parent)
                    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                        tmp.write(data)
                    os.chmod(tmp.name, 0o666)
                    os.replace(tmp.name, target)
                    written.append({"name": target.name, "type": "file", "path": str(target)})
                    server.uploads.append((str(target), len(data)))
                self.reply(200, json.dumps(written).encode())

            def _execute(self, request: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                with server.lock:
                    server.codes.append(request["code"])
                    server.executions += 1
                    self._line({"type": "number_of_executions", "execution_count": server.executions})
                    for kind, payload in server.kernel.execute(request["code"]):
                        gone = kind == "waiting" and self._client_gone()
                        if kind in ("stdout", "stderr"):
                            gone = not self._line(
                                {"type": kind, "text": payload, "timestamp": time.time_ns()}
                            )
                        if gone:
                            server.kernel.kill()  # the client cancelled: stop the execution, as E2B does
                            server.kernel = server.new_kernel()
                            return
                        if kind == "done" and payload["error"]:
                            self._line({"type": "error", **payload["error"]})
                        elif kind == "died":
                            self._line(
                                {
                                    "type": "error",
                                    "name": "DeadKernelError",
                                    "value": "the kernel died",
                                    "traceback": "",
                                }
                            )
                            server.kernel = server.new_kernel()
                    self._line({"type": "end_of_execution"})

            def _client_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

            def _line(self, payload: dict) -> bool:
                try:
                    self.wfile.write((json.dumps(payload) + "\n").encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return False
                return True

        return Handler
