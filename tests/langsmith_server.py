"""A stand-in LangSmith endpoint for tests: it takes the runs a real langsmith client uploads.

Its /info asks for multipart forms (what LangSmith itself takes) or, with `multipart=False`, for
JSON batches. Each run's posted and patched fields are merged under its id; `received` counts
every byte uploaded, so a test can measure how a trace grows.
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer, QuietHandler

BATCHES = {
    "size_limit": 100,
    "size_limit_bytes": 20_971_520,
    "scale_up_nthreads_limit": 16,
    "scale_up_qsize_trigger": 1000,
    "scale_down_nempty_trigger": 4,
}


class LangSmithServer(LoopbackServer):
    def __init__(self, multipart: bool = True) -> None:
        self.info = {
            "version": "0.0-test",
            "batch_ingest_config": {**BATCHES, "use_multipart_endpoint": multipart},
            "instance_flags": {},
        }
        self.runs: dict[str, dict[str, Any]] = {}
        self.received = 0
        self.lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.origin

    def reset(self) -> None:
        with self.lock:
            self.runs.clear()
            self.received = 0

    def record(self, run: dict[str, Any]) -> None:
        with self.lock:
            self.runs.setdefault(str(run["id"]), {}).update(run)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._json(200, server.info if self.path.startswith("/info") else {})

            def do_POST(self) -> None:
                body = self._body()
                if self.path.startswith("/runs/batch"):
                    batch = json.loads(body)
                    for run in [*(batch.get("post") or []), *(batch.get("patch") or [])]:
                        server.record(run)
                elif self.path.startswith("/runs/multipart"):
                    for run in multipart_runs(self.headers["Content-Type"], body):
                        server.record(run)
                elif self.path.rstrip("/") == "/runs":
                    server.record(json.loads(body))
                self._json(202 if self.path.startswith("/runs") else 200, {})

            def do_PATCH(self) -> None:
                body = self._body()
                if self.path.startswith("/runs/"):
                    server.record({**json.loads(body), "id": self.path.rsplit("/", 1)[-1]})
                self._json(200, {})

            def _body(self) -> bytes:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.received += len(body)
                return body

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                self.reply(status, json.dumps(payload).encode())

        return Handler


def multipart_runs(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """Parts are named `post.<id>` or `patch.<id>`, with `.inputs`, `.outputs` and the like as
    separate parts of the same run."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    runs: dict[str, dict[str, Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        kind, _, rest = name.partition(".")
        if kind not in ("post", "patch"):
            continue
        run_id, _, field = rest.partition(".")
        value = json.loads(part.get_payload(decode=True))
        run = runs.setdefault(run_id, {"id": run_id})
        run.update({field: value} if field else value)
    return list(runs.values())
