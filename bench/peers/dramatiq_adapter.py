"""Dramatiq: `dramatiq` worker processes with threads, Redis broker."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import dramatiq
import exec_log
from base import REDIS_URL, Peer, flush_redis
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(
    url=REDIS_URL,
    heartbeat_timeout=3_000,  # ms: Settings.redelivery_s; a dead worker's messages come back
    maintenance_chance=100_000,  # in a million fetches (default 1,000): recovery within seconds
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=3)
def record(key: str, sleep_s: float = 0.0) -> None:
    exec_log.record(key, sleep_s)


class DramatiqPeer(Peer):
    name = "dramatiq"
    backend = "redis"
    package = "dramatiq"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.notes = (
            f"`dramatiq --processes 1 --threads {settings.concurrency}` per worker, default "
            f"prefetch, heartbeat_timeout {settings.redelivery_s:g} s, maintenance_chance 10%, "
            "`send_with_options(delay=…)` for scheduled jobs"
        )

    async def reset(self) -> None:
        flush_redis()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        delay = None
        if due is not None:
            delay = max(0, int((due - datetime.now(UTC)).total_seconds() * 1000))
        for key in keys:
            record.send_with_options(args=(key, sleep_s), delay=delay)

    def worker_command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "dramatiq", "dramatiq_adapter", "--processes", "1",
            "--threads", str(self.settings.concurrency), "--queues", "bench",
        ]  # fmt: skip

    async def close(self) -> None:
        flush_redis()
