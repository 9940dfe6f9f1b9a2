"""Helpers shared by the tests (imported as ``support``; fixtures stay in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pacer.settings import Settings


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
