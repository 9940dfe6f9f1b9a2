"""Functions for tests, benchmarks and demos: python actions with known behaviour.

Shipped with the library (as structlog ships ``structlog.testing``) so that a worker process
started anywhere can run them by name, e.g. ``{"kind": "python", "function": "pacer.testing:noop"}``.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def noop(**_: Any) -> None:
    """Does nothing: measures Pacer's own overhead per run."""


async def sleep(seconds: float = 1.0, **_: Any) -> float:
    """Holds a run for a while, to test leases, cancellation and shutdown."""
    await asyncio.sleep(seconds)
    return seconds


def fail(message: str = "failed on purpose", **_: Any) -> None:
    """Always raises: exercises retries and backoff."""
    raise RuntimeError(message)
