"""What one round trip to each backend costs here, at the dispatch workload's pace.

    bench/peers/.venv/bin/python bench/peers/round_trips.py [--calls 300]

The dispatch workload sends a job every 20 ms, so every call meets processes that were
asleep. This times single calls with the same 20 ms gaps, interleaved so they share the
machine's mood: PostgreSQL (psycopg, prepared, autocommit) ``SELECT 1``, a one-row durable
INSERT, and Pacer's whole enqueue statement (the row, its event under the log's lock, the
NOTIFY); Redis ``PING`` and ``LPUSH`` on the machine's Redis (no persistence, as the peers
run) and, when ``redis-server`` is installed, on a private one with ``appendfsync always``.
A Pacer dispatch waits for two such PostgreSQL statements in turn (its enqueue, then the
worker's claim); a Huey or Celery dispatch for one Redis write and the worker's wake-up.

The last rows are each backend's floor for a dispatch: from sending a write until another
process, blocked waiting for it, has it. On PostgreSQL a one-row durable INSERT with a
``pg_notify`` in the same statement, to a process in ``LISTEN`` (no execution log, no claim:
less than any durable PostgreSQL queue can do); on Redis an ``LPUSH`` to a process in
``BRPOP`` (what a Huey or RQ dispatch is, less the framework).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness
from base import REDIS_URL, Peer, Settings

from pacer.domain.runs import adhoc_run
from pacer.services.clock import SystemClock
from pacer.stores.sqlalchemy import onetrip
from pacer.stores.sqlalchemy.dialects import NOTIFY_CHANNEL
from pacer.stores.sqlalchemy.migrate import upgrade
from pacer.stores.sqlalchemy.store import _json_text

GAP_S = 0.02
CHANNEL = "round_trips_floor"


def receive(backend: str, url: str) -> None:
    """The floor's receiving process: wait as a worker would, print when each write arrives."""
    print("ready", flush=True)
    if backend == "postgresql":
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            for _ in conn.notifies():
                print(time.perf_counter(), flush=True)
    else:
        client = redis.Redis.from_url(url)
        while True:
            client.brpop([CHANNEL])
            print(time.perf_counter(), flush=True)


class Receiver:
    """A ``receive`` process, and the time from each send to its arrival there.

    ``time.perf_counter`` is the system's monotonic clock on Linux, shared by processes."""

    def __init__(self, backend: str, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--receive", backend, url],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline() != "ready\n":
            raise RuntimeError(f"the {backend} receiver did not start")
        self.sent: list[float] = []

    def arrivals_ms(self, skip: int) -> list[float]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        arrived = [float(line) for line in out.split()]
        if len(arrived) != len(self.sent):
            raise RuntimeError(f"sent {len(self.sent)} writes, {len(arrived)} arrived")
        return [(a - s) * 1000 for s, a in zip(self.sent, arrived, strict=True)][skip:]


def _enqueue_params() -> dict[str, str]:
    now = SystemClock().now()
    run = adhoc_run({"kind": "python", "function": "exec_log:record"}, now, now, None)
    return {"rows": _json_text(onetrip.runs_json([run])), "channel": NOTIFY_CHANNEL}


async def measure(calls: int) -> None:
    scratch = Peer(Settings())  # its fresh-database helpers
    scratch.name = "round_trips"
    url = scratch.create_database()
    try:
        upgrade(scratch.url("postgresql+psycopg"))
        with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
            redises = {"redis": redis.Redis.from_url(REDIS_URL)}
            try:
                durable = stack.enter_context(harness.durable_redis(Path(folder)))
                redises["redis fsync always"] = redis.Redis.from_url(durable)
            except (OSError, RuntimeError) as exc:
                print(f"(no durable Redis: {exc})")
            await _compare(url, redises, calls)
    finally:
        scratch.drop_database()


async def _compare(url: str, redises: dict[str, redis.Redis], calls: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await conn.execute("CREATE TABLE one_row (n int)")
    enqueue = onetrip.enqueue_statement("id").text
    enqueue = enqueue.replace(":rows", "%(rows)s").replace(":channel", "%(channel)s")

    async def pg(sql: str, params: Callable[[], dict[str, str]] | None = None) -> None:
        cursor = await conn.execute(sql, params() if params else None, prepare=True)  # type: ignore[arg-type]
        if cursor.description is not None:
            await cursor.fetchall()

    steps: dict[str, Callable[[], Awaitable[object]]] = {
        "postgresql SELECT 1": lambda: pg("SELECT 1"),
        "postgresql one-row INSERT (durable)": lambda: pg("INSERT INTO one_row VALUES (1)"),
        "postgresql Pacer's enqueue statement": lambda: pg(enqueue, _enqueue_params),
    }
    receivers = {"postgresql floor: INSERT + NOTIFY to LISTEN": Receiver("postgresql", url)}
    notify = (
        f"WITH i AS (INSERT INTO one_row VALUES (2) RETURNING n) "
        f"SELECT pg_notify('{CHANNEL}', '') FROM i"
    )

    async def floor_pg(
        r: Receiver = receivers["postgresql floor: INSERT + NOTIFY to LISTEN"],
    ) -> None:
        r.sent.append(time.perf_counter())
        await pg(notify)

    steps["postgresql floor: INSERT + NOTIFY to LISTEN"] = floor_pg
    for label, client in redises.items():
        # Synchronous calls, as the peers' enqueues are; nothing else runs on this loop.
        async def ping(c: redis.Redis = client) -> None:
            c.ping()

        async def lpush(c: redis.Redis = client) -> None:
            c.lpush("round_trips", "x")

        steps[f"{label} PING"], steps[f"{label} LPUSH"] = ping, lpush
        name = f"{label} floor: LPUSH to BRPOP"
        url_of = client.connection_pool.connection_kwargs
        receiver = receivers[name] = Receiver(
            "redis", f"redis://{url_of['host']}:{url_of['port']}/{url_of.get('db', 0)}"
        )

        async def floor_redis(c: redis.Redis = client, r: Receiver = receiver) -> None:
            r.sent.append(time.perf_counter())
            c.lpush(CHANNEL, "x")

        steps[name] = floor_redis
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(calls + 10):
        for name, step in steps.items():
            began = time.perf_counter()
            await step()
            if index >= 10:  # the first calls prepare statements and open connections
                times[name].append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(GAP_S)
    await asyncio.sleep(0.5)  # the last arrivals
    for name, receiver in receivers.items():
        times[name] = receiver.arrivals_ms(skip=10)
    await conn.close()
    for client in redises.values():
        client.delete("round_trips")
    print(f"{'ms, one call every 20 ms':46} {'p50':>6} {'p90':>6} {'p99':>6}")
    for name, values in times.items():
        q = [harness.percentile(values, p) for p in (50, 90, 99)]
        print(f"{name:46} {q[0]:6.2f} {q[1]:6.2f} {q[2]:6.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--receive"]:
        receive(*sys.argv[2:4])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--calls", type=int, default=300)
        asyncio.run(measure(parser.parse_args().calls))
