"""Listing runs with 1,000,000 of them in PostgreSQL: keyset cursor against OFFSET, same run.

    make bench-api-list              # or: .venv/bin/python bench/api_list.py [--rounds 200]

A fresh database is migrated and filled with one INSERT ... SELECT generate_series per 100,000
runs, then VACUUM ANALYZE. Each case reads a page of 50 runs, newest first, and is timed
round robin (every case once per round, the same order each round) after a few warm-up rounds:

- the cursor through the store, ``SqlStore.list_runs(RunFilter(), 50, after=key)``, and through
  the HTTP API, ``GET /api/v1/runs?limit=50&cursor=...`` (``httpx.ASGITransport``, a read
  token), the code paths clients really use;
- OFFSET: the same ORDER BY with ``LIMIT 50 OFFSET n`` on the same async engine, rows turned
  into ``Run`` records as the store does;
- the keyset written as a row comparison, ``(created_at, id) < (:at, :id)``, which is not what
  store.py sends today: it shows what the cursor costs when it bounds the index scan.

Page 500 is rows 24,951 to 25,000; its cursor is the (created_at, id) of row 24,950, found
with one SQL query rather than by walking 499 pages. The filtered case lists one job's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import select, tuple_

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import drop_database, fresh_database
from machine import describe, write_section

from pacer.api.app import create_app
from pacer.api.pagination import encode
from pacer.bootstrap import running
from pacer.domain.models import Run
from pacer.domain.tokens import Scope
from pacer.ports import RunFilter
from pacer.settings import Settings
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade
from pacer.stores.sqlalchemy.rows import to_run
from pacer.stores.sqlalchemy.tables import runs

PAGE = 50
DEEP_PAGE = 500
CHUNK = 100_000
JOBS = 20
JOB_ID = "job-07"

# Ten runs per created_at (a batch shares its timestamp), 25 s apart: a month of history.
# 80% belong to one of 20 jobs (40,000 each), 20% are ad hoc; 94% succeeded, the rest failed
# or dead.
FILL_JOBS = """
INSERT INTO pacer_jobs (id, name, spec, source, enabled, next_fire_at, created_at, updated_at)
SELECT 'job-' || lpad(j::text, 2, '0'), 'job-' || lpad(j::text, 2, '0'),
       jsonb_build_object('name', 'job-' || lpad(j::text, 2, '0'),
                          'schedule', jsonb_build_object('cron', '* * * * *'),
                          'action', jsonb_build_object('kind', 'python', 'function', 'pacer.testing:noop')),
       'bench', true, now() + INTERVAL '1 minute', now(), now()
FROM generate_series(1, %(jobs)s) AS j
"""
FILL_RUNS = """
INSERT INTO pacer_runs (id, job_id, fire_time, status, priority, scheduled_at, attempt,
    max_attempts, action, parameters, retry, timeout_s, created_at, started_at, finished_at,
    worker, result, error)
SELECT gen_random_uuid()::text,
       CASE WHEN i / 10 %% 5 <> 0 THEN 'job-' || lpad((i %% %(jobs)s + 1)::text, 2, '0') END,
       CASE WHEN i / 10 %% 5 <> 0 THEN at END,
       CASE WHEN i %% 20 = 3 THEN 'failed' WHEN i %% 100 = 7 THEN 'dead' ELSE 'succeeded' END,
       0, at, 1, 3, '{"kind": "python", "function": "pacer.testing:noop"}', '{}',
       '{"max_attempts": 3}', 60, at, at + INTERVAL '1 second', at + INTERVAL '2 seconds',
       'worker-' || (i %% 4),
       CASE WHEN i %% 20 <> 3 AND i %% 100 <> 7 THEN '{"rows": 1}'::jsonb END,
       CASE WHEN i %% 20 = 3 OR i %% 100 = 7 THEN 'failed: division by zero' END
FROM generate_series(%(first)s, %(last)s) AS i,
     LATERAL (SELECT now() - ((%(total)s - i) / 10) * INTERVAL '25 seconds' AS at) AS times
"""
NTH_KEY = """
SELECT created_at, id FROM pacer_runs {where}
ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1
"""


def psycopg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fill(url: str, total: int) -> float:
    """Insert ``total`` runs in chunks (one transaction each); returns the seconds taken."""
    started = time.monotonic()
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute(FILL_JOBS, {"jobs": JOBS})
        for first in range(1, total + 1, CHUNK):
            last = min(total, first + CHUNK - 1)
            params = {"first": first, "last": last, "total": total, "jobs": JOBS}
            conn.execute(FILL_RUNS, params)
            print(f"  {last:,} runs", flush=True)
        conn.execute("VACUUM ANALYZE pacer_runs")
        conn.execute("VACUUM ANALYZE pacer_jobs")
    return time.monotonic() - started


def key_of_row(url: str, row: int, job_id: str | None) -> tuple[datetime, str]:
    """(created_at, id) of the ``row``-th run (1-based) in listing order."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        where = "" if job_id is None else "WHERE job_id = %(job)s"
        query = NTH_KEY.format(where=where)
        found = conn.execute(query, {"job": job_id, "offset": row - 1}).fetchall()
    return found[0][0], found[0][1]


async def page_by_offset(store: SqlStore, job_id: str | None, offset: int) -> list[Run]:
    query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc())
    if job_id is not None:
        query = query.where(runs.c.job_id == job_id)
    async with store.engine.connect() as conn:
        rows = await conn.execute(query.limit(PAGE).offset(offset))
        return [to_run(r) for r in rows.mappings().all()]


async def page_by_row_value(
    store: SqlStore, job_id: str | None, after: tuple[datetime, str]
) -> list[Run]:
    query = select(runs).where(tuple_(runs.c.created_at, runs.c.id) < tuple_(*after))
    if job_id is not None:
        query = query.where(runs.c.job_id == job_id)
    query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(PAGE)
    async with store.engine.connect() as conn:
        return [to_run(r) for r in (await conn.execute(query)).mappings().all()]


async def page_by_api(client: httpx.AsyncClient, after: tuple[datetime, str] | None) -> list[Any]:
    params = {"limit": str(PAGE)}
    if after is not None:
        params["cursor"] = encode(after[0].isoformat(), after[1])
    response = await client.get("/api/v1/runs", params=params)
    response.raise_for_status()
    items: list[Any] = response.json()["items"]
    return items


Case = tuple[str, str, Callable[[], Awaitable[list[Any]]]]


def cases(store: SqlStore, client: httpx.AsyncClient, keys: dict[str | None, Any]) -> list[Case]:
    """(listing, method and page, a call returning that page): the cases timed each round."""
    deep = (DEEP_PAGE - 1) * PAGE
    every, job = keys[None], keys[JOB_ID]
    return [
        ("all runs", "store cursor, page 1", lambda: store.list_runs(RunFilter(), PAGE)),
        ("all runs", "store cursor, page 500", lambda: store.list_runs(RunFilter(), PAGE, every)),
        ("all runs", "API cursor, page 1", lambda: page_by_api(client, None)),
        ("all runs", "API cursor, page 500", lambda: page_by_api(client, every)),
        ("all runs", "OFFSET, page 1", lambda: page_by_offset(store, None, 0)),
        ("all runs", "OFFSET, page 500", lambda: page_by_offset(store, None, deep)),
        ("all runs", "row-value keyset, page 500", lambda: page_by_row_value(store, None, every)),
        ("one job", "store cursor, page 1", lambda: store.list_runs(RunFilter(JOB_ID), PAGE)),
        (
            "one job",
            "store cursor, page 500",
            lambda: store.list_runs(RunFilter(JOB_ID), PAGE, job),
        ),
        ("one job", "OFFSET, page 1", lambda: page_by_offset(store, JOB_ID, 0)),
        ("one job", "OFFSET, page 500", lambda: page_by_offset(store, JOB_ID, deep)),
        ("one job", "row-value keyset, page 500", lambda: page_by_row_value(store, JOB_ID, job)),
    ]


async def check_pages_agree(all_cases: list[Case]) -> None:
    """Every way of reading one page returns the same 50 runs, or the timings mean nothing."""
    pages: dict[tuple[str, str], list[str]] = {}
    for listing, method, call in all_cases:
        page = await call()
        ids = [item["id"] if isinstance(item, dict) else item.id for item in page]
        assert PAGE == len(ids), (listing, method, len(ids))
        pages.setdefault((listing, method.rsplit(", ", 1)[1]), ids)
        assert pages[(listing, method.rsplit(", ", 1)[1])] == ids, (listing, method)


async def measure(all_cases: list[Case], rounds: int, warmup: int) -> dict[int, list[float]]:
    """Milliseconds per call, per case index; every round times each case once, in order."""
    samples: dict[int, list[float]] = {i: [] for i in range(len(all_cases))}
    for round_number in range(warmup + rounds):
        for index, (_, _, call) in enumerate(all_cases):
            started = time.perf_counter_ns()
            await call()
            elapsed = (time.perf_counter_ns() - started) / 1e6
            if round_number >= warmup:
                samples[index].append(elapsed)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(all_cases: list[Case], samples: dict[int, list[float]]) -> tuple[str, list[str]]:
    """The table, and one ratio line per listing: OFFSET against cursor at page 500."""
    rows, p50 = [], {}
    for index, (listing, method, _) in enumerate(all_cases):
        median, p99 = percentile(samples[index], 50), percentile(samples[index], 99)
        p50[(listing, method)] = median
        rows.append(f"| {listing} | {method} | {median:.2f} | {p99:.2f} |")
    table = "\n".join(["| listing | method, page | p50 ms | p99 ms |", "|---|---|---|---|", *rows])
    ratios = []
    for listing in dict.fromkeys(listing for listing, _, _ in all_cases):
        offset = p50[(listing, "OFFSET, page 500")]
        cursor = p50[(listing, "store cursor, page 500")]
        row_value = p50[(listing, "row-value keyset, page 500")]
        ratios.append(
            f"- {listing}, page 500, p50: OFFSET / store cursor = {offset / cursor:.1f}; "
            f"OFFSET / row-value keyset = {offset / row_value:.0f}."
        )
    return table, ratios


async def run(url: str, rounds: int, warmup: int) -> tuple[str, list[str]]:
    keys = {job: key_of_row(url, (DEEP_PAGE - 1) * PAGE, job) for job in (None, JOB_ID)}
    settings = Settings(database_url=url, config_file=Path("/nonexistent"))
    async with running(settings, sync_jobs=False) as container:
        _, secret = await container.tokens.create("bench", Scope.READ)
        transport = httpx.ASGITransport(app=create_app(container.api_services()))
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            all_cases = cases(container.store, client, keys)
            await check_pages_agree(all_cases)
            samples = await measure(all_cases, rounds, warmup)
    return report(all_cases, samples)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args()
    url = fresh_database("postgresql", Path("."))
    try:
        upgrade(url)
        seconds = fill(url, args.runs)
        print(f"filled {args.runs:,} runs in {seconds:.0f}s", flush=True)
        table, ratios = await run(url, args.rounds, args.warmup)
    finally:
        drop_database(url)
    body = "\n".join(
        [
            "## Listing runs: cursor against OFFSET (`make bench-api-list`)",
            "",
            f"Machine: {describe()}.",
            f"{args.runs:,} runs in PostgreSQL (a month of history; {JOBS} jobs hold 80% of them), "
            f"pages of {PAGE} newest first; page 500 is rows 24,951 to 25,000. {args.rounds} "
            f"samples per case after {args.warmup} warm-up rounds, all cases interleaved round "
            "robin in one process. Command: `.venv/bin/python bench/api_list.py "
            f"--runs {args.runs} --rounds {args.rounds}`.",
            "`row-value keyset` is the cursor's bound written `(created_at, id) < (:at, :id)`, "
            "which PostgreSQL applies as an index condition, timed beside the store's own query.",
            "",
            table,
            "",
            *ratios,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("api-list", body)


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"took {time.monotonic() - started:.0f}s")
