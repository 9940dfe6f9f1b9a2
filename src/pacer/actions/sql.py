"""The ``sql`` action: one statement on a named target, optionally posting its rows onward.

Read-only jobs are checked twice: by parsing at validation (a clear error early) and by the
database itself at execution (the parser can be fooled; it cannot). The execution itself
(threads, guards, timeouts, sinks) is shared with ``metric`` in ``pacer.actions.statements``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy
from pydantic import ValidationError

from pacer.actions.http import HttpPoster, check_url
from pacer.actions.statements import post_to_sink, run_statement
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import is_read_only, query_id, read_only_violation, statement_kind
from pacer.domain.models import SqlAction
from pacer.ports import RunContext

__all__ = ["SqlActionRunner"]

_QUOTED = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)


class SqlActionRunner:
    """Executes ``sql`` actions on the configured ``Targets``."""

    kind = "sql"

    def __init__(
        self, targets: Targets, poster: HttpPoster | None = None, base_url: str | None = None
    ) -> None:
        self.targets = targets
        self.poster = poster or HttpPoster()
        #: This server's API, for sinks given as a path.
        self.base_url = base_url

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = SqlAction.model_validate(spec)
        self.targets.url(action.target)
        if action.read_only:
            found = read_only_violation(action.statement)
            if found is not None:
                reason = f"a read-only job may only run a single SELECT statement; found {found}"
                raise InvalidInput("action.statement", reason)
        if action.sink is not None:
            check_url(action.sink.url, "action.sink.url", allow_path=True)

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
        result = await asyncio.to_thread(
            run_statement,
            engine,
            clause,
            params,
            read_only=action.read_only,
            timeout_s=action.statement_timeout_s,
            max_rows=action.max_rows,
            stream=_streamable(engine, action.statement),
        )
        if action.sink is not None:
            result["sink"] = await post_to_sink(
                self.poster, action.sink, self.base_url, result, ctx.idempotency_key
            )
        return result

    async def aclose(self) -> None:
        await self.poster.aclose()


def _parse(spec: Mapping[str, Any]) -> SqlAction:
    try:
        return SqlAction.model_validate(spec)
    except ValidationError as exc:
        raise ActionFailed(f"invalid sql action: {exc}", retryable=False) from exc


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


def _streamable(engine: sqlalchemy.Engine, statement: str) -> bool:
    """A server-side cursor keeps ``max_rows`` from fetching a whole table into memory, but
    PostgreSQL declares one only over a plain query (and SQLite streams anyway)."""
    if engine.dialect.name != "postgresql":
        return False
    return statement_kind(statement) in ("SELECT", "VALUES") and is_read_only(statement)
