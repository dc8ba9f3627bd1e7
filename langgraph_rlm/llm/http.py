"""JSON POSTs over HTTP/1.1 on asyncio's own streams, with a keep-alive pool per event loop and
the proxy the environment names.

A model endpoint needs nothing more. aiohttp did this well, but importing it took a tenth of a
short question's whole run; asyncio, ssl and json are loaded anyway, and a request here costs the
host less time than aiohttp's did.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

HEADER_BYTES = 64 << 10
IDLE_PER_HOST = 128

Address = tuple[str, str, int]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Pool = dict[Address, list[Connection]]


class HTTPError(Exception):
    """The endpoint broke the protocol (a refused or dropped connection is a ConnectionError)."""


class ReplyTooLarge(HTTPError):
    pass


class EmptyReply(HTTPError):
    """The server closed the connection before answering (a kept-alive one it had timed out)."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes


async def post_json(
    url: str,
    payload: Any,
    headers: dict[str, str],
    *,
    limit: int,
    timeout: float = 600.0,
    connect_timeout: float = 10.0,
) -> Reply:
    """POSTs `payload` as JSON; a reply body over `limit` bytes raises ReplyTooLarge. When a
    kept-alive connection turns out closed before any reply (the server timed it out), the request
    goes again on another: the server never read it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPError(f"not an http(s) URL: {url}")
    address = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    proxy = proxy_for(parts.scheme, parts.hostname)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if proxy and parts.scheme == "http":
        target = f"http://{parts.netloc}{target}"
        headers = {**headers, **proxy.authorization}
    body = json.dumps(payload).encode()
    head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    head += [f"Content-Length: {len(body)}", "Accept-Encoding: identity"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    async with asyncio.timeout(timeout):
        pool = await _pool()
        while True:
            connection = _take(pool, address)
            reused = connection is not None
            connection = connection or await _connect(address, proxy, connect_timeout)
            try:
                reply, keep = await _exchange(connection, request, limit)
            except BaseException as exc:
                _close(connection)
                if reused and isinstance(exc, EmptyReply):
                    continue
                raise
            _give_back(pool, address, connection) if keep else _close(connection)
            return reply


async def _exchange(connection: Connection, request: bytes, limit: int) -> tuple[Reply, bool]:
    reader, writer = connection
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
    except ConnectionError as exc:
        raise EmptyReply(f"the connection broke before a reply: {exc}") from None
    if not status_line:
        raise EmptyReply("the server closed the connection without a reply")
    try:
        version, status_text = status_line.decode("latin-1").split(None, 2)[:2]
        status = int(status_text)
    except ValueError:
        raise HTTPError(f"not an HTTP reply: {status_line[:80]!r}") from None
    headers = await _headers(reader)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    if chunked:
        body = await _chunked(reader, limit)
    elif length is not None:
        if not length.isdigit():
            raise HTTPError(f"a bad Content-Length: {length[:40]!r}")
        _check_size(int(length), limit)
        body = await reader.readexactly(int(length))
    else:
        body = await _until_closed(reader, limit)
    closes = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return Reply(status, headers, body), (chunked or length is not None) and not closes


async def _until_closed(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A body without a length ends when the server closes the connection."""
    body = bytearray()
    while piece := await reader.read(1 << 16):
        body += piece
        _check_size(len(body), limit)
    return bytes(body)


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise ReplyTooLarge(f"the reply passed {limit >> 20} MiB")


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    size = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        size += len(line)
        if size > HEADER_BYTES:
            raise HTTPError("the reply's headers passed 64 KiB")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


async def _chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readline()).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HTTPError(f"a bad chunk size: {size_line[:20]!r}") from None
        if size == 0:
            await _headers(reader)
            return bytes(body)
        _check_size(len(body) + size, limit)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


# --- the pool ---------------------------------------------------------------------------------

_idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
    weakref.WeakKeyDictionary()
)


@cache
def _tls() -> ssl.SSLContext:
    """Loading the certificate store takes a while, so only an https endpoint pays for it."""
    return ssl.create_default_context()


async def _connect(address: Address, proxy: Proxy | None, seconds: float) -> Connection:
    scheme, host, port = address
    via = proxy.host if proxy else host
    try:
        async with asyncio.timeout(seconds):
            if proxy is None:
                return await asyncio.open_connection(host, port, ssl=_tls() if scheme == "https" else None)
            connection = await asyncio.open_connection(proxy.host, proxy.port)
            if scheme == "https":
                await _tunnel(connection, host, port, proxy)
            return connection
    except TimeoutError:
        raise ConnectionError(f"connecting to {via} took over {seconds:g} s") from None
    except (ConnectionError, ssl.SSLError):
        raise
    except OSError as exc:
        raise ConnectionError(f"cannot connect to {via}: {exc.strerror or exc}") from None


@dataclass
class Proxy:
    host: str
    port: int
    authorization: dict[str, str]


def proxy_for(scheme: str, host: str) -> Proxy | None:
    """The proxy the environment names for this scheme (HTTP_PROXY, HTTPS_PROXY; NO_PROXY
    exempts hosts), as curl and the litellm path use it; an http:// proxy only."""
    proxies = getproxies_environment()
    named = proxies.get(scheme)
    if not named or proxy_bypass_environment(host, proxies):
        return None
    parts = urlsplit(named if "://" in named else f"http://{named}")
    if parts.scheme != "http" or not parts.hostname:
        raise HTTPError(f"{scheme}_proxy={named!r}: only an http:// proxy is supported")
    authorization = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return Proxy(parts.hostname, parts.port or 80, authorization)


async def _tunnel(connection: Connection, host: str, port: int, proxy: Proxy) -> None:
    """CONNECT through the proxy, then TLS with the endpoint itself over the tunnel."""
    reader, writer = connection
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in proxy.authorization.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = (await reader.readline()).split(None, 2)
    await _headers(reader)
    if len(status) < 2 or status[1] != b"200":
        writer.close()
        said = b" ".join(status[1:]).decode("latin-1").strip() or "no reply"
        raise ConnectionError(f"the proxy {proxy.host}:{proxy.port} refused the tunnel to {host}: {said}")
    await writer.start_tls(_tls(), server_hostname=host)


def _take(pool: Pool, address: Address) -> Connection | None:
    idle = pool.get(address, [])
    while idle:
        connection = idle.pop()
        if not connection[0].at_eof() and not connection[1].is_closing():
            return connection
        _close(connection)
    return None


def _give_back(pool: Pool, address: Address, connection: Connection) -> None:
    idle = pool.setdefault(address, [])
    if len(idle) < IDLE_PER_HOST:
        idle.append(connection)
    else:
        _close(connection)


def _close(connection: Connection) -> None:
    connection[1].close()


async def _pool() -> Pool:
    """An async generator holds each loop's pool, so the loop's shutdown (`asyncio.run` ends with
    one) closes its connections."""
    loop = asyncio.get_running_loop()
    if loop not in _idle:
        _idle[loop] = pool = {}
        _keepers[loop] = keeper = _keep(pool)
        await keeper.__anext__()
    return _idle[loop]


async def _keep(pool: Pool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for idle in pool.values():
            for connection in idle:
                _close(connection)
        pool.clear()
