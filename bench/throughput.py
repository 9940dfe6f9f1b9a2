"""Drain throughput and dispatch latency of Pacer's workers, on PostgreSQL and SQLite.

    make bench-throughput            # or: .venv/bin/python bench/throughput.py [--runs 20000]

Drain: enqueue N no-op runs, start 1, 2 or 4 ``pacer worker`` processes, and time from the first
start to the last finish as recorded in the store (process start-up is not counted). Every
run's state change is committed durably before it counts.
CPU per run: what the worker processes and the database's backends serving this database spent
per run during the drain (user + system time from /proc via psutil, the workers' start-up cost,
measured on an idle worker, taken off). Unlike runs/s it barely moves when other work shares
the machine, so it is the figure to compare changes by (see also bench/compare.py).
Dispatch: an idle worker; 200 runs enqueued 20 ms apart, each due at once; latency is the
stored ``started_at - scheduled_at``. On SQLite the worker runs in the enqueuing process (as in
``pacer up``, woken in-process); on PostgreSQL it is another process, woken by NOTIFY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import drop_database, fresh_database
from machine import describe, write_section

from pacer.bootstrap import running
from pacer.domain.models import RunStatus
from pacer.domain.runs import adhoc_run
from pacer.ports import RunFilter
from pacer.services.clock import SystemClock
from pacer.settings import Settings
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade
from pacer.stores.sqlalchemy.tables import runs as runs_table

NOOP = {"kind": "python", "function": "pacer.testing:noop"}
WORKER_ENV = {
    "PACER_CONCURRENCY": os.environ.get("BENCH_CONCURRENCY", "500"),
    "PACER_BATCH": os.environ.get("BENCH_BATCH", "250"),
    "PACER_POLL_S": "0.5",
}


async def enqueue_noops(store: SqlStore, count: int) -> None:
    now = SystemClock().now()
    for start in range(0, count, 1000):
        batch = [adhoc_run(dict(NOOP), now, now, None) for _ in range(min(1000, count - start))]
        await store.enqueue(batch)


def start_workers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PACER_DATABASE_URL": url,
        "PACER_CONFIG_FILE": "/nonexistent",
        **WORKER_ENV,
    }
    env["PACER_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "pacer.cli", "worker"]
    return [subprocess.Popen(command, env=env) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still alive."""
    spent = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent[pid] = times.user + times.system
    return spent


def backends(url: str) -> list[int]:
    """PostgreSQL backends connected to this database (their title names it); none for SQLite."""
    if not url.startswith("postgresql"):
        return []
    name = url.rsplit("/", 1)[1]
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and f" {name} " in f"{title} ":
            found.append(process.pid)
    return found


async def startup_cpu(kind: str, workdir: Path) -> float:
    """CPU seconds a worker spends starting up and idling 3 s (taken off the drain's figure)."""
    url = fresh_database(kind, workdir)
    try:
        upgrade(url)
        [process] = start_workers(url, 1)
        await asyncio.sleep(3)
        spent = cpu_seconds([process.pid]).get(process.pid, 0.0)
        stop([process])
        return spent
    finally:
        drop_database(url)


@dataclass(frozen=True)
class Drain:
    runs_per_s: float
    #: CPU microseconds per run: the worker processes', and the database backends' (PostgreSQL).
    worker_us: float
    database_us: float


async def drain(kind: str, workers: int, count: int, workdir: Path, startup: float = 0.0) -> Drain:
    url = fresh_database(kind, workdir)
    try:
        upgrade(url)
        store = SqlStore(url)
        await enqueue_noops(store, count)
        database_before = cpu_seconds(backends(url))
        processes = start_workers(url, workers)
        done_filter = RunFilter(status=[RunStatus.SUCCEEDED])
        while await store.count_runs(done_filter) < count:
            await asyncio.sleep(0.2)
        worker_cpu = sum(cpu_seconds([p.pid for p in processes]).values()) - startup * workers
        database_after = cpu_seconds(backends(url))
        database_cpu = sum(t - database_before.get(pid, 0.0) for pid, t in database_after.items())
        stop(processes)
        async with store.engine.connect() as conn:
            span = select(func.min(runs_table.c.started_at), func.max(runs_table.c.finished_at))
            first, last = (await conn.execute(span)).one()
        await store.close()
        seconds = (_dt(last) - _dt(first)).total_seconds()
        return Drain(count / seconds, worker_cpu / count * 1e6, database_cpu / count * 1e6)
    finally:
        drop_database(url)


def _dt(value: object) -> object:
    from pacer.stores.sqlalchemy.store import _aware

    return _aware(value)


async def dispatch(kind: str, workdir: Path, count: int = 200) -> list[float]:
    url = fresh_database(kind, workdir)
    try:
        settings = Settings(database_url=url, config_file=Path("/nonexistent"), poll_s=5.0)
        async with running(settings) as container:
            stop_event = asyncio.Event()
            processes: list[subprocess.Popen[bytes]] = []
            if kind == "sqlite":
                task = asyncio.create_task(container.worker().run(stop_event))
            else:
                processes = start_workers(url, 1)
            await asyncio.sleep(3)  # the worker is up and idle
            ids = []
            for _ in range(count):
                now = SystemClock().now()
                run = adhoc_run(dict(NOOP), now, now, None)
                await container.store.enqueue([run])
                ids.append(run.id)
                await asyncio.sleep(0.02)
            await asyncio.sleep(1)
            latencies = []
            for run_id in ids:
                run = await container.store.get_run(run_id)
                assert run is not None
                assert run.started_at is not None, run
                latencies.append((run.started_at - run.scheduled_at) / timedelta(milliseconds=1))
            stop_event.set()
            if kind == "sqlite":
                await task
            stop(processes)
        return latencies
    finally:
        drop_database(url)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--stores", default="postgresql,sqlite")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args()
    stores = args.stores.split(",")
    worker_counts = [int(n) for n in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for kind in stores:
            startup = await startup_cpu(kind, workdir)
            drains = {n: await drain(kind, n, args.runs, workdir, startup) for n in worker_counts}
            lat = await dispatch(kind, workdir)
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            cells = " | ".join(f"{drains[n].runs_per_s:,.0f}" for n in worker_counts)
            widest = drains[max(worker_counts)]
            cpu = f"{widest.worker_us:,.0f} | {widest.database_us:,.0f}"
            rows.append(f"| {kind} | {cells} | {cpu} | {p50:.1f} | {p99:.1f} |")
            print(rows[-1], flush=True)
    header = " | ".join(f"runs/s, {n} worker{'s' if n > 1 else ''}" for n in worker_counts)
    most = max(worker_counts)
    table = "\n".join(
        [
            f"| store | {header} | worker CPU us/run ({most}) | database CPU us/run ({most}) "
            "| dispatch p50 ms | dispatch p99 ms |",
            "|" + "---|" * (len(worker_counts) + 5),
            *rows,
        ]
    )
    body = (
        "## Throughput and dispatch latency (`make bench-throughput`)\n\n"
        f"Machine: {describe()}.\n"
        f"Drain of {args.runs:,} no-op runs (`pacer.testing:noop`), worker processes with "
        f"concurrency {WORKER_ENV['PACER_CONCURRENCY']} and claim batches of {WORKER_ENV['PACER_BATCH']}; "
        "dispatch latency from due time to start, 200 runs 20 ms apart to an idle worker.\n\n"
        + table
    )
    print(table)
    if not args.no_write:
        write_section("throughput", body)


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"took {time.monotonic() - started:.0f}s")
