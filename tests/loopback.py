"""What the tests' HTTP stand-ins share: a threaded server on a free loopback port."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(
        self, status: int, data: bytes, content_type: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class BacklogServer(ThreadingHTTPServer):
    """A batch of sub-calls connects all at once; the default backlog of 5 resets some of them on
    a loaded machine."""

    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-request (a killed process, as tests kill them) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 from a background thread while used as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        """`port` 0 takes a free one; a README command naming its server's port gets that one."""
        self.httpd = BacklogServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
