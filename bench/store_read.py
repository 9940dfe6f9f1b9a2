"""One store read in a loop on a fresh SQLite file: the latency of a call's trips to the driver.

    .venv/bin/python bench/store_read.py [--calls 300]

Side by side with another commit: ``PYTHONPATH=<worktree>/src .venv/bin/python
bench/store_read.py`` for the other side. Prints p50 / p90 of ``SqlStore.next_due_at()``, a
one-row read, after 50 warm-up calls. This is how the move from aiosqlite to ``sqlite3`` driven
in place (``stores/sqlalchemy/onloop.py``) was measured (docs/ARCHITECTURE.md, "The store").
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'pacer.db'}"
        upgrade(url)
        store = SqlStore(url)
        try:
            for _ in range(50):
                await store.next_due_at()
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                await store.next_due_at()
                times.append((time.perf_counter() - start) * 1000)
        finally:
            await store.close()
    times.sort()
    p50, p90 = times[len(times) // 2], times[int(len(times) * 0.9)]
    print(f"next_due_at over {calls} calls: p50 {p50:.2f} ms, p90 {p90:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
