"""PostgreSQL's dispatch path as single statements: an enqueue and an idle worker's claim each
cost one round trip, commit included.

A dispatch (a run enqueued, an idle worker waking and starting it) waits for an enqueue and a
claim in turn. Written as transactions of a few statements each (BEGIN, the rows, the log
append, NOTIFY, COMMIT), they took 2.4 and 1.6 ms on a quiet machine of which the two durable
commits were about 0.5 ms each: the rest was round trips and SQLAlchemy's work per statement.
Each is now one statement (data-modifying CTEs: the rows, their events under the position
lock, the NOTIFY), sent on a connection in autocommit mode, so PostgreSQL runs it as its own
transaction. Durability is unchanged: the statement returns only once its commit is flushed.

*Rejected:* psycopg's pipeline mode (one network round trip for several statements), which
needs the raw driver connection and its own row decoding beside SQLAlchemy's; and building
these with SQLAlchemy's CTE constructs, which cannot express the lock's ordering (see
``events.pg_logging_ctes``) any more clearly than the SQL itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, text

from pacer.domain.models import CLAIMABLE, Run
from pacer.stores.sqlalchemy.events import pg_logging_ctes
from pacer.stores.sqlalchemy.rows import run_values
from pacer.stores.sqlalchemy.tables import runs

_COLUMNS = ", ".join(c.name for c in runs.c)
_CLAIMABLE = ", ".join(f"'{s.value}'" for s in CLAIMABLE)


def enqueue_statement(conflict: str) -> TextClause:
    """Insert a JSON batch of runs (``:rows``), skipping those whose ``conflict`` column is
    taken; log each inserted run and NOTIFY sleeping workers if any is claimable. Returns the
    ids inserted."""
    assert conflict in ("id", "idempotency_key")
    wake = (
        f"CASE WHEN bool_or(status IN ({_CLAIMABLE})) THEN pg_notify(:channel, "
        f"CAST(min(scheduled_at) FILTER (WHERE status IN ({_CLAIMABLE})) AS text)) END"
    )
    logging = pg_logging_ctes(
        changed="inserted",
        source="inserted AS r JOIN given ON given.id = r.id",
        at="r.created_at",
        order_by="given.ordinality",
        also=wake,
    )
    return text(
        f"""
        WITH given AS (
            SELECT * FROM ROWS FROM (
                json_populate_recordset(CAST(NULL AS pacer_runs), CAST(:rows AS json))
            ) WITH ORDINALITY AS given
        ),
        inserted AS (
            INSERT INTO pacer_runs ({_COLUMNS}) SELECT {_COLUMNS} FROM given
            ON CONFLICT ({conflict}) DO NOTHING
            RETURNING *
        ),
        {logging}
        SELECT id FROM inserted
        """
    )


def claim_statement() -> Any:
    """Claim up to ``:limit`` due runs for ``:worker`` and log each, as one statement returning
    whole rows (typed as ``pacer_runs``' columns).

    ``id = ANY(ARRAY(subquery))``: the picked ids become one array, and the update finds them
    through the primary key whatever the table's statistics say (``IN`` was planned as a hash
    join over a sequential scan once the table was analysed). The subquery walks the claimable
    index in claim order and skips rows other workers hold.
    """
    logging = pg_logging_ctes(
        changed="claimed",
        source="claimed AS r",
        at="CAST(:now AS timestamptz)",
        order_by="r.priority DESC, r.scheduled_at, r.id",
    )
    return text(
        f"""
        WITH claimed AS (
            UPDATE pacer_runs SET
                status = 'running', attempt = attempt + 1, worker = :worker,
                started_at = :now, finished_at = NULL, lease_until = :lease_until
            WHERE id = ANY(ARRAY(
                SELECT id FROM pacer_runs
                WHERE status IN ({_CLAIMABLE}) AND scheduled_at <= :now
                ORDER BY priority DESC, scheduled_at
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            ))
            RETURNING *
        ),
        {logging}
        SELECT {_COLUMNS} FROM claimed
        """
    ).columns(*runs.c)


def runs_json(new_runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Rows for ``enqueue_statement``: column values with times as ISO 8601 text."""
    rows = []
    for run in new_runs:
        values = run_values(run)
        for name, value in values.items():
            if isinstance(value, datetime):
                values[name] = value.isoformat()
        rows.append(values)
    return rows
