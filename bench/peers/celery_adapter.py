"""Celery: a threads-pool worker per process, Redis as broker, no result backend."""

from __future__ import annotations

import sys
from datetime import datetime

import exec_log
from base import REDIS_URL, Peer, flush_redis
from celery import Celery

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    task_acks_late=True,  # acknowledge after the task ran: at-least-once, as Pacer
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    broker_transport_options={"visibility_timeout": 3},  # Settings.redelivery_s
    worker_hijack_root_logger=False,
)


@app.task(name="record")
def record(key: str, sleep_s: float = 0.0) -> None:
    exec_log.record(key, sleep_s)


class CeleryPeer(Peer):
    name = "celery"
    backend = "redis"
    package = "celery"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.notes = (
            f"`celery worker --pool threads --concurrency {settings.concurrency}`, prefetch "
            f"multiplier 4, `acks_late` + `reject_on_worker_lost`, Redis visibility_timeout "
            f"{settings.redelivery_s:g} s, ETA for scheduled jobs, no result backend"
        )

    async def reset(self) -> None:
        flush_redis()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        with app.producer_or_acquire() as producer:
            for key in keys:
                record.apply_async((key, sleep_s), eta=due, producer=producer)

    def worker_command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "celery_adapter", "worker",
            "--pool", "threads", "--concurrency", str(self.settings.concurrency),
            "--hostname", f"bench{index}@%h", "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip

    async def close(self) -> None:
        flush_redis()
