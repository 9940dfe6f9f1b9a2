"""Pacer's own SQLite file, driven from the event loop's thread instead of aiosqlite's.

aiosqlite runs every call (each statement, each fetch, each cursor close, ``BEGIN``, the
commit, the pool's reset) on a thread of its own and hands the result back through the event
loop. A one-statement write transaction made about 12 such trips, and each waited its turn on
a loop that in ``pacer up`` also serves the API, the event stream, the worker, the sampler
and the embedded pacer. Since a write transaction holds the process's one SQLite write turn
(``writes.py``) across all of them, the turn was held 7-20 ms for 0.34 ms of fsync, was
about 85 % busy in the pacing surge, and the pacer's delays reached their runs late
(BENCHMARKS.md, "The embedded pacer's delays").

Here the calls run in place, except the commit: a transaction is one stretch of loop time
(as long as its statements take, and never interleaved with another task) and one trip to a
thread for the commit's fsync, which would otherwise stop the whole process for the disk's
time (``LoopConnection.commit``). What that costs is the parallelism of SQLite's own CPU work
on aiosqlite's thread beside the loop's Python: a large page of the log, or a batch of a
thousand inserts, now holds up the loop for its time.

The loop never waits long for a *lock*. ``BEGIN IMMEDIATE`` runs with no busy timeout, and
one that finds another process writing (a ``pacer worker`` or a CLI command on the same file)
is retried after an ``asyncio.sleep`` (``begin_immediate``), so the loop serves others while
the other process writes. In WAL mode readers do not wait for the writer; for SQLite's rare
cases where a reader is briefly refused (another connection's recovery of the WAL index, or
its checkpoint on last close) connections keep a short busy timeout, ``READ_BUSY_MS``.

*Rejected:* SQLAlchemy's sync engine run whole per transaction in a thread
(``asyncio.to_thread``), which would need every store call's transaction rewritten as a
closure; and aiosqlite for reads with in-place writes (two pools for one file, for reads that
already run beside the writer).

User databases reached by SQL actions (``actions/targets.py``) keep aiosqlite: their queries
are the user's and may run for minutes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent import futures
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.util import await_

#: The busy timeout outside ``BEGIN IMMEDIATE``: how long a read may stop the loop in SQLite's
#: rare busy cases before it fails with ``OperationalError`` (store calls retry those).
READ_BUSY_MS = 100

#: Sleeps between tries of ``BEGIN IMMEDIATE`` while another process holds the write lock:
#: short at first (a transaction is usually done within a few ms), then steady.
_BUSY_SLEEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02)


#: Where commits wait for their fsync. In-process writers take turns (``writes.py``), so one
#: thread would do for one database; a few let several stores' commits overlap.
_COMMITS = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="pacer-sqlite-commit")


class LoopCursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> LoopCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> LoopCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> LoopCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class LoopConnection:
    """An aiosqlite-shaped connection (the part SQLAlchemy's aiosqlite dialect uses) over a
    ``sqlite3`` connection used on the event loop's thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """What the dialect checks before a commit or rollback: ``None`` once closed."""
        return self._conn

    @property
    def raw(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    def cursor(self) -> LoopCursor:
        return LoopCursor(self.raw.cursor())

    async def commit(self) -> None:
        """The one call that waits for the disk (the fsync), so it runs on a thread and the
        loop serves others meanwhile. Measured: on the loop, every commit stopped the whole
        process for the fsync's time, 1-13 ms with neighbours writing to the same disk.

        If the awaiting task is cancelled mid-commit, the commit is waited for here, on the
        loop, before the cancellation goes on: a ``sqlite3`` connection must not be used by
        two threads at once, and the caller's rollback would otherwise race the commit."""
        committing = _COMMITS.submit(self._commit_or_roll_back)
        try:
            await asyncio.wrap_future(committing)
        except asyncio.CancelledError:
            futures.wait([committing])
            raise

    def _commit_or_roll_back(self) -> None:
        """A ``COMMIT`` that fails (a deferred constraint, a full disk) leaves SQLite's
        transaction open, while SQLAlchemy counts it as ended and returns the connection to
        the pool without its usual rollback: the next user of the connection would find a
        transaction already open. So a failed commit is rolled back here."""
        raw = self.raw
        try:
            raw.commit()
        except BaseException:
            if raw.in_transaction:
                raw.rollback()
            raise

    async def rollback(self) -> None:
        self.raw.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def connector(url: str) -> Callable[[], Coroutine[Any, Any, LoopConnection]]:
    """``create_async_engine``'s ``async_creator`` for ``url``: its file opened in place, in
    autocommit mode (``BEGIN`` is emitted by ``dialects._setup_sqlite``) and with a short busy
    timeout (see the module's docstring)."""
    args, options = SQLiteDialect_pysqlite().create_connect_args(make_url(url))
    (database,) = args
    uri = bool(options.get("uri", False))

    async def connect() -> LoopConnection:
        conn = sqlite3.connect(
            database,
            timeout=READ_BUSY_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
        return LoopConnection(conn)

    return connect


def begin_immediate(conn: LoopConnection, wait_s: float) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock with ``asyncio.sleep``
    (through SQLAlchemy's greenlet bridge: this runs inside an ``AsyncConnection`` call) so
    that the loop serves others meanwhile. Gives up as SQLite's busy timeout would."""
    raw = conn.raw
    deadline = time.monotonic() + wait_s
    tries = 0
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            await_(asyncio.sleep(_BUSY_SLEEPS_S[min(tries, len(_BUSY_SLEEPS_S) - 1)]))
            tries += 1
    finally:
        raw.execute(f"PRAGMA busy_timeout = {READ_BUSY_MS}")
