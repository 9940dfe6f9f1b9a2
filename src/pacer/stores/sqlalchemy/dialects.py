"""Per-dialect differences, kept in one place (as APScheduler's SQLAlchemy store does).

SQLite and PostgreSQL share every query except: how an engine is set up, how a batch of runs is
claimed (row locks vs SQLite's single writer), how a batch of completions is written in one round
trip, and how other processes are woken (``NOTIFY`` vs an in-process signal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pacer.stores.sqlalchemy.tables import runs

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


def sync_url(url: str) -> str:
    """The same database through a sync driver, for Alembic and the CLI's one-shot commands."""
    parsed = make_url(normalize_url(url))
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": 30})
        _setup_sqlite(engine)
        return engine, Dialect("sqlite", skip_locked=False, notify=False)
    engine = create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return engine, Dialect("postgresql", skip_locked=True, notify=True)


def _setup_sqlite(engine: AsyncEngine) -> None:
    """WAL lets readers run beside the writer; FULL sync makes every commit durable.

    ``BEGIN IMMEDIATE`` takes the write lock at the start of each transaction, so two processes
    never both read then both try to upgrade to writing (SQLite's classic busy deadlock).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
