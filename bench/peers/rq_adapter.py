"""RQ: `rq worker` processes (one job at a time each, a forked work horse per job) on Redis."""

from __future__ import annotations

import sys
from datetime import datetime

import exec_log
from base import REDIS_URL, Peer, flush_redis
from redis import Redis
from rq import Queue, Retry

JOB_TIMEOUT_S = 10  # a killed job is found abandoned after its timeout; the default is 180 s


class RqPeer(Peer):
    name = "rq"
    backend = "redis"
    package = "rq"
    # One job at a time per process: 1,000 jobs of 0.5-1 s would take over 6 minutes.
    crash_jobs = 100

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.queue = Queue("bench", connection=Redis.from_url(REDIS_URL))
        self.notes = (
            "`rq worker --with-scheduler --maintenance-interval 1` (the default worker: one job "
            f"at a time, a forked horse per job), `Retry(max=3)`, job timeout {JOB_TIMEOUT_S} s, "
            "`enqueue_at` for scheduled jobs; crash workload with 100 jobs, not 1,000"
        )

    async def reset(self) -> None:
        flush_redis()

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        if due is not None:
            for key in keys:
                self.queue.enqueue_at(
                    due,
                    exec_log.record,
                    key,
                    sleep_s,
                    retry=Retry(max=3),
                    job_timeout=JOB_TIMEOUT_S,
                )
            return
        options = {"retry": Retry(max=3), "timeout": JOB_TIMEOUT_S}
        for start in range(0, len(keys), 1000):
            jobs = [
                Queue.prepare_data(exec_log.record, args=(key, sleep_s), **options)
                for key in keys[start : start + 1000]
            ]
            self.queue.enqueue_many(jobs)

    def worker_command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--with-scheduler",
            "--maintenance-interval", "1", "--logging_level", "WARNING", "bench",
        ]  # fmt: skip

    async def close(self) -> None:
        flush_redis()
