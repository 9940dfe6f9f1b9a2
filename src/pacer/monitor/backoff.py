"""Exponential backoff with full jitter, cut short by a stop request.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads the reconnects of
many monitors after a server restart, instead of having them all knock at the same instants.
The ceiling is reset after progress, so one failure after hours of health waits a moment, not
the cap. A small class was preferred to ``tenacity`` here because the loop must also wake at
once on SIGTERM and decide per error whether to switch transports.
"""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Pauses of ``uniform(0, min(cap, base * 2**failures))`` seconds."""

    def __init__(self, base: float = 0.1, cap: float = 5.0, rng: random.Random | None = None):
        self.base, self.cap, self.failures = base, cap, 0
        self._rng = rng or random.Random()

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures = min(self.failures + 1, 32)
        return self._rng.uniform(0, ceiling)

    async def pause(self, stop: asyncio.Event) -> None:
        """Wait the next delay, or less if ``stop`` is set meanwhile."""
        try:
            async with asyncio.timeout(self.next_delay()):
                await stop.wait()
        except TimeoutError:
            pass
