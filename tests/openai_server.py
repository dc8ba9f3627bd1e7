"""A small OpenAI-compatible server for tests: the real litellm network path, a scripted model.

`respond(messages)` decides each reply; every request is recorded as it arrives (`received`) and
logged with its start and end time and the token counts it reported once answered (`log`),
so a test can prove concurrency from overlapping requests instead of timing a run.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer, QuietHandler

HOLD_SECONDS = 30.0
Responder = Callable[[list[dict[str, Any]]], str]


class HTTPFailure(Exception):
    """Raised by a script: the server answers with this status (and headers), as a provider would."""

    def __init__(self, status: int, message: str = "scripted failure", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Dropped(Exception):
    """Raised by a script: the server sends half of a reply and closes the connection, as a proxy
    or a provider going down mid-reply does."""


class ScriptedOpenAIServer(LoopbackServer):
    def __init__(
        self,
        respond: Responder,
        delay: float = 0.0,
        garbage: bool = False,
        hold_first: int = 0,
        port: int = 0,
    ) -> None:
        """`hold_first=N`: the first N requests wait for one another (up to HOLD_SECONDS), so a
        client that sends N at once is seen with N in flight however slow the machine is."""
        self.respond = respond
        self.delay = delay
        self.garbage = garbage
        self.hold_first = hold_first
        self.log: list[dict[str, Any]] = []
        self.received: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        super().__init__(self._handler(), port)

    def _hold(self) -> None:
        with self.arrived:
            self.arrived.notify_all()
            if len(self.received) <= self.hold_first:
                self.arrived.wait_for(lambda: len(self.received) >= self.hold_first, HOLD_SECONDS)

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    def max_overlap(self) -> int:
        """The most requests that were in flight at one moment."""
        edges = sorted([(r["start"], 1) for r in self.log] + [(r["end"], -1) for r in self.log])
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:
                start = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.garbage:
                    self.reply(200, b"this is not json")
                    return
                messages = body.get("messages", [])
                with server.lock:
                    server.received.append(messages)
                server._hold()
                try:
                    text = server.respond(messages)
                except HTTPFailure as failure:
                    error = {"error": {"message": str(failure), "type": "scripted", "code": failure.status}}
                    self.reply(failure.status, json.dumps(error).encode(), headers=failure.headers)
                    return
                except Dropped:
                    self.drop()
                    return
                except Exception as exc:  # the test's script failed: say so like a provider would
                    self._send(500, {"error": {"message": f"script error: {exc}", "type": "server_error"}})
                    return
                if server.delay:
                    time.sleep(server.delay)
                prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4
                completion_tokens = len(text) // 4 + 1
                with server.lock:
                    server.log.append(
                        {
                            "start": start,
                            "end": time.monotonic(),
                            "model": body.get("model"),
                            "messages": messages,
                            "reply": text,
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens"),
                        }
                    )
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "scripted"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    },
                )

            def drop(self) -> None:
                body = json.dumps({"id": "chatcmpl-test", "choices": [{"message": {"content": "x" * 200}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2].encode())
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                self.reply(status, json.dumps(payload).encode())

        return Handler


def is_root_call(messages: list[dict[str, Any]]) -> bool:
    return (
        bool(messages)
        and messages[0].get("role") == "system"
        and "Recursive Language Model" in str(messages[0].get("content"))
    )


GRAPH_NOTES = ("REPL output", "Nothing ran", "You have not looked")
"""How the user-role messages the graph adds (not the caller's questions) begin."""


def is_question(message: dict[str, Any]) -> bool:
    content = str(message.get("content"))
    return message.get("role") == "user" and not any(note in content for note in GRAPH_NOTES)


def last_question(messages: list[dict[str, Any]]) -> str:
    """The question of the current turn, as the root model was sent it."""
    return [m["content"] for m in messages if is_question(m)][-1]


def root_step(messages: list[dict[str, Any]]) -> int:
    """How many REPL outputs the root model has seen in this turn (0 on its first step)."""
    last_question = max(i for i, m in enumerate(messages) if is_question(m))
    return sum(1 for m in messages[last_question:] if "REPL output" in str(m.get("content")))


def main() -> None:
    """Serves one fixed reply from its own process (benchmarks keep it off the host's GIL)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--reply", default="ok")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    server = ScriptedOpenAIServer(lambda messages: args.reply, delay=args.delay)
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
