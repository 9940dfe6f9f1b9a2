"""Reading the execution log: pages, long polls, a live stream, consumers and pruning.

Waiting readers are woken at once by this process's own commits (``notify``, wired to the
store's after-commit signal) and, for commits of other processes, by a short re-check of the
log (``recheck_s``): a PK-range read that costs next to nothing, so the service needs no
LISTEN connection per reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from pacer.domain.errors import InvalidInput
from pacer.domain.events import Consumer, Missed, RunEvent
from pacer.ports import Clock, EventLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventPage:
    items: list[RunEvent]
    next_after: int
    missed: Missed | None


@dataclass(frozen=True)
class Retention:
    """Acknowledged events are kept ``keep_s``; nothing is kept past ``hard_s``, acknowledged
    or not (a consumer gone for good must not grow the log forever)."""

    keep_s: float = 86_400.0
    hard_s: float = 30 * 86_400.0


class EventService:
    def __init__(
        self,
        log_: EventLog,
        clock: Clock,
        retention: Retention | None = None,
        recheck_s: float = 0.05,
    ) -> None:
        self.log, self.clock = log_, clock
        self.retention = retention or Retention()
        self.recheck_s = recheck_s
        self._changed = asyncio.Event()
        self._closed = False

    def close(self) -> None:
        """Server shutdown: long polls answer now and streams end, so the HTTP server can
        stop without waiting for readers that would otherwise never finish."""
        self._closed = True
        self._changed.set()

    def notify(self) -> None:
        """After-commit hook: wake every waiting reader of this process."""
        self._changed.set()

    async def page(self, after: int, limit: int, wait_s: float = 0.0) -> EventPage:
        """Events after ``after``; with ``wait_s`` answers as soon as there is one (long poll)."""
        if after < 0:
            raise InvalidInput("after", "must be 0 or more")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            self._changed.clear()  # before the read: a commit after it wakes the wait below
            items = await self.log.read(after, limit)
            remaining = deadline - loop.time()
            if items or remaining <= 0 or self._closed:
                break
            await self._wait(min(remaining, self.recheck_s))
        missed = await self.log.missed(after)
        next_after = items[-1].position if items and items[-1].position else after
        if missed is not None:
            next_after = max(next_after, missed.last)
        return EventPage(items, next_after, missed)

    async def stream(self, after: int, batch: int = 500) -> AsyncIterator[RunEvent | Missed]:
        """Every event after ``after`` until the service closes; a ``Missed`` first if pruning
        got there first."""
        while not self._closed:
            page = await self.page(after, batch, wait_s=1.0)
            if page.missed is not None and page.missed.last > after:
                yield page.missed
            for event in page.items:
                yield event
            after = page.next_after

    async def _wait(self, seconds: float) -> None:
        """Until this process commits events, or ``seconds`` pass (other processes' commits
        are found by the caller's next read)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def acknowledge(self, name: str, position: int) -> Consumer:
        """``name`` has stored everything up to ``position``; 0 to the head, and lower than
        its last one too. A rewind is the reader's word on what it holds: a hard prune moves a
        lagging consumer past what it deleted, and the reader then acknowledges what it
        really committed, which is lower; a reader whose store was lost or restored from a
        backup says where it starts again, and pruning keeps what follows from then on.
        Events already pruned do not come back: the reader's page says what it missed."""
        if position < 0:
            raise InvalidInput("position", "must be 0 or more")
        head = await self.log.head()
        if position > head:
            raise InvalidInput("position", f"is past the newest event ({head})")
        return await self.log.acknowledge(name, position, self.clock.now())

    async def consumer(self, name: str) -> Consumer:
        return await self.log.consumer(name)

    async def prune(self) -> int:
        """One pruning pass; logs loudly when a consumer lost events it had not acknowledged."""
        now = self.clock.now()
        keep_after = now - timedelta(seconds=self.retention.keep_s)
        hard_before = now - timedelta(seconds=self.retention.hard_s)
        removed = await self.log.prune(keep_after, hard_before, now)
        if removed:
            log.info("pruned %d events from the execution log", removed)
        return removed

    async def prune_forever(self, stop: asyncio.Event, every_s: float = 60.0) -> None:
        while not stop.is_set():
            try:
                await self.prune()
            except Exception:  # pruning is housekeeping: log, and try again next time
                log.exception("pruning the execution log failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
