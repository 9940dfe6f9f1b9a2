"""Pacer: ``pacer worker`` processes over a fresh PostgreSQL database."""

from __future__ import annotations

import sys
from datetime import datetime

from base import Peer

from pacer.domain.runs import adhoc_run
from pacer.services.clock import SystemClock
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade

BATCH = 250


class PacerPeer(Peer):
    name = "pacer"
    backend = "postgresql"
    package = "pacer"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.store: SqlStore | None = None
        # As bench/throughput.py: claim batches of 250, up to 500 runs at once per process
        # for no-op runs; the crash workload's 0.5 s runs use the shared concurrency.
        self.concurrency = 500
        self.notes = (
            f"`pacer worker`, concurrency {self.concurrency} (crash: {settings.concurrency}), "
            f"claim batch {BATCH}, one `pacer scheduler` (its reaper), lease {settings.redelivery_s:g} s, NOTIFY wake-up, poll 0.5 s"
        )

    async def reset(self) -> None:
        if self.store is not None:
            await self.store.close()
        url = self.create_database().replace("postgresql", "postgresql+psycopg", 1)
        upgrade(url)
        self.store = SqlStore(url)

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        assert self.store is not None
        now = SystemClock().now()
        action = {"kind": "python", "function": "exec_log:record_async"}
        runs = [
            adhoc_run(
                dict(action), due or now, now, None, parameters={"key": k, "sleep_s": sleep_s}
            )
            for k in keys
        ]
        for start in range(0, len(runs), 1000):
            await self.store.enqueue(runs[start : start + 1000])

    def worker_command(self, index: int) -> list[str]:
        return [sys.executable, "-m", "pacer.cli", "worker"]

    def service_commands(self) -> list[list[str]]:
        # The scheduler's reaper hands runs of a vanished worker to another attempt.
        return [[sys.executable, "-m", "pacer.cli", "scheduler"]]

    def worker_env(self) -> dict[str, str]:
        lease = self.settings.redelivery_s
        return {
            "PACER_DATABASE_URL": self.url("postgresql+psycopg"),
            "PACER_CONFIG_FILE": "/nonexistent",
            "PACER_CONCURRENCY": str(self.settings.concurrency if self.crash else self.concurrency),
            "PACER_BATCH": str(BATCH),
            "PACER_POLL_S": "0.5",
            "PACER_LEASE_S": str(lease),
            "PACER_HEARTBEAT_S": str(lease / 3),
            "PACER_GRACE_S": "2",
            "PACER_LOG_LEVEL": "WARNING",
        }

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
            self.store = None
        self.drop_database()
