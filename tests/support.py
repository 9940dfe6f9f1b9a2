"""Helpers shared by the tests (imported as ``support``; fixtures stay in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from pacer.settings import Settings

PG_ADMIN_DSN = os.environ.get("PACER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_pg_database() -> tuple[str, str]:
    """A fresh PostgreSQL database: (its name, its SQLAlchemy URL with postgresql+psycopg)."""
    name = f"pacer_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_databases(names: list[str]) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fast_settings(database_url: str, **overrides: Any) -> Settings:
    """Short leases and heartbeats, so lease expiry is observable in a test."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "lease_s": 2.0,
        "heartbeat_s": 0.25,
        "poll_s": 30.0,
        "grace_s": 2.0,
        "concurrency": 20,
        "config_file": "/nonexistent/pacer.toml",
    }
    return Settings(**{**values, **overrides})


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait until ``check`` holds; the timeout only bounds a broken test, it measures nothing."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)
