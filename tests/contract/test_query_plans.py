"""Every hot query of the store reads PostgreSQL through an index, never a sequential scan;
the execution log's prune finds its bound through the time index on PostgreSQL and SQLite.

Each store call runs once for real; the statements it sends are caught on the engine's
``before_cursor_execute`` and then explained with their own parameters, against 50,000 runs and
2,000 jobs after ``ANALYZE``. Plain ``EXPLAIN`` only plans, so explaining the UPDATEs of
``claim``, ``reap_expired`` and ``heartbeat`` changes nothing more. The database is filled once per module:
a fresh database per case (``make_pg_database``) would add a second of setup to each of two
dozen cases, so the module uses the same helpers that fixture does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pacer.domain.models import RunStatus
from pacer.domain.runs import adhoc_run
from pacer.ports import RunFilter
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.dialects import sync_url
from pacer.stores.sqlalchemy.events import SqlEventLog
from pacer.stores.sqlalchemy.migrate import upgrade
from support import create_pg_database, drop_pg_databases

TABLES = ("pacer_runs", "pacer_jobs")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RUNS = 50_000
#: The cursor of page 500 of 50: the (created_at, id) of the 24,950th run, newest first.
CURSOR_ROW = 24_950
JOB_ID = "job-00003"
QUERY_ID = hashlib.md5(b"3").hexdigest()
NOOP = {"kind": "python", "function": "builtins:len"}

# 2,000 jobs (10% disabled, two due at T0); 50,000 runs over 35 days, five per created_at
# (a batch shares its timestamp), 20% ad hoc, the rest spread over 40 jobs, a third carrying one
# of 25 query ids; nearly all finished, the newest 100 queued, retrying or running.
FILL_JOBS = """
INSERT INTO pacer_jobs (id, name, spec, source, enabled, next_fire_at, created_at, updated_at)
SELECT 'job-' || lpad(i::text, 5, '0'), 'job-' || i,
       jsonb_build_object('name', 'job-' || i, 'schedule', jsonb_build_object('cron', '* * * * *'),
                          'action', jsonb_build_object('kind', 'python', 'function', 'builtins:len')),
       'definitions', i %% 10 <> 0,
       %(t0)s + (i %% 3600 - 2) * INTERVAL '1 second', %(t0)s - INTERVAL '60 days',
       %(t0)s - INTERVAL '60 days'
FROM generate_series(1, 2000) AS i
"""
FILL_RUNS = """
INSERT INTO pacer_runs (id, job_id, fire_time, query_id, status, priority, scheduled_at, attempt,
    max_attempts, action, parameters, retry, timeout_s, created_at, started_at, finished_at,
    lease_until, worker, result, error)
SELECT gen_random_uuid()::text,
       CASE WHEN i / 5 %% 5 <> 0 THEN 'job-' || lpad((i %% 40 + 1)::text, 5, '0') END,
       CASE WHEN i / 5 %% 5 <> 0 THEN at END,
       CASE WHEN i %% 3 = 0 THEN md5((i %% 25)::text) END,
       status, 0, at, 1, 3,
       '{"kind": "sql", "target": "demo", "sql": "SELECT 1"}', '{}', '{"max_attempts": 3}', 60, at,
       CASE WHEN status <> 'queued' THEN at + INTERVAL '1 second' END,
       CASE WHEN status NOT IN ('queued', 'retrying', 'running') THEN at + INTERVAL '2 seconds' END,
       CASE WHEN status = 'running' THEN at + INTERVAL '30 seconds' END,
       CASE WHEN status <> 'queued' THEN 'worker-' || (i %% 4) END,
       CASE WHEN status = 'succeeded' THEN '{"rows": 1}'::jsonb END,
       CASE WHEN status IN ('failed', 'dead') THEN 'boom' END
FROM generate_series(1, %(runs)s) AS i,
     LATERAL (SELECT %(t0)s - ((%(runs)s - i) / 5) * INTERVAL '5 minutes' AS at) AS times,
     LATERAL (SELECT CASE
         WHEN i > %(runs)s - 100 THEN (ARRAY['queued', 'queued', 'queued', 'retrying', 'running'])[i %% 5 + 1]
         WHEN i %% 50 = 7 THEN 'failed'
         WHEN i %% 200 = 11 THEN 'dead'
         WHEN i %% 100 = 13 THEN 'cancelled'
         ELSE 'succeeded' END AS status) AS statuses
"""

CURSOR_KEY = """
SELECT created_at, id FROM pacer_runs ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1
"""
RUNNING = "SELECT id, worker FROM pacer_runs WHERE status = 'running' ORDER BY id LIMIT 1"


@dataclass(frozen=True)
class Sample:
    """Keys taken from the filled tables, so every call reaches real rows."""

    url: str
    after: tuple[datetime, str]
    running_id: str
    running_worker: str


@pytest.fixture(scope="module")
def sample() -> Iterator[Sample]:
    """One migrated PostgreSQL database per module, filled, analysed; dropped afterwards."""
    name, url = create_pg_database()
    try:
        upgrade(url)
        with psycopg.connect(url.replace("+psycopg", "", 1), autocommit=True) as conn:
            conn.execute(FILL_JOBS, {"t0": T0})
            conn.execute(FILL_RUNS, {"t0": T0, "runs": RUNS})
            conn.execute("ANALYZE")
            after = conn.execute(CURSOR_KEY, {"offset": CURSOR_ROW - 1}).fetchall()[0]
            running = conn.execute(RUNNING).fetchall()[0]
        yield Sample(url, (after[0], after[1]), running[0], running[1])
    finally:
        drop_pg_databases([name])


Call = Callable[[SqlStore, Sample], Awaitable[object]]

FILTERS = {
    "all": RunFilter(),
    "job_id": RunFilter(job_id=JOB_ID),
    "status": RunFilter(status=[RunStatus.FAILED]),
    "query_id": RunFilter(query_id=QUERY_ID),
    "since_until": RunFilter(since=T0 - timedelta(days=60), until=T0 - timedelta(days=1)),
    "adhoc_only": RunFilter(adhoc_only=True),
}


def _listing(flt: RunFilter, paged: bool) -> Call:
    """``list_runs`` as the API calls it: limit + 1, first page or the cursor of page 500."""

    def call(store: SqlStore, sample: Sample) -> Awaitable[object]:
        return store.list_runs(flt, 51, sample.after if paged else None)

    return call


HOT_QUERIES: dict[str, Call] = {
    "claim": lambda store, _: store.claim("worker-9", T0, 10, 30),
    "next_due_at": lambda store, _: store.next_due_at(),
    "reap_expired": lambda store, _: store.reap_expired(T0 + timedelta(hours=1), 10),
    "due_jobs": lambda store, _: store.due_jobs(T0, 100),
    "next_job_fire_at": lambda store, _: store.next_job_fire_at(),
    "get_run": lambda store, sample: store.get_run(sample.after[1]),
    "heartbeat": lambda store, sample: store.heartbeat(
        sample.running_worker, [sample.running_id], T0, 30
    ),
    "last_runs": lambda store, _: store.last_runs([f"job-{i:05d}" for i in range(1, 51)]),
    **{f"list_runs-{name}": _listing(flt, paged=False) for name, flt in FILTERS.items()},
    **{f"list_runs-{name}-after": _listing(flt, paged=True) for name, flt in FILTERS.items()},
}


@contextlib.contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements on Pacer's tables, with their parameters, sent while the block runs."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if any(table in statement for table in TABLES):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def plans_of(store: SqlStore, call: Call, sample: Sample) -> list[dict[str, Any]]:
    """Runs ``call`` against the store, then the plan of each statement it sent."""
    with captured(store.engine) as statements:
        await call(store, sample)
    plans = []
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")  # how plans print timestamps
        for statement, parameters in statements:
            explain = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            plans.append(explain.scalar_one()[0]["Plan"])
    return plans


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan node and every node below it."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans(plans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(node type, table) of every node that reads one of Pacer's tables."""
    return [
        (node["Node Type"], node["Relation Name"])
        for plan in plans
        for node in nodes(plan)
        if node.get("Relation Name") in TABLES and node["Node Type"] != "ModifyTable"
    ]


@pytest.fixture
async def store(sample: Sample) -> AsyncIterator[SqlStore]:
    """A store on the module's filled database (not the shared fixture's empty one)."""
    opened = SqlStore(sample.url)
    yield opened
    await opened.close()


@pytest.mark.parametrize("name", list(HOT_QUERIES))
async def test_hot_query_reads_through_an_index(name: str, store: SqlStore, sample: Sample) -> None:
    """The store's statements for this call scan pacer_runs and pacer_jobs by index only."""
    plans = await plans_of(store, HOT_QUERIES[name], sample)
    read = scans(plans)
    assert 0 < len(read), "the call sent no statement on Pacer's tables"
    assert [] == [scan for scan in read if scan[0] == "Seq Scan"], json.dumps(plans, indent=1)


@pytest.mark.parametrize("name", list(FILTERS))
async def test_keyset_cursor_bounds_the_index_scan(
    name: str, store: SqlStore, sample: Sample
) -> None:
    """A cursor's created_at is an Index Cond, so a deep page costs what the first one does."""
    plans = await plans_of(store, _listing(FILTERS[name], paged=True), sample)
    bound = sample.after[0].astimezone(UTC).strftime("'%Y-%m-%d %H:%M:%S+00'")
    conditions = [node.get("Index Cond", "") for plan in plans for node in nodes(plan)]
    assert bound in " ".join(conditions), json.dumps(plans, indent=1)


async def test_a_claim_in_a_backlog_reads_claimable_runs_in_claim_order() -> None:
    """On a table PostgreSQL has no statistics for yet (a fresh install, a first burst), a claim
    behind a full one must walk the claimable index in claim order, not read every claimable
    run through a bitmap scan and sort them (9 ms a claim with 20,000 queued)."""
    name, url = create_pg_database()
    store = SqlStore(url)
    try:
        upgrade(url)
        for start in range(0, 3000, 1000):
            await store.enqueue(
                [adhoc_run(dict(NOOP), T0, T0, None) for _ in range(start, start + 1000)]
            )
        await store.claim("worker-1", T0, 100, 30)  # comes back full: runs are piling up
        sent: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))

        event.listen(store.engine.sync_engine, "before_cursor_execute", record)
        try:
            await store.claim("worker-1", T0, 100, 30)
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", record)
        claim = next(i for i, (statement, _) in enumerate(sent) if "UPDATE pacer_runs" in statement)
        async with store.engine.connect() as conn:  # the claim's transaction, replayed
            for statement, parameters in sent[:claim]:
                await conn.exec_driver_sql(statement, parameters)
            statement, parameters = sent[claim]
            explain = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            plan = explain.scalar_one()[0]["Plan"]
        # The claim is the statement's first CTE; the log append after it sorts the few runs
        # claimed, which is fine.
        claimed = next(n for n in nodes(plan) if n.get("Subplan Name") == "CTE claimed")
        kinds = [node["Node Type"] for node in nodes(claimed)]
        assert "Sort" not in kinds, json.dumps(plan, indent=1)
        assert "Bitmap Heap Scan" not in kinds, json.dumps(plan, indent=1)
    finally:
        await store.close()
        drop_pg_databases([name])


# -- the execution log: pruning's bound, on both dialects -------------------------------------

EVENTS = 100_000
ACKED = EVENTS // 2
#: 100,000 events over the 23 hours before T0, one consumer half-way: the log as it stands
#: between two prunes, everything older than the keep window (a day) already gone. So the
#: prune below finds nothing and deletes nothing, as most prunes do, and the module's database
#: stays as filled.
FILL_EVENTS = {
    "postgresql": f"""
        INSERT INTO pacer_events (kind, run_id, attempt, status, at)
        SELECT 'queued', md5(i::text), 1, 'queued', %(t0)s - ({EVENTS} - i) * INTERVAL '0.8 s'
        FROM generate_series(1, {EVENTS}) AS i
    """,
    "sqlite": f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS})
        INSERT INTO pacer_events (kind, run_id, attempt, status, at)
        SELECT 'queued', hex(randomblob(16)), 1, 'queued',
               strftime('%Y-%m-%d %H:%M:%f', :t0, '-' || (({EVENTS} - i) * 0.8) || ' seconds')
        FROM n
    """,
}
ADD_CONSUMER = (
    "INSERT INTO pacer_consumers (name, position, created_at, updated_at, missed_count)"
    f" VALUES ('monitor', {ACKED}, :t0, :t0, 0)"
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database per dialect with ``EVENTS`` events and one consumer, analysed."""
    if request.param == "sqlite":
        url, name = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('log')}/pacer.db", None
    else:
        name, url = create_pg_database()
    try:
        upgrade(url)
        engine = create_engine(sync_url(url))
        with engine.begin() as conn:
            t0 = {"t0": T0.strftime("%Y-%m-%d %H:%M:%S")} if name is None else {"t0": T0}
            conn.exec_driver_sql(FILL_EVENTS[request.param], t0)
            conn.execute(text(ADD_CONSUMER), {"t0": T0})
        if name is not None:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        engine.dispose()
        yield url
    finally:
        if name is not None:
            drop_pg_databases([name])


async def index_reads(store: SqlStore, statement: str, parameters: Any) -> list[str]:
    """How ``statement`` reads ``pacer_events``: the index of each scan (``-`` for none)."""
    async with store.engine.connect() as conn:
        if store.dialect.name == "sqlite":
            explain = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = [row[3] for row in explain if "pacer_events" in row[3]]
            return [d.split(" INDEX ")[1].split()[0] if " INDEX " in d else "-" for d in details]
        explain = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        plan = explain.scalar_one()[0]["Plan"]
    return [
        node.get("Index Name", "-")
        for node in nodes(plan)
        if node.get("Relation Name") == "pacer_events"
    ]


async def test_prune_finds_its_bound_through_the_time_index(filled_log: str) -> None:
    """Every statement of a prune that reads pacer_events does so through ix_pacer_events_at,
    not by walking the primary key back past the whole keep window."""
    store = SqlStore(filled_log)
    try:
        log = SqlEventLog(store.engine, store.dialect)
        sent: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "pacer_events" in statement:
                sent.append((statement, parameters))

        event.listen(store.engine.sync_engine, "before_cursor_execute", record)
        try:
            removed = await log.prune(T0 - timedelta(days=1), T0 - timedelta(days=30), T0)
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", record)
        reads = [await index_reads(store, statement, parameters) for statement, parameters in sent]
    finally:
        await store.close()
    assert 0 == removed
    assert [["ix_pacer_events_at"]] * 2 == reads, sent
