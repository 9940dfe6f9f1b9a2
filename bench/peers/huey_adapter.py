"""Huey: `huey_consumer` processes with worker threads, Redis storage."""

from __future__ import annotations

import sys
from datetime import datetime

import exec_log
from base import REDIS_URL, Peer, flush_redis
from huey import RedisHuey

huey = RedisHuey("bench", url=REDIS_URL, utc=True)


@huey.task(retries=3)
def record(key: str, sleep_s: float = 0.0) -> None:
    exec_log.record(key, sleep_s)


class HueyPeer(Peer):
    name = "huey"
    backend = "redis"
    package = "huey"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.notes = (
            f"`huey_consumer -k thread -w {settings.concurrency}` per worker, `retries=3`, "
            "`schedule(eta=…)` for scheduled jobs (its scheduler ticks each second); Huey has no "
            "acknowledgements, so a dequeued job dies with its worker"
        )

    async def reset(self) -> None:
        flush_redis()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        for key in keys:
            if due is None:
                record(key, sleep_s)
            else:
                record.schedule(args=(key, sleep_s), eta=due.replace(tzinfo=None))

    def worker_command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "huey.bin.huey_consumer", "huey_adapter.huey", "-k", "thread",
            "-w", str(self.settings.concurrency), "-q",
        ]  # fmt: skip

    async def close(self) -> None:
        flush_redis()
