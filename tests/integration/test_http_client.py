"""The HTTP client under the `openai/...` models, against real sockets: replies in pieces, kept-alive
connections (and ones the server closed meanwhile), oversized replies, refused connections, TLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess

import pytest

from langgraph_rlm.llm import http
from langgraph_rlm.llm.http import ReplyTooLarge, post_json


class RawServer:
    """Answers each request on a connection with the next of `replies` (raw bytes), counting
    connections; `close_after` replies on a connection, it hangs up without saying so."""

    def __init__(self, replies: list[bytes], close_after: int = 0) -> None:
        self.replies, self.close_after = replies, close_after
        self.connections, self.requests = 0, []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        while self.replies:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            self.requests.append(json.loads(await reader.readexactly(length)))
            writer.write(self.replies.pop(0))
            await writer.drain()
            answered += 1
            if answered == self.close_after:
                break
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def reply(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*pieces: bytes) -> bytes:
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nTrailer: x\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body


async def test_a_reply_in_chunks_is_put_back_together_and_its_connection_kept():
    server = RawServer([chunked(b'{"a": ', b'"b', b'c"}'), reply(b"{}")])
    async with server as url:
        first = await post_json(url, {"n": 1}, {"Authorization": "Bearer k"}, limit=1000)
        second = await post_json(url, {"n": 2}, {}, limit=1000)
    assert json.loads(first.body) == {"a": "bc"} and second.body == b"{}"
    assert server.requests == [{"n": 1}, {"n": 2}]
    assert server.connections == 1, "the second request reused the first's connection"


async def test_a_kept_connection_the_server_closed_meanwhile_is_replaced():
    server = RawServer([reply(b"1"), reply(b"2")], close_after=1)
    async with server as url:
        assert (await post_json(url, {}, {}, limit=10)).body == b"1"
        await asyncio.sleep(0.1)
        assert (await post_json(url, {}, {}, limit=10)).body == b"2"
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_reply_over_the_limit_is_refused_whether_its_length_is_said_or_not():
    server = RawServer([reply(b"x" * 101), chunked(b"x" * 60, b"x" * 60)])
    async with server as url:
        with pytest.raises(ReplyTooLarge):
            await post_json(url, {}, {}, limit=100)
        with pytest.raises(ReplyTooLarge):
            await post_json(url, {}, {}, limit=100)


async def test_a_closed_port_is_a_connection_error():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionError):
        await post_json(f"http://127.0.0.1:{port}/v1", {}, {}, limit=10)


async def test_https_checks_the_certificate_against_the_trusted_store(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = RawServer([reply(b"secure")])
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    url = f"https://localhost:{listening.sockets[0].getsockname()[1]}/v1"
    try:
        http._tls.cache_clear()
        with pytest.raises(ssl.SSLCertVerificationError):
            await post_json(url, {}, {}, limit=100)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        http._tls.cache_clear()
        assert (await post_json(url, {}, {}, limit=100)).body == b"secure"
    finally:
        http._tls.cache_clear()
        listening.close()
