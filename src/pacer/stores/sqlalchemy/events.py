"""The execution log in SQL: appending inside a run's transaction, reading by position,
named consumers, and pruning.

Positions must grow in *commit* order, or a reader that has seen position 11 could later miss
position 10 committed after it. SQLite has one writer at a time (``BEGIN IMMEDIATE``), so its
AUTOINCREMENT key already grows in commit order. On PostgreSQL concurrent transactions take
sequence values in one order and commit in another; so the append takes a transaction-scoped
advisory lock right before it draws positions and holds it until commit. The next writer
draws its positions only after this one is committed and visible (PostgreSQL releases locks
after marking the transaction committed). The lock is taken last in each transaction, after
every row lock, so it cannot deadlock, and it is held only for the insert and the commit.
*Rejected:* a transaction-id horizon (``xid < pg_snapshot_xmin``): no writer serialisation,
but positions become (xid, n) pairs, and any long transaction anywhere in the cluster (xids
are cluster-wide) stalls every reader; and a post-commit sequencer, which writes each event
twice. See docs/ARCHITECTURE.md for the measured cost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pacer.domain.errors import NotFound
from pacer.domain.events import (
    KIND_OF_STATUS,
    MAX_EVENT_ERROR,
    Consumer,
    EventKind,
    Missed,
    RunEvent,
)
from pacer.domain.models import RunStatus
from pacer.stores.sqlalchemy.dialects import Dialect, reads
from pacer.stores.sqlalchemy.rows import aware, utc
from pacer.stores.sqlalchemy.tables import consumers, event_prunes, events
from pacer.stores.sqlalchemy.writes import writing

log = logging.getLogger(__name__)
#: Arbitrary, fixed: the advisory lock that orders event positions by commit (PostgreSQL).
POSITION_LOCK = 0x7061636572  # "pacer"


def _row(event: RunEvent) -> dict[str, Any]:
    times = ("at", "scheduled_at", "started_at", "finished_at")
    values: dict[str, Any] = {
        "kind": event.kind.value,
        "status": event.status.value,
        "run_id": event.run_id,
        "attempt": event.attempt,
        "job_id": event.job_id,
        "query_id": event.query_id,
        "worker": event.worker,
        "error": event.error,
    }
    for name in times:
        value = getattr(event, name)
        values[name] = utc(value) if value is not None else None
    return values


async def append_events(conn: AsyncConnection, dialect: Dialect, new: Sequence[RunEvent]) -> None:
    """Inside the caller's transaction, as its last statement before commit."""
    if not new:
        return
    if dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSITION_LOCK})
    await conn.execute(events.insert(), [_row(e) for e in new])


#: The columns of an event row, and how PostgreSQL builds them from a ``pacer_runs`` row ``r``.
_PG_EVENT_COLUMNS = (
    "kind, status, run_id, attempt, at, job_id, query_id, scheduled_at, started_at, "
    "finished_at, worker, error"
)
_PG_KIND = " ".join(f"WHEN '{s.value}' THEN '{k.value}'" for s, k in KIND_OF_STATUS.items())


def _pg_event_values(at: str) -> str:
    return (
        f"CASE r.status {_PG_KIND} END, r.status, r.id, r.attempt, {at}, r.job_id, r.query_id, "
        f"r.scheduled_at, r.started_at, r.finished_at, r.worker, left(r.error, {MAX_EVENT_ERROR})"
    )


#: The event of each run as its row now stands, built by PostgreSQL itself from the rows the
#: transaction just changed: a batch of N runs costs one statement instead of N Python records
#: and N pipelined INSERTs (20 % of a worker's time when runs are short; BENCHMARKS.md). The
#: batch of (id, at) travels as one JSON text: psycopg dumps array parameters element by
#: element in Python, which cost more than the statement saved. The advisory lock is joined
#: in, so it is taken before the first position is drawn and still after every row lock of the
#: transaction (see above); ORDER BY keeps the positions in the order given. Used by
#: completions; an enqueue and an idle claim log inside their own statement
#: (``pg_logging_ctes``).
_PG_APPEND_FROM_RUNS = text(
    f"""
    INSERT INTO pacer_events ({_PG_EVENT_COLUMNS})
    SELECT {_pg_event_values("v.at")}
    FROM ROWS FROM (json_to_recordset(CAST(:batch AS json)) AS (id varchar, at timestamptz))
         WITH ORDINALITY AS v(id, at, n)
    JOIN pacer_runs AS r ON r.id = v.id
    CROSS JOIN (SELECT pg_advisory_xact_lock({POSITION_LOCK})) AS position_lock
    ORDER BY v.n
    """
)


def pg_logging_ctes(changed: str, source: str, at: str, order_by: str, also: str = "") -> str:
    """Two CTEs that append the event of every row of ``changed`` (a data-modifying CTE of the
    same statement, ``RETURNING`` whole ``pacer_runs`` rows), for a hot path that is one
    statement and so one round trip, commit included, in autocommit mode.

    ``source`` is the FROM clause, naming the changed rows ``r``; ``at`` the event time; ``also``
    more expressions evaluated once, after the rows and under the lock (a ``pg_notify``).
    ``HAVING count(*) > 0`` aggregates every changed row before the lock is taken, so the lock
    still comes after every row lock the statement takes, and not at all when nothing changed;
    positions are drawn per logged row, so only after the lock (see above).
    """
    extra = f", {also}" if also else ""
    return f"""
    position_lock AS (
        SELECT pg_advisory_xact_lock({POSITION_LOCK}) AS locked{extra}
        FROM {changed} HAVING count(*) > 0
    ),
    logged AS (
        INSERT INTO pacer_events ({_PG_EVENT_COLUMNS})
        SELECT {_pg_event_values(at)}
        FROM {source} CROSS JOIN position_lock
        ORDER BY {order_by}
    )"""


async def append_from_runs(conn: AsyncConnection, changed: Sequence[tuple[str, datetime]]) -> None:
    """PostgreSQL: log each ``(run id, at)`` as its run's row stands in this transaction.

    Like ``append_events``, the caller's last statement before commit.
    """
    if changed:
        batch = [{"id": run_id, "at": utc(at).isoformat()} for run_id, at in changed]
        await conn.execute(_PG_APPEND_FROM_RUNS, {"batch": json.dumps(batch)})


def to_event(row: RowMapping) -> RunEvent:
    at = aware(row["at"])
    assert at is not None
    return RunEvent(
        kind=EventKind(row["kind"]),
        run_id=row["run_id"],
        attempt=row["attempt"],
        status=RunStatus(row["status"]),
        at=at,
        job_id=row["job_id"],
        query_id=row["query_id"],
        scheduled_at=aware(row["scheduled_at"]),
        started_at=aware(row["started_at"]),
        finished_at=aware(row["finished_at"]),
        worker=row["worker"],
        error=row["error"],
        position=row["position"],
    )


def _consumer(row: RowMapping) -> Consumer:
    updated = aware(row["updated_at"])
    assert updated is not None
    missed = None
    if row["missed_count"]:
        missed = Missed(row["missed_first"], row["missed_last"], row["missed_count"])
    return Consumer(row["name"], row["position"], updated, missed)


class SqlEventLog:
    """Reading the log, consumers and pruning; appends happen in ``SqlStore``'s transactions."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self.engine, self.dialect = engine, dialect
        self.reads = reads(engine)
        # What the prune bound takes the newest of. SQLite answers a bare ``max(position)``
        # by walking the rowid back from the newest event until one matches (its min/max
        # optimisation), never through ``ix_pacer_events_at``: past the whole keep window,
        # every minute. ``position + 0`` is no longer the rowid, so SQLite reads the few old
        # events through the index instead. PostgreSQL picks by its statistics, and its
        # backward walk is the better plan when most events are old enough (a first prune).
        self._bound_position: ColumnElement[int] = (
            events.c.position + 0 if dialect.name == "sqlite" else events.c.position
        )

    async def read(self, after: int, limit: int) -> list[RunEvent]:
        query = select(events).where(events.c.position > after)
        query = query.order_by(events.c.position).limit(limit)
        async with self.reads.connect() as conn:
            return [to_event(row) for row in (await conn.execute(query)).mappings()]

    async def head(self) -> int:
        """The newest position (0 when the log is empty and was never pruned)."""
        async with self.reads.connect() as conn:
            newest = (await conn.execute(select(func.max(events.c.position)))).scalar()
            pruned = (await conn.execute(select(func.max(event_prunes.c.last_position)))).scalar()
        return int(max(newest or 0, pruned or 0))

    async def missed(self, after: int) -> Missed | None:
        """What pruning removed after ``after``: exact for whole prunes, a bound for the one
        ``after`` falls inside."""
        query = select(event_prunes).where(event_prunes.c.last_position > after)
        async with self.reads.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return None
        count = sum(
            r["count"] if r["first_position"] > after else r["last_position"] - after for r in rows
        )
        last = max(r["last_position"] for r in rows)
        return Missed(after + 1, last, count)

    async def acknowledge(self, name: str, position: int, now: datetime) -> Consumer:
        values = {"position": position, "updated_at": utc(now)}
        stmt = self.dialect.insert(consumers).values(name=name, created_at=utc(now), **values)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=values)
        async with writing(self.engine) as conn:
            await conn.execute(stmt)
            row = (await conn.execute(select(consumers).where(consumers.c.name == name))).mappings()
            return _consumer(row.one())

    async def consumer(self, name: str) -> Consumer:
        async with self.reads.connect() as conn:
            query = select(consumers).where(consumers.c.name == name)
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound("consumer", name)
        return _consumer(row)

    async def prune(self, keep_after: datetime, hard_before: datetime, now: datetime) -> int:
        """Delete a prefix of the log: events every consumer acknowledged and older than
        ``keep_after``, plus anything older than ``hard_before`` whoever lacks it. A consumer
        that lacked pruned events is marked with what it missed.

        The bound is found first in a read, and the write lock is taken only when there is
        something to delete (the bound is then found again under the lock, since consumers may
        have moved): most calls find nothing, and on SQLite the bound's scans held every
        writer of the process up (169 ms once, under the pace benchmark's load)."""
        async with self.reads.connect() as conn:
            if await self._prune_bound(conn, keep_after, hard_before) is None:
                return 0
        async with writing(self.engine) as conn:
            up_to = await self._prune_bound(conn, keep_after, hard_before)
            if up_to is None:
                return 0
            first, count = (
                await conn.execute(
                    select(func.min(events.c.position), func.count()).where(
                        events.c.position <= up_to
                    )
                )
            ).one()
            if not count:
                return 0
            await self._mark_lagging(conn, up_to)
            await conn.execute(delete(events).where(events.c.position <= up_to))
            await conn.execute(
                event_prunes.insert().values(
                    first_position=first, last_position=up_to, count=count, at=utc(now)
                )
            )
            return int(count)

    async def _prune_bound(
        self, conn: AsyncConnection, keep_after: datetime, hard_before: datetime
    ) -> int | None:
        acked = (await conn.execute(select(func.min(consumers.c.position)))).scalar()
        newest = func.max(self._bound_position)
        safe = select(newest).where(events.c.at < utc(keep_after))
        if acked is not None:
            safe = safe.where(events.c.position <= acked)
        hard = select(newest).where(events.c.at < utc(hard_before))
        bounds = [(await conn.execute(q)).scalar() for q in (safe, hard)]
        found = [int(b) for b in bounds if b is not None]
        return max(found) if found else None

    async def _mark_lagging(self, conn: AsyncConnection, up_to: int) -> None:
        """Consumers behind ``up_to`` lose events they never acknowledged: say so, loudly."""
        lagging = (
            await conn.execute(select(consumers).where(consumers.c.position < up_to))
        ).mappings()
        for row in lagging.all():
            lost = (
                await conn.execute(
                    select(func.count()).where(
                        events.c.position > row["position"], events.c.position <= up_to
                    )
                )
            ).scalar_one()
            log.warning(
                "consumer %r MISSED %d events (positions %d..%d): pruned past the hard age "
                "limit before it acknowledged them",
                row["name"],
                lost,
                row["position"] + 1,
                up_to,
            )
            await conn.execute(
                update(consumers)
                .where(consumers.c.name == row["name"])
                .values(
                    missed_first=func.coalesce(consumers.c.missed_first, row["position"] + 1),
                    missed_last=up_to,
                    missed_count=consumers.c.missed_count + lost,
                    position=up_to,
                )
            )
