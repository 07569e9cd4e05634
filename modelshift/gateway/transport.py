"""A lean HTTP/1.1 keep-alive transport for the gateway's calls to model endpoints.

httpx's default transport (httpcore over anyio) costs about 0.6 ms of CPU per request on a 2-core machine,
most of it in connection-pool bookkeeping, which is more than the rest of the gateway together. This
transport plugs into the same ``httpx.AsyncClient`` (so the platform adapters, their auth, retries and
error translation are unchanged) and speaks plain HTTP/1.1 over asyncio streams: one request per
connection at a time, idle connections kept per origin for reuse, TLS for ``https``, ``Content-Length``,
chunked and read-to-close bodies. It does not do proxies or HTTP/2; use httpx's own transport for those
(``modelshift gateway serve --httpx-transport``).

Failures are raised as httpx exceptions (ConnectError, ConnectTimeout, ReadTimeout, RemoteProtocolError,
...), which the adapters already translate into the project's exception tree.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict

import httpx

#: idle connections kept per origin (scheme, host, port); more are closed when they come back
MAX_IDLE_PER_ORIGIN = 32
#: a response head larger than this is refused (no model endpoint sends one)
MAX_HEAD_BYTES = 64 * 1024

Origin = tuple[str, str, int]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _StaleConnection(Exception):
    """A reused idle connection was closed by the server before it answered: retry on a fresh one."""


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return timeout.get("connect"), timeout.get("read")


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a keep-alive pool per origin (see the module docstring)."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN
    ) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[Connection]] = defaultdict(list)
        #: connections opened (tests assert reuse)
        self.opened = 0

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, origin: Origin, timeout: float | None) -> Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                connection = await asyncio.open_connection(
                    host, port, ssl=self._ssl_context() if scheme == "https" else None, limit=MAX_HEAD_BYTES
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out after {timeout}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        self.opened += 1
        return connection

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole response (model answers are small JSON bodies)."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} URLs are not supported by the gateway transport")
        origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = await request.aread()
        head = bytearray(f"{request.method} ".encode() + url.raw_path + b" HTTP/1.1\r\n")
        for name, value in request.headers.raw:
            head += name + b": " + value + b"\r\n"
        if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
            head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        head += b"\r\n"
        payload = bytes(head) + body
        connect_timeout, read_timeout = _timeouts(request)
        pool = self._idle[origin]
        while pool:
            connection = pool.pop()
            if connection[1].is_closing() or connection[0].at_eof():
                connection[1].close()
                continue
            try:
                return await self._exchange(request, origin, connection, payload, read_timeout, reused=True)
            except _StaleConnection:
                continue
        connection = await self._connect(origin, connect_timeout)
        return await self._exchange(request, origin, connection, payload, read_timeout, reused=False)

    async def _exchange(
        self,
        request: httpx.Request,
        origin: Origin,
        connection: Connection,
        payload: bytes,
        read_timeout: float | None,
        *,
        reused: bool,
    ) -> httpx.Response:
        reader, writer = connection
        try:
            async with asyncio.timeout(read_timeout):
                writer.write(payload)
                status_line = await reader.readline()
                if not status_line:
                    raise (
                        _StaleConnection()
                        if reused
                        else httpx.RemoteProtocolError(
                            f"{origin[1]}:{origin[2]} closed the connection without a response"
                        )
                    )
                status, reason = _status(status_line)
                headers = await _headers(reader)
                content, keep = await _body(reader, headers, request.method, status)
        except _StaleConnection:
            writer.close()
            raise
        except TimeoutError:
            writer.close()
            raise httpx.ReadTimeout(
                f"no response from {origin[1]}:{origin[2]} within {read_timeout}s"
            ) from None
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            if reused and isinstance(exc, ConnectionError):
                raise _StaleConnection() from exc
            raise httpx.RemoteProtocolError(f"bad response from {origin[1]}:{origin[2]}: {exc}") from exc
        pool = self._idle[origin]
        if keep and len(pool) < self._max_idle:
            pool.append(connection)
        else:
            writer.close()
        return httpx.Response(
            status,
            headers=headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        """Close every idle connection."""
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
            pool.clear()


def _status(line: bytes) -> tuple[int, bytes]:
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(parts[1]), parts[2] if len(parts) > 2 else b""


async def _headers(reader: asyncio.StreamReader) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    size = 0
    while True:
        line = await reader.readline()
        size += len(line)
        if size > MAX_HEAD_BYTES:
            raise ValueError(f"response head larger than {MAX_HEAD_BYTES} bytes")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ValueError("connection closed inside the response head")
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _body(
    reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]], method: str, status: int
) -> tuple[bytes, bool]:
    """The body and whether the connection can be reused."""
    keep = (_header(headers, b"connection") or b"").lower() != b"close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", keep
    encoding = (_header(headers, b"transfer-encoding") or b"").lower()
    if b"chunked" in encoding:
        return await _chunked(reader), keep
    length = _header(headers, b"content-length")
    if length is not None:
        return await reader.readexactly(int(length)), keep
    return await reader.read(), False  # no length: the body ends when the server closes


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
