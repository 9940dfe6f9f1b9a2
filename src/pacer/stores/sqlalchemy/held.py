"""The autocommit connection PostgreSQL's one-statement calls keep between calls.

An enqueue or an idle worker's claim is one statement (``onetrip``), so what SQLAlchemy's pool
does around it is a large share of its cost: checking a connection out (a greenlet switch,
the checkout events, switching it to autocommit) and back in (resetting the isolation level,
the reset-on-return rollback) measured about 0.5 ms of a 2.3 ms enqueue with jobs arriving
20 ms apart, against 1.8 ms on a connection kept checked out. For an idle worker's claim it
was more: the pool hands connections out in FIFO order, so a poll every half second got one
idle for over a second, which the idle ping then pinged (claim 2.6-3.1 -> 1.7-2.0 ms p50,
traced side by side). So these calls keep one pooled connection checked out while in use.

The rules keep it as safe as the pool:

- One statement at a time: a call that finds it busy takes a connection from the pool as
  before, so concurrent calls never queue behind each other.
- A connection unused for ``dialects.IDLE_PING_S`` goes back to the pool, whose checkout pings a
  connection that sat idle that long; a busy one is trusted as any pooled connection reused
  within that time is (``dialects._ping_when_idle``).
- Any error or cancellation during a statement invalidates it (its state is unknown), so the
  next call starts on a fresh connection and the store's ``transient`` retry does the rest.

*Rejected:* a raw psycopg connection with prepared statements, which would save another
0.3 ms but needs its own row decoding and retry classification beside SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pacer.stores.sqlalchemy import dialects


class HeldConnection:
    """One connection of ``engine`` (an autocommit engine) kept checked out between uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._used_at = 0.0
        self._busy = False

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """The held connection if it is free, otherwise one from the pool for this call."""
        if self._busy:
            async with self._engine.connect() as conn:
                yield conn
            return
        self._busy = True
        try:
            conn = await self._take()
            try:
                yield conn
            except BaseException:
                self._conn = None
                await asyncio.shield(_discard(conn))
                raise
            self._used_at = time.monotonic()
        finally:
            self._busy = False

    async def _take(self) -> AsyncConnection:
        conn = self._conn
        if conn is not None and time.monotonic() - self._used_at >= dialects.IDLE_PING_S:
            # Idle long enough to be worth a ping: back to the pool, whose checkout does it.
            self._conn = None
            try:
                await conn.close()
            except Exception:  # dead already: the pool replaces it
                await _discard(conn)
            conn = None
        if conn is None:
            conn = self._conn = await self._engine.connect()
        return conn

    async def close(self) -> None:
        """Return the connection to the pool (before the engine is disposed)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


async def _discard(conn: AsyncConnection) -> None:
    """Invalidate a connection whose state a failed or cancelled statement left unknown."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception:  # thrown away; the original error is what matters
        pass
