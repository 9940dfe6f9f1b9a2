"""The one interface every system under test implements, and helpers they share."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

import psycopg

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# A Redis database of its own, emptied before each workload.
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Settings:
    """What every worker process is given, so the systems are compared like for like."""

    concurrency: int = 50  # jobs one worker process runs at once (threads or asyncio tasks)
    redelivery_s: float = 3.0  # lease / visibility / heartbeat timeout after which work returns


class Peer:
    """One system under test. The harness calls these; each adapter fills them in."""

    name = ""
    backend = ""  # "postgresql" or "redis"
    package = ""  # the distribution whose version is reported
    notes = ""  # settings, in one line, for the table's notes
    missing = ""  # non-empty: not measured, and why

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = ""
        self.crash = False  # set by the harness for the crash workload (slow jobs)

    def version(self) -> str:
        return version(self.package)

    async def reset(self) -> None:
        """Fresh, empty backend state for the next workload."""
        raise NotImplementedError

    async def enqueue(
        self, keys: list[str], sleep_s: float = 0.0, due: datetime | None = None
    ) -> None:
        """Submit one job per key, due now or at ``due``; each runs ``record(key, sleep_s)``."""
        raise NotImplementedError

    def worker_command(self, index: int) -> list[str]:
        """The command line of one worker process."""
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        return {}

    def service_commands(self) -> list[list[str]]:
        """Other processes a deployment runs beside the workers (never killed by the crash)."""
        return []

    async def recover(self) -> None:
        """Run the system's documented recovery step, where it has no automatic one."""

    async def close(self) -> None:
        self.drop_database()

    # PostgreSQL helpers: a fresh database per workload, dropped afterwards.
    def create_database(self) -> str:
        self.drop_database()
        self.database = f"peers_{self.name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        return self.url()

    def url(self, driver: str = "postgresql") -> str:
        return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql", driver, 1) + f"/{self.database}"

    def drop_database(self) -> None:
        if self.database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = ""


def flush_redis() -> None:
    """Empty this benchmark's own Redis database (never the others)."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
