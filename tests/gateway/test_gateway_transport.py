"""The gateway's lean HTTP/1.1 transport against scripted loopback servers: framing, reuse and failures."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from modelshift.gateway.transport import StreamTransport

Reply = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def _serve(reply: Reply) -> tuple[asyncio.Server, str, list[bytes]]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                seen.append(request)
                if not await reply(len(seen), request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


def _ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


def _run(reply: Reply, calls: int, *, timeout: float = 5.0) -> tuple[list[httpx.Response], list[bytes], int]:
    async def go() -> tuple[list[httpx.Response], list[bytes], int]:
        server, url, seen = await _serve(reply)
        transport = StreamTransport()
        responses = []
        try:
            async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
                for i in range(calls):
                    responses.append(await client.post(f"{url}/chat?api-version=1", json={"i": i}))
        finally:
            server.close()
        return responses, seen, transport.opened

    return asyncio.run(go())


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_httpx_built_it() -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok(b'{"n":%d}' % n, b"x-ratelimit-remaining-requests: 9\r\n"))
        return True

    responses, seen, opened = _run(reply, 3)
    assert [r.json() for r in responses] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert responses[0].headers["x-ratelimit-remaining-requests"] == "9"
    assert opened == 1
    assert seen[0].startswith(b"POST /chat?api-version=1 HTTP/1.1\r\n")
    assert seen[0].split(b"\r\n\r\n", 1)[1] in (b'{"i":0}', b'{"i": 0}')
    assert b"content-length:" in seen[0].lower()


@pytest.mark.parametrize(
    ("raw", "expected", "reused"),
    [
        # chunked, with an extension and a trailer
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b'4;x=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nt: v\r\n\r\n',
            {"a": 1},
            True,
        ),
        # Connection: close -> a new connection next time
        (_ok(b'{"a":2}', b"connection: close\r\n"), {"a": 2}, False),
    ],
)
def test_body_framing(raw: bytes, expected: dict[str, int], reused: bool) -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        return b"connection: close" not in raw

    responses, _, opened = _run(reply, 2)
    assert [r.json() for r in responses] == [expected, expected]
    assert opened == (1 if reused else 2)


def test_body_until_close_when_there_is_no_length() -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"a":3}')
        return False  # close: that ends the body

    responses, _, opened = _run(reply, 2)
    assert [r.json() for r in responses] == [{"a": 3}, {"a": 3}]
    assert opened == 2


def test_an_idle_connection_the_server_closed_is_replaced_transparently() -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())  # keep-alive promised, then the server drops the connection anyway
        return False

    async def go() -> tuple[list[int], int]:
        server, url, _ = await _serve(reply)
        transport = StreamTransport()
        try:
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                first = await client.post(f"{url}/chat", json={})
                await asyncio.sleep(0.05)  # let the close arrive
                second = await client.post(f"{url}/chat", json={})
        finally:
            server.close()
        return [first.status_code, second.status_code], transport.opened

    statuses, opened = asyncio.run(go())
    assert statuses == [200, 200] and opened == 2


def test_status_and_error_bodies_pass_through() -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        body = b'{"error":{"code":"429","message":"slow down"}}'
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after-ms: 1500\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        return True

    responses, _, _ = _run(reply, 1)
    assert responses[0].status_code == 429
    assert responses[0].headers["retry-after-ms"] == "1500"
    assert responses[0].json()["error"]["message"] == "slow down"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"garbage\r\n\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", httpx.RemoteProtocolError),
        (b"", httpx.RemoteProtocolError),  # closed without a response on a fresh connection
    ],
)
def test_malformed_responses_raise_httpx_errors(raw: bytes, error: type[Exception]) -> None:
    async def reply(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        return False

    with pytest.raises(error):
        _run(reply, 1)


def test_read_timeout_and_refused_connection() -> None:
    async def silent(n: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(2)
        return False

    with pytest.raises(httpx.ReadTimeout):
        _run(silent, 1, timeout=0.2)

    async def refused() -> None:
        server, url, _ = await _serve(silent)
        server.close()
        await server.wait_closed()
        async with httpx.AsyncClient(transport=StreamTransport(), timeout=2) as client:
            await client.post(f"{url}/chat", json={})

    with pytest.raises(httpx.ConnectError):
        asyncio.run(refused())


def test_unsupported_scheme() -> None:
    async def go() -> None:
        transport = StreamTransport()
        await transport.handle_async_request(httpx.Request("GET", "ftp://example.invalid/x"))

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(go())


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_with_a_trusted_certificate_and_refusal_of_an_untrusted_one(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await _read_request(reader):
                writer.write(_ok(b'{"tls":true}'))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def go() -> tuple[list[dict[str, bool]], int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        trusted = StreamTransport(ssl_context=ssl.create_default_context(cafile=str(cert)))
        try:
            async with httpx.AsyncClient(transport=trusted, timeout=5) as client:
                bodies = [(await client.post(f"{url}/chat", json={})).json() for _ in range(2)]
            async with httpx.AsyncClient(transport=StreamTransport(), timeout=5) as client:
                with pytest.raises(httpx.ConnectError, match="certificate"):
                    await client.post(f"{url}/chat", json={})
        finally:
            server.close()
        return bodies, trusted.opened

    bodies, opened = asyncio.run(go())
    assert bodies == [{"tls": True}, {"tls": True}] and opened == 1
