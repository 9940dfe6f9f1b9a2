"""The ``sql`` action: one statement on a named target, optionally posting its rows onward.

Statements run on sync engines in worker threads: the drivers are sync at heart, and the
SQLite timeout needs a progress handler on the very connection running the statement, which
the async wrappers hide. Read-only jobs are checked twice: by parsing at validation (a clear
error early) and by the database itself at execution (the parser can be fooled; it cannot).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any, cast

import sqlalchemy
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from pacer.actions.http import HttpPoster, check_url
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import is_read_only, query_id, read_only_violation, statement_kind
from pacer.domain.models import HttpSink, SqlAction
from pacer.ports import RunContext

__all__ = ["SqlActionRunner"]

#: SQLSTATE classes worth another attempt: connection (08), serialization and deadlock (40),
#: insufficient resources (53), operator intervention such as a restart (57), system (58).
_RETRYABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
#: sqlite3 raises OperationalError for syntax errors too, so only these messages are transient.
_QUOTED = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)
_RETRYABLE_SQLITE_MESSAGES = ("locked", "busy", "unable to open", "disk i/o", "out of memory")


class SqlActionRunner:
    """Executes ``sql`` actions on the configured ``Targets``."""

    kind = "sql"

    def __init__(self, targets: Targets, poster: HttpPoster | None = None) -> None:
        self.targets = targets
        self.poster = poster or HttpPoster()

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = SqlAction.model_validate(spec)
        self.targets.url(action.target)
        if action.read_only:
            found = read_only_violation(action.statement)
            if found is not None:
                reason = f"a read-only job may only run a single SELECT statement; found {found}"
                raise InvalidInput("action.statement", reason)
        if action.sink is not None:
            check_url(action.sink.url, "action.sink.url")

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        statement = spec.get("statement")
        return query_id(statement) if isinstance(statement, str) else None

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any:
        action = _parse(spec)
        try:
            engine = self.targets.engine(action.target)
        except InvalidInput as exc:
            raise ActionFailed(exc.reason, retryable=False) from exc
        clause = _text(action.statement)
        params = _bind_values(clause, ctx, engine.dialect.name)
        result = await asyncio.to_thread(_run, engine, action, clause, params)
        if action.sink is not None:
            result["sink"] = await self._post_to_sink(action.sink, result, ctx)
        return result

    async def aclose(self) -> None:
        await self.poster.aclose()

    async def _post_to_sink(
        self, sink: HttpSink, result: dict[str, Any], ctx: RunContext
    ) -> dict[str, Any]:
        """Each POST has its own stable key, so a retried run re-posts only what was missed."""
        statuses: list[int] = []
        for key, payload in _sink_payloads(sink, result, ctx.idempotency_key):
            try:
                response = await self.poster.post(
                    sink.url,
                    payload,
                    idempotency_key=key,
                    headers=sink.headers,
                    timeout_s=sink.timeout_s,
                )
            except ActionFailed as exc:
                partial = {**result, "sink": {"mode": sink.mode, "statuses": statuses}}
                raise ActionFailed(f"sink: {exc}", retryable=exc.retryable, result=partial) from exc
            statuses.append(response.status_code)
        return {"mode": sink.mode, "statuses": statuses}


def _parse(spec: Mapping[str, Any]) -> SqlAction:
    try:
        return SqlAction.model_validate(spec)
    except ValidationError as exc:
        raise ActionFailed(f"invalid sql action: {exc}", retryable=False) from exc


def _sink_payloads(sink: HttpSink, result: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    objects = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    if sink.mode == "rows":
        return [(key, objects)]
    if sink.mode == "first_row":
        return [(key, objects[0])] if objects else []
    return [(f"{key}:{index}", row) for index, row in enumerate(objects)]


def _text(statement: str) -> sqlalchemy.TextClause:
    """The statement with ``:name`` binds; colons inside quotes and comments stay text, so
    ``'{"a":1}'`` or ``'12:30'`` need no escaping by the job's author."""
    return sqlalchemy.text(_QUOTED.sub(lambda m: m.group(0).replace(":", "\\:"), statement))


def _bind_values(clause: sqlalchemy.TextClause, ctx: RunContext, dialect: str) -> dict[str, Any]:
    """The run's parameters that the statement names as ``:name``, and ``:as_of``."""
    names = set(clause.compile().params)
    values = {name: ctx.parameters[name] for name in names if name in ctx.parameters}
    if "as_of" in names:
        as_of = ctx.as_of or datetime.now(UTC).date()
        # sqlite3's implicit date adapter is deprecated; SQLite keeps dates as ISO text anyway.
        values["as_of"] = as_of.isoformat() if dialect == "sqlite" else as_of
    missing = sorted(names - values.keys())
    if missing:
        listed = ", ".join(f":{name}" for name in missing)
        raise ActionFailed(
            f"the statement needs {listed}; the run has no such parameter", retryable=False
        )
    return values


def _run(
    engine: sqlalchemy.Engine,
    action: SqlAction,
    clause: sqlalchemy.TextClause,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Runs in a worker thread: one transaction, committed unless the statement failed."""
    guard = _postgres_guard if engine.dialect.name == "postgresql" else _sqlite_guard
    deadline = time.monotonic() + action.statement_timeout_s
    try:
        with (
            engine.connect() as conn,
            conn.begin(),
            guard(conn, action.read_only, deadline),
        ):
            conn.execution_options(stream_results=_streamable(engine, action.statement))
            result = conn.execute(clause, params)
            return _collect(result, action.max_rows)
    except sa_exc.SQLAlchemyError as exc:
        raise _classify(exc, action.statement_timeout_s, deadline) from exc


def _streamable(engine: sqlalchemy.Engine, statement: str) -> bool:
    """A server-side cursor keeps ``max_rows`` from fetching a whole table into memory, but
    PostgreSQL declares one only over a plain query (and SQLite streams anyway)."""
    if engine.dialect.name != "postgresql":
        return False
    return statement_kind(statement) in ("SELECT", "VALUES") and is_read_only(statement)


@contextlib.contextmanager
def _postgres_guard(
    conn: sqlalchemy.Connection, read_only: bool, deadline: float
) -> Iterator[None]:
    """Both settings are transaction-local, so the pooled connection comes back clean."""
    if read_only:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    timeout_ms = max(1, round((deadline - time.monotonic()) * 1000))
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
    yield


@contextlib.contextmanager
def _sqlite_guard(conn: sqlalchemy.Connection, read_only: bool, deadline: float) -> Iterator[None]:
    """SQLite has no statement timeout: a progress handler aborts the statement past the
    deadline. ``query_only`` is per connection, so it is switched off again before the
    connection returns to the pool."""
    raw = cast(sqlite3.Connection, conn.connection.driver_connection)
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        if read_only:
            conn.exec_driver_sql("PRAGMA query_only = ON")
        yield
    finally:
        raw.set_progress_handler(None, 0)
        if read_only:
            raw.execute("PRAGMA query_only = OFF")


def _collect(result: sqlalchemy.CursorResult[Any], max_rows: int) -> dict[str, Any]:
    if not result.returns_rows:
        return {"columns": [], "rows": [], "row_count": max(result.rowcount, 0)}
    fetched = result.fetchmany(max_rows + 1)
    rows = [[_json_value(value) for value in row] for row in fetched[:max_rows]]
    collected: dict[str, Any] = {
        "columns": list(result.keys()),
        "rows": rows,
        "row_count": len(rows),
    }
    if len(fetched) > max_rows:
        collected["truncated"] = True
    return collected


def _json_value(value: Any) -> Any:
    """Database values as JSON: results are stored as JSON and shown by the API."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return str(value)  # UUID, network addresses, ranges: their text form is what people read


def _classify(exc: sa_exc.SQLAlchemyError, timeout_s: float, deadline: float) -> ActionFailed:
    orig = getattr(exc, "orig", None)
    if _is_timeout(orig, deadline):
        return ActionFailed(f"statement timeout after {timeout_s:g}s", retryable=True)
    error = orig if isinstance(orig, BaseException) else exc
    first_line = (str(error).strip().splitlines() or [""])[0]
    return ActionFailed(f"{type(error).__name__}: {first_line}", retryable=_is_transient(exc, orig))


def _is_timeout(orig: object, deadline: float) -> bool:
    if getattr(orig, "sqlstate", None) == "57014":
        return "statement timeout" in str(orig)
    if isinstance(orig, sqlite3.OperationalError):
        return "interrupted" in str(orig) and time.monotonic() >= deadline
    return False


def _is_transient(exc: sa_exc.SQLAlchemyError, orig: object) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _RETRYABLE_SQLSTATE_CLASSES or sqlstate == "55P03"
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        return any(marker in text for marker in _RETRYABLE_SQLITE_MESSAGES)
    # No code to go by (a refused connection, a pool timeout): treat it as passing.
    return isinstance(
        exc, sa_exc.OperationalError | sa_exc.DisconnectionError | sa_exc.TimeoutError
    )
