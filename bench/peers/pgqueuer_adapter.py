"""pgqueuer: a QueueManager (asyncio, psycopg) over a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import exec_log
import psycopg
from base import Peer
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain.models import Job

BATCH = 250


class PgqueuerPeer(Peer):
    name = "pgqueuer"
    backend = "postgresql"
    package = "pgqueuer"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.conn: psycopg.AsyncConnection | None = None
        self.concurrency = 500
        self.notes = (
            f"a `QueueManager` per process, dequeue batch {BATCH}, max_concurrent_tasks "
            f"{self.concurrency} (crash: batch 10, {settings.concurrency}), LISTEN/NOTIFY, "
            f"heartbeat_timeout {settings.redelivery_s:g} s (stale jobs are picked again)"
        )

    async def reset(self) -> None:
        await self._disconnect()
        url = self.create_database()
        self.conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        await Queries(PsycopgDriver(self.conn)).install()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        assert self.conn is not None
        queries = Queries(PsycopgDriver(self.conn))
        after = max(due - datetime.now(UTC), timedelta(0)) if due else None
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            await queries.enqueue(
                ["record"] * len(chunk),
                [json.dumps({"key": k, "sleep_s": sleep_s}).encode() for k in chunk],
                [0] * len(chunk),
                [after] * len(chunk) if after is not None else None,
            )

    def worker_command(self, index: int) -> list[str]:
        batch, concurrency = (
            (10, self.settings.concurrency) if self.crash else (BATCH, self.concurrency)
        )
        return [
            sys.executable,
            __file__,
            str(batch),
            str(concurrency),
            str(self.settings.redelivery_s),
        ]

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_PG_URL": self.url()}

    async def _disconnect(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def close(self) -> None:
        await self._disconnect()
        self.drop_database()


async def work(batch: int, concurrency: int, heartbeat_s: float) -> None:
    conn = await psycopg.AsyncConnection.connect(os.environ["BENCH_PG_URL"], autocommit=True)
    manager = QueueManager(Queries(PsycopgDriver(conn)))

    @manager.entrypoint("record")
    async def record(job: Job) -> None:
        assert job.payload is not None
        await exec_log.record_async(**json.loads(job.payload))

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, manager.shutdown.set)
    await manager.run(
        batch_size=batch,
        max_concurrent_tasks=concurrency,
        heartbeat_timeout=timedelta(seconds=heartbeat_s),
    )


if __name__ == "__main__":
    asyncio.run(work(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
