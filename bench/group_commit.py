"""SQLite writes with and without group commit, alone and beside a neighbour that fsyncs.

    make bench-group-commit      # or: .venv/bin/python bench/group_commit.py [--rounds 3]

Each round posts ``--writes`` ad-hoc runs through ``SqlStore.enqueue`` (what ``POST /tasks``
does), one every ``--every-ms`` on the wall clock (a slow answer does not thin the load), on a
fresh SQLite file, and times each call from its arrival to its return (the commit included).
Two modes, interleaved round by round in one process: *grouped*, as shipped (``writes.py``:
writers queued behind an open transaction share its commit), and *one commit each*
(``GROUP_MAX = 1``, what the store did before). Two settings: the machine as it is, and beside
a *neighbour*, another process writing 500 MB files with ``fsync`` to the same disk (about
what a backup, a log shipper or another database does), which makes some of the store's fsyncs
wait hundreds of milliseconds. Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pacer.domain.runs import adhoc_run
from pacer.stores.sqlalchemy import SqlStore, writes
from pacer.stores.sqlalchemy.migrate import upgrade

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, write_section

NEIGHBOUR = """
import os, sys
path = sys.argv[1]
chunk = b"\\0" * (1 << 20)
while True:
    with open(path, "wb") as f:
        for _ in range(500):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
"""


#: Each round's figures, in the table's order, with their format.
FIGURES = [("rate", ".0f"), ("p50", ".1f"), ("p99", ".0f"), ("max", ".0f"), ("commits", ".0f")]


@contextlib.contextmanager
def neighbour(folder: Path, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    path = folder / "neighbour.bin"
    process = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(path)])
    try:
        time.sleep(1.0)  # its first file is being written
        yield
    finally:
        process.kill()
        process.wait()
        path.unlink(missing_ok=True)


async def one_round(folder: Path, grouped: bool, count: int, every_s: float) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{folder / f'pacer-{time.monotonic_ns()}.db'}"
    upgrade(url)
    store = SqlStore(url)
    old = writes.GROUP_MAX
    writes.GROUP_MAX = old if grouped else 1
    action = {"kind": "sim", "query": "orders"}
    latencies: list[float] = []

    async def post() -> None:
        arrived = time.perf_counter()
        now = datetime.now(UTC)
        await store.enqueue([adhoc_run(action, now + timedelta(hours=1), now, "orders")])
        latencies.append(1000 * (time.perf_counter() - arrived))

    try:
        await post()  # connections opened, statements compiled
        latencies.clear()
        gate = writes.gate_of(store.engine)
        assert gate is not None
        writers = gate.writers()
        groups = writers.groups_committed
        started = time.perf_counter()
        tasks = []
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n * every_s - time.perf_counter()))
            tasks.append(asyncio.create_task(post()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        commits = writers.groups_committed - groups
    finally:
        writes.GROUP_MAX = old
        await store.close()
    latencies.sort()
    return {
        "rate": count / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "max": latencies[-1],
        "commits": commits,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--every-ms", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pacer-group-commit-") as name:
        folder = Path(name)
        for with_neighbour in (False, True):
            results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
            with neighbour(folder, with_neighbour):
                for _ in range(args.rounds):
                    for grouped in (True, False):
                        result = await one_round(folder, grouped, args.writes, args.every_ms / 1000)
                        results[grouped].append(result)
                        print(with_neighbour, grouped, result, flush=True)
            for grouped in (True, False):
                found = results[grouped]
                setting = "a neighbour fsyncing 500 MB files" if with_neighbour else "none"
                mode = "grouped" if grouped else "one commit each"
                cells = [setting, mode] + [
                    " / ".join(format(r[key], spec) for r in found) for key, spec in FIGURES
                ]
                rows.append("| " + " | ".join(cells) + " |")
    offered = 1000 / args.every_ms
    body = f"""## SQLite group commit (`make bench-group-commit`)

Machine: {describe()}. Command: `make bench-group-commit` (`--rounds {args.rounds} --writes {args.writes} --every-ms {args.every_ms:g}`).
{args.writes} `SqlStore.enqueue` calls (one ad-hoc run each, what `POST /tasks` writes) arriving every {args.every_ms:g} ms ({offered:.0f}/s offered) on a fresh SQLite file; each call timed from its arrival to its return, commit included. *Grouped*: writers queued behind an open transaction share its commit (`stores/sqlalchemy/writes.py`); *one commit each*: the same code with `GROUP_MAX = 1`, as before. The modes alternate round by round; one figure per round. See `bench/group_commit.py`.

| neighbour | mode | writes/s | p50 ms | p99 ms | max ms | commits |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
    print(body)
    if not args.no_write:
        write_section("group-commit", body)


if __name__ == "__main__":
    os.environ.setdefault("PACER_LOG_LEVEL", "WARNING")
    asyncio.run(main())
