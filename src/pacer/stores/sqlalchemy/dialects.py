"""Per-dialect differences, kept in one place (as APScheduler's SQLAlchemy store does).

SQLite and PostgreSQL share every query except: how an engine is set up, how a batch of runs is
claimed (row locks vs SQLite's single writer), how a batch of completions is written in one round
trip, and how other processes are woken (``NOTIFY`` vs an in-process signal).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pacer.stores.sqlalchemy.onloop import begin_immediate, connector
from pacer.stores.sqlalchemy.tables import runs
from pacer.stores.sqlalchemy.writes import queue_writers

NOTIFY_CHANNEL = "pacer_runs"


@dataclass(frozen=True)
class Dialect:
    name: str
    #: PostgreSQL locks candidate rows with SKIP LOCKED; SQLite's one writer makes it unneeded.
    skip_locked: bool
    #: PostgreSQL wakes sleeping workers of other processes with NOTIFY.
    notify: bool

    def insert(self, table: Table = runs) -> Any:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        module: Any = postgresql if self.name == "postgresql" else sqlite
        return module.insert(table)


def normalize_url(url: str) -> str:
    """Accept the URLs people write and pick the async driver Pacer uses."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def masked_url(url: str) -> str:
    """``url`` fit to print or log: its password shown as ``***``. A string that does not
    parse as a URL is not echoed at all, since where a password sits in it cannot be known."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "(not a database URL)"


def sync_url(url: str) -> str:
    """The same database through a sync driver, for Alembic and the CLI's one-shot commands."""
    parsed = make_url(normalize_url(url))
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


#: The execution option ``reads`` sets: on SQLite such a connection begins a deferred
#: transaction instead of taking the write lock.
READ_ONLY = "pacer_read_only"

#: How long an SQLite writer waits for the write lock before giving up: while another process
#: holds it (``onloop.begin_immediate``), and in this process's queue of writers (``writes.py``).
SQLITE_BUSY_S = 30.0

#: A pooled connection back in use within this many seconds is not pinged first.
IDLE_PING_S = 1.0


def create_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # Driven from the event loop's thread, not aiosqlite's: see onloop.py.
        engine = create_async_engine(url, async_creator=connector(url))
        _setup_sqlite(engine)
        queue_writers(engine, SQLITE_BUSY_S)
        _ping_when_idle(engine)
        return engine, Dialect("sqlite", skip_locked=False, notify=False)
    engine = create_async_engine(url, pool_size=5, max_overflow=5)
    _ping_when_idle(engine)
    return engine, Dialect("postgresql", skip_locked=True, notify=True)


def reads(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for read-only work (the same pool): the stores' ``connect()`` calls, which
    never commit. On SQLite their transactions do not take the write lock (see
    ``_setup_sqlite``); on PostgreSQL nothing changes."""
    return engine.execution_options(**{READ_ONLY: True})


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only if it sat idle in the pool for a while.

    ``pool_pre_ping`` pings on every checkout: a round trip before each transaction, a fifth
    of an idle worker's claim (0.57 ms of 2.4 ms with the pool's own work). A connection
    reused within ``IDLE_PING_S`` was working a moment ago; one that breaks anyway (the server
    restarted in that second) fails like a connection dropped mid-transaction, which store
    calls already retry (``transient``). A failed ping makes the pool replace the connection,
    as ``pool_pre_ping`` does (SQLAlchemy's documented custom pessimistic check).
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < IDLE_PING_S:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"ping failed: {exc}") from exc


def _setup_sqlite(engine: AsyncEngine) -> None:
    """WAL lets readers run beside the writer; FULL sync makes every commit durable.

    ``BEGIN IMMEDIATE`` takes the write lock at the start of each writing transaction, so two
    processes never both read then both try to upgrade to writing (SQLite's classic busy
    deadlock). Read-only connections (``reads``) begin deferred: in WAL mode a reader never
    waits for the writer. They once took the write lock too, so under load a read waited for
    every queued writer's fsync and SQLite's busy handler, which sleeps up to 100 ms between
    tries: the event stream served runs up to 1.2 s after they were queued, too late for the
    pacer to delay them (``tests/e2e/test_up_pace.py`` failed a third of its runs).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Opened in autocommit mode, with a short busy timeout for reads (onloop.connector):
        # the write lock is waited for by ``begin_immediate``, without stopping the loop.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
        else:
            begin_immediate(conn.connection.driver_connection, SQLITE_BUSY_S)
