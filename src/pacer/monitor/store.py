"""The monitor's own durable store: one SQLite file, written one transaction per batch.

The events of a batch, the executions they touch, any missed range and the new stream position
are committed together (WAL, ``synchronous=FULL``), so a SIGKILL at any instant leaves either
the whole batch or none of it, and the position never claims an event that is not stored.
Events are keyed by their log position (``INSERT OR IGNORE``): the wire delivers at least once,
the store keeps exactly once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pacer.domain.pacer import Decision
from pacer.monitor.events import (
    DETAIL_FIELDS,
    RESOURCE_GROUPS,
    RESOURCE_STATS,
    Event,
    Missed,
    Resources,
)
from pacer.monitor.executions import Execution, fold, percentile

RESOURCE_COLUMNS = tuple(f"{group}_{stat}" for group in RESOURCE_GROUPS for stat in RESOURCE_STATS)
EVENT_COLUMNS = ("position", "kind", "run_id", "attempt", *DETAIL_FIELDS)
DECISION_COLUMNS = (
    "position",
    "run_id",
    "query_id",
    "due_at",
    "start_at",
    "delay_ms",
    *(f"{kind}_{r}" for kind in ("cost", "forecast") for r in ("cpu", "io", "memory")),
    "decided_at",
)
#: Decisions older than this (behind the newest one) are pruned when new ones are saved.
DECISION_KEEP_S = 7 * 86_400.0
EXECUTION_COLUMNS = tuple(Execution.__dataclass_fields__)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS pacer_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY, kind TEXT NOT NULL, run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, query_id TEXT, job_id TEXT, status TEXT, at TEXT,
    scheduled_at TEXT, started_at TEXT, finished_at TEXT, duration_ms REAL, worker TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS events_by_attempt ON events (run_id, attempt, position);
CREATE TABLE IF NOT EXISTS executions (
    run_id TEXT NOT NULL, attempt INTEGER NOT NULL, query_id TEXT, job_id TEXT,
    scheduled_at TEXT, started_at TEXT, finished_at TEXT, duration_ms REAL, status TEXT,
    outcome TEXT, worker TEXT, error TEXT, last_kind TEXT NOT NULL,
    last_position INTEGER NOT NULL, PRIMARY KEY (run_id, attempt)
);
CREATE INDEX IF NOT EXISTS executions_by_query ON executions (query_id, finished_at);
CREATE INDEX IF NOT EXISTS executions_by_change ON executions (last_position);
CREATE TABLE IF NOT EXISTS stream (
    id INTEGER PRIMARY KEY CHECK (id = 1), consumer TEXT NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (
    from_position INTEGER PRIMARY KEY, to_position INTEGER NOT NULL, count INTEGER NOT NULL,
    detected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, run_id TEXT NOT NULL,
    query_id TEXT, due_at TEXT NOT NULL, start_at TEXT NOT NULL, delay_ms REAL NOT NULL,
    cost_cpu REAL NOT NULL, cost_io REAL NOT NULL, cost_memory REAL NOT NULL,
    forecast_cpu REAL NOT NULL, forecast_io REAL NOT NULL, forecast_memory REAL NOT NULL,
    decided_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_at);
CREATE INDEX IF NOT EXISTS decisions_by_query ON decisions (query_id, id);
CREATE TABLE IF NOT EXISTS resources (
    timestamp INTEGER PRIMARY KEY, {", ".join(f"{c} REAL" for c in RESOURCE_COLUMNS)}
);
"""


class MonitorStore:
    """The local SQLite file. Its connection may be used from any thread, but from one at a
    time: the follower and the pacer call it through their ``OffLoop`` thread."""

    def __init__(self, path: Path | str, consumer: str = "monitor") -> None:
        self.path = Path(path)
        # isolation_level=None: transactions are opened explicitly with BEGIN IMMEDIATE, so the
        # write lock is taken up front instead of half-way through a batch.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._create(consumer)

    def _create(self, consumer: str) -> None:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        self._db.execute(
            "INSERT OR IGNORE INTO stream (id, consumer, position) VALUES (1, ?, 0)", (consumer,)
        )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------------

    def apply(self, events: Sequence[Event], position: int, missed: Sequence[Missed] = ()) -> int:
        """Store a batch and move the stream to ``position`` in one transaction; returns the
        committed position (it never goes back, so an old batch replayed changes nothing)."""
        with self._transaction() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})",
                [(e.position, e.kind, e.run_id, e.attempt, *e.details()) for e in events],
            )
            self._refresh_executions({(e.run_id, e.attempt) for e in events})
            for gap in missed:
                self._record_gap(gap)
            db.execute("UPDATE stream SET position = max(position, ?) WHERE id = 1", (position,))
        return self.position()

    def _refresh_executions(self, attempts: set[tuple[str, int]]) -> None:
        for run_id, attempt in sorted(attempts):
            rows = self._db.execute(
                f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE run_id = ? AND attempt = ?",
                (run_id, attempt),
            ).fetchall()
            execution = fold(Event(**dict(row)) for row in rows)
            self._db.execute(
                f"INSERT OR REPLACE INTO executions ({', '.join(EXECUTION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EXECUTION_COLUMNS))})",
                astuple(execution),
            )

    def _record_gap(self, missed: Missed) -> None:
        # A later report of the same gap may reach further (more was pruned meanwhile).
        self._db.execute(
            "INSERT INTO gaps (from_position, to_position, count, detected_at) VALUES (?,?,?,?) "
            "ON CONFLICT (from_position) DO UPDATE SET "
            "to_position = max(to_position, excluded.to_position), "
            "count = max(count, excluded.count)",
            (missed.start, missed.end, missed.count, datetime.now(UTC).isoformat()),
        )

    def record_resources(self, window: Resources) -> bool:
        """Keep one resource window; returns whether it was new."""
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO resources (timestamp, {', '.join(RESOURCE_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' * len(RESOURCE_COLUMNS))})",
                (window.timestamp, *window.figures),
            )
        return cursor.rowcount == 1

    def save_pacer(
        self, position: int, state: dict[str, Any], decisions: Sequence[Decision] = ()
    ) -> None:
        """The pacer's learnt state, the position it has acted up to and the decisions it took
        on the way, in one transaction: after a crash the audit holds exactly the decisions
        behind the saved position (the ones after it are taken again). Decisions older than
        ``DECISION_KEEP_S`` behind the newest are pruned."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO pacer_state (id, position, state) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET position = excluded.position, "
                "state = excluded.state",
                (position, json.dumps(state)),
            )
            if decisions:
                db.executemany(
                    f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(DECISION_COLUMNS))})",
                    [_decision_row(position, decision) for decision in decisions],
                )
                newest = max(decision.decided_at for decision in decisions)
                db.execute(
                    "DELETE FROM decisions WHERE decided_at < ?",
                    (_iso(newest - DECISION_KEEP_S),),
                )

    def pacer(self) -> tuple[int, dict[str, Any]]:
        row = self._db.execute("SELECT position, state FROM pacer_state WHERE id = 1").fetchone()
        return (0, {}) if row is None else (int(row[0]), json.loads(row[1]))

    def events_after(self, position: int, limit: int = 5_000) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE position > ? "
            "ORDER BY position LIMIT ?",
            (position, limit),
        ).fetchall()
        return [Event(**dict(row)) for row in rows]

    # -- reading ---------------------------------------------------------------------------------

    def position(self) -> int:
        """The position up to which every event is stored."""
        row = self._db.execute("SELECT position FROM stream WHERE id = 1").fetchone()
        return int(row[0])

    def events(self) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY position"
        ).fetchall()
        return [Event(**dict(row)) for row in rows]

    def executions(self, query_id: str | None = None, limit: int | None = None) -> list[Execution]:
        """Attempts that started, newest change first; with ``query_id``, only that query's.
        (Ordered by log position, not by timestamps, which come from many workers' clocks.)"""
        where = "WHERE started_at IS NOT NULL" + (" AND query_id = ?" if query_id else "")
        rows = self._db.execute(
            f"SELECT {', '.join(EXECUTION_COLUMNS)} FROM executions {where} "
            "ORDER BY last_position DESC LIMIT ?",
            (*([query_id] if query_id else []), -1 if limit is None else limit),
        ).fetchall()
        return [Execution(**dict(row)) for row in rows]

    def attempts(self, changed_after: int = -1) -> list[Execution]:
        """Every attempt row, queued ones included, in (run id, attempt) order; with
        ``changed_after``, only those an event after that log position changed (a row keeps
        the position of its latest event, and batches are stored in log order)."""
        rows = self._db.execute(
            f"SELECT {', '.join(EXECUTION_COLUMNS)} FROM executions WHERE last_position > ? "
            "ORDER BY run_id, attempt",
            (changed_after,),
        ).fetchall()
        return [Execution(**dict(row)) for row in rows]

    def queries(self) -> list[dict[str, Any]]:
        """Per query id: finished executions, failures, duration p50/p95/max, last seen."""
        rows = self._db.execute(
            "SELECT query_id, count(*) AS executions, "
            "sum(outcome = 'failed') AS failures, max(finished_at) AS last_seen "
            "FROM executions WHERE started_at IS NOT NULL AND finished_at IS NOT NULL "
            "GROUP BY query_id ORDER BY query_id"
        ).fetchall()
        return [self._with_durations(dict(row)) for row in rows]

    def _with_durations(self, record: dict[str, Any]) -> dict[str, Any]:
        durations = [
            float(row[0])
            for row in self._db.execute(
                "SELECT duration_ms FROM executions WHERE query_id IS ? AND started_at IS NOT "
                "NULL AND finished_at IS NOT NULL AND duration_ms IS NOT NULL "
                "ORDER BY duration_ms",
                (record["query_id"],),
            )
        ]
        return {
            **record,
            "p50_ms": percentile(durations, 50),
            "p95_ms": percentile(durations, 95),
            "max_ms": durations[-1] if durations else None,
        }

    def gaps(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT from_position, to_position, count, detected_at FROM gaps ORDER BY from_position"
        ).fetchall()
        return [dict(row) for row in rows]

    def decisions(
        self, query_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The pacer's recorded decisions, newest first; with ``query_id``, only that query's."""
        where = "WHERE query_id = ?" if query_id else ""
        rows = self._db.execute(
            f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions {where} ORDER BY id DESC LIMIT ?",
            (*([query_id] if query_id else []), -1 if limit is None else limit),
        ).fetchall()
        return [dict(row) for row in rows]

    def resources(self, after: int | None = None) -> list[dict[str, Any]]:
        """Recorded windows, oldest first; with ``after`` (epoch ms), only those closed later."""
        rows = self._db.execute(
            "SELECT * FROM resources WHERE timestamp > ? ORDER BY timestamp",
            (-1 if after is None else after,),
        ).fetchall()
        return [dict(row) for row in rows]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _decision_row(position: int, decision: Decision) -> tuple[Any, ...]:
    return (
        position,
        decision.run_id,
        decision.query_id,
        _iso(decision.due),
        _iso(decision.start),
        1000 * decision.delay_s,
        *decision.cost.values(),
        *decision.forecast,
        _iso(decision.decided_at),
    )
