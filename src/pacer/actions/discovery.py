"""Schema discovery: which tables and columns a target has, and what may be measured on them.

Reflection uses SQLAlchemy's inspector on the target's sync engine, in a read-only
transaction under a timeout. SQLite keeps dates as TEXT, so a text column counts as a time
column when a sample of its values all read as ISO-8601 dates: that is also what makes
comparing them as text (``>= '2024-01-01'``) correct. Results are cached for a short while,
because validating a directory of metric jobs would otherwise reflect once per job.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import ReflectedColumn

from pacer.actions.statements import guard
from pacer.actions.targets import Targets
from pacer.domain.errors import InvalidInput, NotFound
from pacer.domain.metrics import ColumnInfo, TableInfo, TargetMetadata

__all__ = ["SchemaCatalog"]

#: Values read from a text column to decide whether it holds dates.
SAMPLE_SIZE = 20
#: Reflecting one target, samples included, may take this long.
DESCRIBE_TIMEOUT_S = 30.0
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMERIC_TYPES = (sqlalchemy.Integer, sqlalchemy.Numeric, sqlalchemy.Float)
_TIME_TYPES = (sqlalchemy.Date, sqlalchemy.DateTime)


class SchemaCatalog:
    """The targets' schemas as ``TargetMetadata``, each cached for ``ttl_s`` seconds."""

    def __init__(
        self,
        targets: Targets,
        ttl_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.targets = targets
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, TargetMetadata]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return self.targets.names()

    def dialect(self, name: str) -> str:
        self._check_known(name)
        return self.targets.dialect(name)

    async def describe(self, name: str) -> TargetMetadata:
        """The target's tables; ``NotFound`` for an unknown target."""
        cached = self._cached(name)
        return cached if cached is not None else await asyncio.to_thread(self.describe_sync, name)

    def describe_sync(self, name: str) -> TargetMetadata:
        """``describe`` for sync callers (``Action.validate``): blocks while it reflects."""
        self._check_known(name)
        cached = self._cached(name)
        if cached is not None:
            return cached
        metadata = _reflect(name, self.targets.dialect(name), self.targets.engine(name))
        with self._lock:
            self._cache[name] = (self._monotonic() + self.ttl_s, metadata)
        return metadata

    def refresh(self, name: str | None = None) -> None:
        """Forget what was read of ``name`` (of every target without one)."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def _cached(self, name: str) -> TargetMetadata | None:
        with self._lock:
            entry = self._cache.get(name)
        if entry is None or entry[0] <= self._monotonic():
            return None
        return entry[1]

    def _check_known(self, name: str) -> None:
        if name not in self.targets.names():
            raise NotFound("target", name)


def _reflect(name: str, dialect: str, engine: sqlalchemy.Engine) -> TargetMetadata:
    deadline = time.monotonic() + DESCRIBE_TIMEOUT_S
    try:
        with engine.connect() as conn, conn.begin(), guard(engine)(conn, True, deadline):
            inspector = sqlalchemy.inspect(conn)
            tables = tuple(
                _table(conn, table, inspector.get_columns(table))
                for table in sorted(inspector.get_table_names())
                if _is_user_table(table)
            )
    except sa_exc.SQLAlchemyError as exc:
        error = getattr(exc, "orig", None) or exc
        first_line = (str(error).strip().splitlines() or [""])[0]
        reason = f"cannot read the schema of target {name!r}: {first_line}"
        raise InvalidInput("target", reason) from exc
    return TargetMetadata(name, dialect, tables)


def _is_user_table(name: str) -> bool:
    """Pacer's own tables (when a target is also the run store) and SQLite's are not data."""
    return not name.startswith(("pacer_", "sqlite_")) and name != "alembic_version"


def _table(conn: sqlalchemy.Connection, table: str, columns: list[ReflectedColumn]) -> TableInfo:
    return TableInfo(table, tuple(_column(conn, table, column) for column in columns))


def _column(conn: sqlalchemy.Connection, table: str, column: ReflectedColumn) -> ColumnInfo:
    type_ = column["type"]
    is_time = isinstance(type_, _TIME_TYPES) or (
        isinstance(type_, sqlalchemy.String) and _holds_dates(conn, table, column["name"])
    )
    return ColumnInfo(
        name=column["name"],
        type=_type_name(type_, conn.dialect),
        nullable=bool(column.get("nullable", True)),
        numeric=isinstance(type_, _NUMERIC_TYPES),
        time=is_time,
    )


def _type_name(type_: Any, dialect: sqlalchemy.Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except sa_exc.SQLAlchemyError:  # a type SQLAlchemy reflects but cannot render
        return type(type_).__name__.upper()


def _holds_dates(conn: sqlalchemy.Connection, table: str, name: str) -> bool:
    """True when a sample of the non-null values all read as ISO dates (none: not a time
    column, there is nothing to go by). Names are quoted by the dialect, never formatted in."""
    column: sqlalchemy.ColumnClause[Any] = sqlalchemy.column(name)
    sample = (
        sqlalchemy.select(column)
        .select_from(sqlalchemy.table(table))
        .where(column.is_not(None))
        .limit(SAMPLE_SIZE)
    )
    values = conn.execute(sample).scalars().all()
    return bool(values) and all(_is_iso_time(value) for value in values)


def _is_iso_time(value: object) -> bool:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
