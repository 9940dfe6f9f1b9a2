"""procrastinate: its own worker (asyncio) over a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime

import exec_log
import procrastinate
from base import Peer


def make_app(conninfo: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="record", queue="bench")
    async def record(key: str, sleep_s: float = 0.0) -> None:
        await exec_log.record_async(key, sleep_s)

    return app


class ProcrastinatePeer(Peer):
    name = "procrastinate"
    backend = "postgresql"
    package = "procrastinate"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.app: procrastinate.App | None = None
        # 50 drained faster than 10 or 500 in a trial (293, 293 and 179 jobs/s, 1 worker).
        self.concurrency = settings.concurrency
        self._recovered = 0.0
        self.notes = (
            f"its worker, concurrency {self.concurrency}, LISTEN/NOTIFY, "
            f"heartbeat every {settings.redelivery_s / 3:g} s; stalled jobs retried by the documented "
            f"recipe (`get_stalled_jobs` + `retry_job`, run each second by the harness, "
            f"{settings.redelivery_s:g} s without heartbeat)"
        )

    async def reset(self) -> None:
        await self._close_app()
        self.app = make_app(self.create_database())
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        assert self.app is not None
        task = self.app.tasks["record"]
        deferrer = task.configure(schedule_at=due) if due else task
        for start in range(0, len(keys), 1000):
            await deferrer.batch_defer_async(
                *({"key": k, "sleep_s": sleep_s} for k in keys[start : start + 1000])
            )

    def worker_command(self, index: int) -> list[str]:
        concurrency = self.settings.concurrency if self.crash else self.concurrency
        return [sys.executable, __file__, str(concurrency), str(self.settings.redelivery_s / 3)]

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_PG_URL": self.url()}

    async def recover(self) -> None:
        if self.app is None or time.monotonic() - self._recovered < 1:
            return
        self._recovered = time.monotonic()
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.redelivery_s)
        for job in stalled:
            await manager.retry_job(job)

    async def _close_app(self) -> None:
        if self.app is not None:
            await self.app.close_async()
            self.app = None

    async def close(self) -> None:
        await self._close_app()
        self.drop_database()


async def work(concurrency: int, heartbeat_s: float) -> None:
    app = make_app(os.environ["BENCH_PG_URL"])
    async with app.open_async():
        await app.run_worker_async(
            queues=["bench"],
            concurrency=concurrency,
            update_heartbeat_interval=heartbeat_s,
            stalled_worker_timeout=heartbeat_s * 3,
            install_signal_handlers=True,
        )


if __name__ == "__main__":
    asyncio.run(work(int(sys.argv[1]), float(sys.argv[2])))
