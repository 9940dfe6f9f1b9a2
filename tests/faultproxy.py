"""A TCP proxy that a test controls: refuse, reset or stall the connections to a real server.

The proxy runs its own event loop in a daemon thread, so sync and async tests use it alike,
and a switch flipped from a test's loop never waits on that loop. Every switch returns once it
has taken effect (``drop()`` returns with the port closed)::

    with FaultProxy("127.0.0.1", server_port) as proxy:   # or: async with FaultProxy(...)
        client = httpx.Client(base_url=proxy.url)
        proxy.drop()      # new connections are refused; live ones carry on
        proxy.reset()     # every live connection is aborted with RST, on both sides
        proxy.stall()     # connections stay open, no byte moves either way
        proxy.stall(after_bytes=100)  # 100 more bytes reach the client, then stall
        proxy.restore()   # listen again on the same port; held bytes flow again

Rejected: a subprocess proxy (toxiproxy and the like) would need a binary and an HTTP control
channel; a proxy on the test's own loop would freeze whenever a sync test blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65_536
#: ``struct linger`` with l_onoff=1, l_linger=0: ``close()`` then sends RST, not FIN.
_LINGER_ZERO = struct.pack("ii", 1, 0)


class _Connection:
    """One client connection and its upstream twin."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client, self.upstream = client, upstream
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            _abort_with_rst(writer)
        for task in self.tasks:
            task.cancel()


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    writer.transport.abort()


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` until told otherwise."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host, self.target_port, self.host = target_host, target_port, host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._flowing: asyncio.Event | None = None
        #: Bytes still allowed towards the client before a stall; None: no budget.
        self._budget: int | None = None
        self.accepted = 0

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start the loop thread and listen on a free port (kept for ``restore()``)."""
        self._thread.start()
        self._call(self._start)
        return self

    def close(self) -> None:
        """Stop listening, abort every connection and stop the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> FaultProxy:
        return self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for HTTP clients."""
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """How many client connections are open now."""
        return len(self._connections)

    @property
    def stalled(self) -> bool:
        """True while no bytes are forwarded (after ``stall()``, or once its budget ran out)."""
        return self._flowing is not None and not self._flowing.is_set()

    # -- switches -----------------------------------------------------------------------------

    def drop(self) -> None:
        """Close the listening socket: new connections are refused; live ones carry on."""
        self._call(self._drop)

    def reset(self) -> None:
        """Abort every live connection with RST, towards the client and the target alike."""
        self._call(self._reset)

    def stall(self, after_bytes: int | None = None) -> None:
        """Stop forwarding in both directions, keeping connections open. With ``after_bytes``,
        first let that many more bytes through towards the client (the response direction,
        summed over connections), so a response is cut part-way."""
        self._call(self._stall, after_bytes)

    def restore(self) -> None:
        """Undo ``drop()`` (listen again on the same port) and ``stall()`` (send what was held)."""
        self._call(self._restore)

    # -- on the proxy's loop ----------------------------------------------------------------

    def _call(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    async def _drop(self) -> None:
        if self._server is not None:
            # Not wait_closed(): from Python 3.12 it waits for the live connections too.
            self._server.close()
            self._server = None

    async def _reset(self) -> None:
        for connection in list(self._connections):
            connection.abort()
        self._connections.clear()
        await asyncio.sleep(0)  # the transports close their sockets (sending RST) on this turn

    async def _stall(self, after_bytes: int | None) -> None:
        assert self._flowing is not None
        if after_bytes is None or after_bytes <= 0:
            self._budget = None
            self._flowing.clear()
        else:
            self._budget = after_bytes

    async def _restore(self) -> None:
        assert self._flowing is not None
        self._budget = None
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        await self._drop()
        await self._reset()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort_with_rst(writer)
            return
        connection = _Connection(writer, up_writer)
        self._connections.add(connection)
        connection.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, towards_client=False)),
            asyncio.create_task(self._pump(up_reader, writer, towards_client=True)),
        ]
        await asyncio.gather(*connection.tasks, return_exceptions=True)
        self._connections.discard(connection)
        for side in (writer, up_writer):
            side.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, towards_client: bool
    ) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(CHUNK):
                while data:
                    await self._flowing.wait()
                    sent = self._allowance(len(data)) if towards_client else len(data)
                    writer.write(data[:sent])
                    await writer.drain()
                    data = data[sent:]
            await self._flowing.wait()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            for connection in list(self._connections):
                if writer in (connection.client, connection.upstream):
                    connection.abort()

    def _allowance(self, wanted: int) -> int:
        """How much of ``wanted`` bytes may go to a client now; spends the stall budget."""
        if self._budget is None:
            return wanted
        sent = min(wanted, self._budget)
        self._budget -= sent
        if self._budget == 0:
            assert self._flowing is not None
            self._budget = None
            self._flowing.clear()
        return sent
