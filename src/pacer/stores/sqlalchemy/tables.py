"""Table definitions (SQLAlchemy Core). Alembic migrations must agree with these; a test checks.

Run history keeps ``job_id`` without a foreign key on purpose: deleting a job must keep its runs
(and a foreign key with ``ON DELETE SET NULL`` would erase which job they belonged to).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

Json = JSON().with_variant(JSONB(), "postgresql")


class JsonText(TypeDecorator[Any]):
    """SQLite: a JSON value kept as text in a column of TEXT affinity.

    SQLite gives a column declared ``JSON`` NUMERIC affinity, so a value that is a bare number
    was stored as a number: ``12345678901234567890`` came back as ``1.2345678901234567e+19``.
    Only columns that may hold any JSON value (a run's result, a received body) need this; the
    others always hold an object, which never looks like a number.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return json.dumps(value)  # None is JSON's null, as the JSON type stores it

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        # Rows written before migration 0007 may hold a number SQLite converted: kept as is.
        return json.loads(value) if isinstance(value, str) else value


#: Any JSON value, the top level included: JSONB on PostgreSQL, text on SQLite.
AnyJson = JSON().with_variant(JSONB(), "postgresql").with_variant(JsonText(), "sqlite")
Timestamp = DateTime(timezone=True)

jobs = Table(
    "pacer_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", Json, nullable=False),
    Column("source", String(20), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_fire_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    #: Set when a start found a jobs-folder job gone from the folder (``JobService.sync``).
    Column("removed_at", Timestamp, nullable=True),
)
Index("ix_pacer_jobs_due", jobs.c.enabled, jobs.c.next_fire_at)

runs = Table(
    "pacer_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("job_id", String(36), nullable=True),
    # The nominal time: a scheduled run's fire, or the due_at a task's request named (what an
    # idempotent retry must name again); NULL when it named none, and for manual triggers.
    Column("fire_time", Timestamp, nullable=True),
    Column("query_id", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("scheduled_at", Timestamp, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("action", Json, nullable=False),
    Column("parameters", Json, nullable=False),
    Column("retry", Json, nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    Column("lease_until", Timestamp, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("result", AnyJson, nullable=True),
    Column("error", Text, nullable=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    # One fire of a schedule makes one run: the database, not a leader, enforces it.
    UniqueConstraint("job_id", "fire_time"),
)
Index("ix_pacer_runs_status_scheduled", runs.c.status, runs.c.scheduled_at)
Index("ix_pacer_runs_job_created", runs.c.job_id, runs.c.created_at)
Index("ix_pacer_runs_created", runs.c.created_at, runs.c.id)
Index("ix_pacer_runs_query_created", runs.c.query_id, runs.c.created_at)
# PostgreSQL: the claim query reads only claimable runs, a small set among millions of finished
# ones; a partial index keeps that scan short. SQLite uses the (status, scheduled_at) index.
Index(
    "ix_pacer_runs_claimable",
    runs.c.priority.desc(),
    runs.c.scheduled_at,
    postgresql_where=text("status IN ('queued', 'retrying')"),
).ddl_if(dialect="postgresql")

# API tokens: only a SHA-256 of each token is kept. Tokens are 256 random bits, so a slow
# password hash (argon2, bcrypt) would add latency to every request and no protection.
tokens = Table(
    "pacer_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    Column("expires_at", Timestamp, nullable=True),
)

# Bodies received by ``POST /result``, in arrival order. A sender's ``Idempotency-Key`` is kept
# unique, so a retried delivery (the sink re-posts after a lost answer) is stored once.
results = Table(
    "pacer_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", AnyJson, nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("idempotency_key", String(200), nullable=True, unique=True),
)

# The execution log: one row per state change of a run, appended in the transaction that made
# the change. ``position`` grows in commit order (see ``events.py`` for how, per dialect).
# AUTOINCREMENT on SQLite: positions are never reused, even after the newest rows are pruned.
Position = BigInteger().with_variant(Integer, "sqlite")
events = Table(
    "pacer_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("job_id", String(36), nullable=True),
    Column("query_id", String(32), nullable=True),
    Column("scheduled_at", Timestamp, nullable=True),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("error", Text, nullable=True),
    sqlite_autoincrement=True,
)
# Pruning finds its bound by ``at`` (``SqlEventLog._prune_bound``): without this index both
# dialects walked the primary key back from the newest event, past every event of the keep
# window, once a minute. ``position`` is in the key so PostgreSQL answers ``max(position)``
# from the index alone and takes a consumer's ``position <= acked`` as an index condition
# (SQLite keeps the rowid, which ``position`` is, in every index anyway). *Rejected:* an index
# on ``run_id``: no query of the server reads the log by run, and every event would pay for it.
Index("ix_pacer_events_at", events.c.at, events.c.position)

# Named readers of the log and the position each has acknowledged; pruning keeps what they lack.
consumers = Table(
    "pacer_consumers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("position", Position, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("missed_first", Position, nullable=True),
    Column("missed_last", Position, nullable=True),
    Column("missed_count", Position, nullable=False, server_default="0"),
)

# What pruning removed: (first, last, count) per prune, so a late reader learns what it missed.
event_prunes = Table(
    "pacer_event_prunes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("first_position", Position, nullable=False),
    Column("last_position", Position, nullable=False),
    Column("count", Position, nullable=False),
    Column("at", Timestamp, nullable=False),
)

# Closed resource windows (GET /resources and its history), keyed by the window's end.
resource_windows = Table(
    "pacer_resource_windows",
    metadata,
    Column("end_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("start_ms", BigInteger, nullable=False),
    *(
        Column(f"{resource}_{stat}", Float, nullable=False)
        for resource in ("cpu", "io", "memory")
        for stat in ("average", "min", "max")
    ),
)
