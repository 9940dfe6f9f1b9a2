"""The fault proxy's switches, each against a tiny real server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from faultproxy import FaultProxy

BODY = b"x" * 2000
#: How long a read waits for bytes that must not come: it bounds the test, it measures nothing.
SILENCE_S = 0.3


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionResetError):  # what reset() is for
            while data := self.request.recv(4096):
                self.request.sendall(data)


class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_proxy() -> Iterator[FaultProxy]:
    """A proxy in front of a threaded echo server."""
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1]) as proxy:
        yield proxy
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_proxy() -> Iterator[FaultProxy]:
    """A proxy in front of an HTTP server answering every GET with 2,000 bytes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1]) as proxy:
        yield proxy
    server.shutdown()
    server.server_close()


def connect(proxy: FaultProxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    return client


def receive(client: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count and (chunk := client.recv(count - len(data))):
        data += chunk
    return data


def test_forwards_bytes_both_ways(echo_proxy: FaultProxy) -> None:
    """With no switch flipped, the proxy is transparent."""
    with connect(echo_proxy) as client:
        client.sendall(b"hello")
        assert b"hello" == receive(client, 5)


def test_drop_refuses_new_connections_until_restore_reopens_the_same_port(
    echo_proxy: FaultProxy,
) -> None:
    """drop(): connecting is refused; restore(): the same port accepts and forwards again."""
    port = echo_proxy.port
    echo_proxy.drop()
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy)
    echo_proxy.restore()
    with connect(echo_proxy) as client:
        client.sendall(b"back")
        assert (port, b"back") == (echo_proxy.port, receive(client, 4))


def test_drop_keeps_live_connections(echo_proxy: FaultProxy) -> None:
    """drop() closes only the listener: a connection made before it still carries bytes."""
    with connect(echo_proxy) as client:
        client.sendall(b"one")
        receive(client, 3)
        echo_proxy.drop()
        client.sendall(b"two")
        assert b"two" == receive(client, 3)


def test_reset_aborts_live_connections_with_rst(echo_proxy: FaultProxy) -> None:
    """reset(): a client blocked on a read gets ConnectionResetError, not a clean EOF."""
    with connect(echo_proxy) as client:
        client.sendall(b"ping")
        receive(client, 4)
        echo_proxy.reset()
        with pytest.raises(ConnectionResetError):
            client.recv(10)
    assert 0 == echo_proxy.connections


def test_reset_leaves_the_listener_open(echo_proxy: FaultProxy) -> None:
    """After reset() new connections work without restore()."""
    with connect(echo_proxy) as first:
        first.sendall(b"a")
        receive(first, 1)
        echo_proxy.reset()
    with connect(echo_proxy) as client:
        client.sendall(b"after")
        assert b"after" == receive(client, 5)


def test_stall_holds_bytes_until_restore(echo_proxy: FaultProxy) -> None:
    """stall(): the connection stays open but a read times out; restore() delivers the bytes."""
    with connect(echo_proxy) as client:
        echo_proxy.stall()
        client.sendall(b"held")
        client.settimeout(SILENCE_S)
        with pytest.raises(TimeoutError):
            client.recv(10)
        assert echo_proxy.stalled
        client.settimeout(10)
        echo_proxy.restore()
        assert b"held" == receive(client, 4)


def test_stall_after_bytes_cuts_a_response_part_way(http_proxy: FaultProxy) -> None:
    """stall(after_bytes=n): exactly n bytes of the response arrive, then nothing until restore."""
    with connect(http_proxy) as client:
        http_proxy.stall(after_bytes=100)
        client.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        head = receive(client, 100)
        client.settimeout(SILENCE_S)
        with pytest.raises(TimeoutError):
            client.recv(10)
        client.settimeout(10)
        http_proxy.restore()
        rest = receive(client, 100_000)
    response = head + rest
    assert (100, BODY) == (len(head), response.split(b"\r\n\r\n", 1)[1])


async def test_switches_from_an_async_test(http_proxy: FaultProxy) -> None:
    """From async code: connect error while dropped, read timeout while stalled, 200 after."""
    async with httpx.AsyncClient(base_url=http_proxy.url, timeout=SILENCE_S) as client:
        assert 200 == (await client.get("/")).status_code
        http_proxy.drop()
        with pytest.raises(httpx.ConnectError):
            await client.get("/")
        http_proxy.restore()
        http_proxy.stall(after_bytes=20)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/")
        http_proxy.restore()
        response = await client.get("/")
    assert (200, BODY) == (response.status_code, response.content)


async def test_async_context_manager_closes_the_port() -> None:
    """Leaving ``async with FaultProxy(...)`` stops listening."""
    async with FaultProxy("127.0.0.1", 9) as proxy:
        port = proxy.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10)
