"""APScheduler 4 (pre-release): schedulers over its SQLAlchemy data store on PostgreSQL.

APScheduler 3.x keeps jobs in its own process only (nothing to share between worker
processes), so the 4.0 pre-release is measured: the only line with a shared PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime

import exec_log
from apscheduler import AsyncScheduler
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.eventbrokers.psycopg import PsycopgEventBroker
from apscheduler.triggers.date import DateTrigger
from base import Peer
from sqlalchemy.ext.asyncio import create_async_engine


def scheduler(url: str, **options: object) -> tuple[AsyncScheduler, object]:
    engine = create_async_engine(url)
    store = SQLAlchemyDataStore(engine)
    broker = PsycopgEventBroker.from_async_sqla_engine(engine)
    return AsyncScheduler(store, broker, **options), engine


class ApschedulerPeer(Peer):
    name = "apscheduler"
    backend = "postgresql"
    package = "apscheduler"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.scheduler: AsyncScheduler | None = None
        self.engine = None
        self.notes = (
            f"4.0.0 pre-release; one `AsyncScheduler` per worker process (role both), "
            f"SQLAlchemy data store + psycopg event broker, max_concurrent_jobs "
            f"{settings.concurrency}, lease {settings.redelivery_s:g} s; jobs added with "
            "`add_job`, scheduled ones with `add_schedule(DateTrigger)`"
        )

    async def reset(self) -> None:
        await self._stop()
        self.create_database()
        self.scheduler, self.engine = scheduler(self.url("postgresql+psycopg"), role="scheduler")
        await self.scheduler.__aenter__()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        assert self.scheduler is not None
        add = self.scheduler.add_job if due is None else self.scheduler.add_schedule
        extra = () if due is None else (DateTrigger(due),)
        # One transaction per job and no batch call: 20 at a time to keep up with a 2 s lead.
        for start in range(0, len(keys), 20):
            await asyncio.gather(
                *(
                    add(exec_log.record_async, *extra, args=(key, sleep_s))
                    for key in keys[start : start + 20]
                )
            )

    def worker_command(self, index: int) -> list[str]:
        return [
            sys.executable,
            __file__,
            str(self.settings.concurrency),
            str(self.settings.redelivery_s),
        ]

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_PG_URL": self.url("postgresql+psycopg")}

    async def _stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.__aexit__(None, None, None)
            await self.engine.dispose()  # type: ignore[attr-defined]
            self.scheduler = None

    async def close(self) -> None:
        await self._stop()
        self.drop_database()


async def work(concurrency: int, lease_s: float) -> None:
    worker, _ = scheduler(
        os.environ["BENCH_PG_URL"], max_concurrent_jobs=concurrency, lease_duration=lease_s
    )
    async with worker:
        await worker.run_until_stopped()


if __name__ == "__main__":
    asyncio.run(work(int(sys.argv[1]), float(sys.argv[2])))
