"""The HTTP client under the `openai/...` models, against real sockets: replies in pieces, kept-alive
connections (and ones the server closed meanwhile), oversized replies, refused connections, TLS,
and proxies named by the environment."""

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
        self.connections, self.requests, self.heads = 0, [], []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        while self.replies:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head.decode())
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


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for localhost: (its file, a server context using it)."""
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
    http._tls.cache_clear()
    yield cert, tls
    http._tls.cache_clear()


async def test_https_checks_the_certificate_against_the_trusted_store(certificate, monkeypatch):
    cert, tls = certificate
    server = RawServer([reply(b"secure")])
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    url = f"https://localhost:{listening.sockets[0].getsockname()[1]}/v1"
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await post_json(url, {}, {}, limit=100)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        http._tls.cache_clear()
        assert (await post_json(url, {}, {}, limit=100)).body == b"secure"
    finally:
        listening.close()


async def test_http_goes_through_the_proxy_the_environment_names(monkeypatch):
    proxy = RawServer([reply(b"via proxy")])
    async with proxy as proxy_url:
        monkeypatch.setenv(
            "HTTP_PROXY", proxy_url.replace("http://", "http://me:s%40cret@").rsplit("/v1", 1)[0]
        )
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        answer = await post_json("http://models.invalid:8000/v1/chat", {"q": 1}, {}, limit=100)
    assert answer.body == b"via proxy" and proxy.requests == [{"q": 1}]
    head = proxy.heads[0]
    assert head.startswith("POST http://models.invalid:8000/v1/chat HTTP/1.1")
    assert "Proxy-Authorization: Basic bWU6c0BjcmV0" in head, "user me, password s@cret"


async def test_https_tunnels_through_the_proxy_and_checks_the_endpoint_itself(certificate, monkeypatch):
    cert, tls = certificate
    endpoint = RawServer([reply(b"tunnelled")])
    listening = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0, ssl=tls)
    port = listening.sockets[0].getsockname()[1]
    asked = []

    async def tunnel(reader, writer):
        asked.append((await reader.readuntil(b"\r\n\r\n")).decode().splitlines()[0])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source, sink):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        answer = await post_json(f"https://localhost:{port}/v1", {"q": 2}, {}, limit=100)
    finally:
        proxy.close()
        listening.close()
    assert answer.body == b"tunnelled" and endpoint.requests == [{"q": 2}]
    assert asked == [f"CONNECT localhost:{port} HTTP/1.1"]


async def test_no_proxy_exempts_a_host(monkeypatch):
    server = RawServer([reply(b"direct")])
    async with server as url:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        assert (await post_json(url, {}, {}, limit=100)).body == b"direct"


async def test_a_reply_without_a_length_is_read_until_the_server_closes():
    body = b"x" * 500_000
    server = RawServer([b"HTTP/1.0 200 OK\r\n\r\n" + body], close_after=1)
    async with server as url:
        assert (await post_json(url, {}, {}, limit=1 << 20)).body == body
