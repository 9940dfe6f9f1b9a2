"""Sampling utilization finely and closing it into windows (30 s by default).

Windows are aligned to the epoch (a 30 s window ends at :00 or :30), so every process and
every client agrees on where a window starts, and a restarted server closes the same windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from pacer.domain.resources import ResourceWindow, Sample, aggregate
from pacer.ports import Clock, ResourceSampler, WindowStore

log = logging.getLogger(__name__)


class ResourceService:
    def __init__(
        self,
        sampler: ResourceSampler | None,
        store: WindowStore,
        clock: Clock,
        window_s: float = 30.0,
        interval_s: float = 1.0,
    ) -> None:
        self.sampler, self.store, self.clock = sampler, store, clock
        self.window_s, self.interval_s = window_s, interval_s
        self._samples: list[Sample] = []

    async def latest(self) -> ResourceWindow | None:
        return await self.store.latest_window()

    async def since(self, since_ms: int, limit: int) -> list[ResourceWindow]:
        return await self.store.windows_since(since_ms, limit)

    def tick(self) -> ResourceWindow | None:
        """Take one sample; returns the window it closed, if any."""
        assert self.sampler is not None
        at = self.clock.now().timestamp()
        self._samples.append(self.sampler.sample(at))
        first = self._samples[0].at
        start = math.floor(first / self.window_s) * self.window_s
        end = start + self.window_s
        if at < end:
            return None
        inside = [s for s in self._samples if s.at <= end]
        self._samples = [s for s in self._samples if s.at > end]
        return aggregate(inside, start, end)

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every ``interval_s`` until ``stop``; store each window as it closes."""
        if self.sampler is None:
            return
        while not stop.is_set():
            try:
                window = self.tick()
                if window is not None:
                    await self.store.add_window(window)
            except Exception:  # a failed sample or write loses one window, not the server
                log.exception("resource sampling failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
