"""Running one statement on a target, and posting its rows: shared by ``sql`` and ``metric``.

Statements run on sync engines in worker threads: the drivers are sync at heart, and the
SQLite timeout needs a progress handler on the very connection running the statement, which
the async wrappers hide. Read-only runs are enforced by the database itself (a read-only
transaction, ``query_only``), whatever was checked at validation.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any, cast

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.base import Executable

from pacer.actions.http import HttpPoster
from pacer.domain.errors import ActionFailed
from pacer.domain.models import HttpSink

__all__ = ["guard", "json_value", "post_to_sink", "run_statement", "sink_url"]

#: SQLSTATE classes worth another attempt: connection (08), serialization and deadlock (40),
#: insufficient resources (53), operator intervention such as a restart (57), system (58).
_RETRYABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
#: sqlite3 raises OperationalError for syntax errors too, so only these messages are transient.
_RETRYABLE_SQLITE_MESSAGES = ("locked", "busy", "unable to open", "disk i/o", "out of memory")

Guard = Callable[[sqlalchemy.Connection, bool, float], contextlib.AbstractContextManager[None]]


def run_statement(
    engine: sqlalchemy.Engine,
    statement: Executable,
    params: Mapping[str, Any],
    *,
    read_only: bool,
    timeout_s: float,
    max_rows: int,
    stream: bool = False,
) -> dict[str, Any]:
    """Runs in a worker thread: one transaction, committed unless the statement failed.
    ``stream`` asks for a server-side cursor, so ``max_rows`` does not fetch a whole table."""
    deadline = time.monotonic() + timeout_s
    try:
        with (
            engine.connect() as conn,
            conn.begin(),
            guard(engine)(conn, read_only, deadline),
        ):
            conn.execution_options(stream_results=stream)
            result = conn.execute(statement, dict(params))
            return _collect(result, max_rows)
    except sa_exc.SQLAlchemyError as exc:
        raise _classify(exc, timeout_s, deadline) from exc


def guard(engine: sqlalchemy.Engine) -> Guard:
    """The read-only and timeout guard of the engine's backend."""
    return _postgres_guard if engine.dialect.name == "postgresql" else _sqlite_guard


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
    rows = [[json_value(value) for value in row] for row in fetched[:max_rows]]
    collected: dict[str, Any] = {
        "columns": list(result.keys()),
        "rows": rows,
        "row_count": len(rows),
    }
    if len(fetched) > max_rows:
        collected["truncated"] = True
    return collected


def json_value(value: Any) -> Any:
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
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
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


# -- sinks --------------------------------------------------------------------------------------


def sink_url(sink: HttpSink, base_url: str | None) -> str:
    """A sink given as a path (``/result``) posts to this server's own API; resolved at
    execution, so one job definition works wherever the server runs."""
    if not sink.url.startswith("/"):
        return sink.url
    if base_url is None:
        reason = f"the sink {sink.url!r} is a path, but no base URL is configured"
        raise ActionFailed(reason, retryable=False)
    return base_url.rstrip("/") + sink.url


async def post_to_sink(
    poster: HttpPoster,
    sink: HttpSink,
    base_url: str | None,
    result: dict[str, Any],
    key: str,
) -> dict[str, Any]:
    """Each POST has its own stable key, so a retried run re-posts only what was missed.
    A sink given as a path is resolved against ``base_url`` here, for every action kind."""
    url = sink_url(sink, base_url)
    statuses: list[int] = []
    for payload_key, payload in _sink_payloads(sink, result, key):
        try:
            response = await poster.post(
                url,
                payload,
                idempotency_key=payload_key,
                headers=sink.headers,
                timeout_s=sink.timeout_s,
            )
        except ActionFailed as exc:
            partial = {**result, "sink": {"mode": sink.mode, "statuses": statuses}}
            raise ActionFailed(f"sink: {exc}", retryable=exc.retryable, result=partial) from exc
        statuses.append(response.status_code)
    return {"mode": sink.mode, "statuses": statuses}


def _sink_payloads(sink: HttpSink, result: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    objects = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    if sink.mode == "rows":
        return [(key, objects)]
    if sink.mode == "first_row":
        return [(key, objects[0])] if objects else []
    return [(f"{key}:{index}", row) for index, row in enumerate(objects)]
