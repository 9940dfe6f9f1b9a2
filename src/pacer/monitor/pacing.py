"""``pacer monitor --pace``: acts on each newly queued execution as soon as its ``queued``
event is committed locally (from the stream, not a 5-second poll), delaying it with
``POST /delay`` when starting it on time would push a resource window over the target.

Its state — learnt durations, open commitments, and the log position it has acted up to —
is saved in the monitor's SQLite file after each batch; after a SIGKILL it restores that,
relearns costs from the windows and executions the monitor captured, and carries on from the
next unacted event (an event acted on twice would only be re-planned: ``POST /delay`` on an
execution that already started answers 409, which the loop ignores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from pacer.domain.pacer import Pacer, PacerConfig
from pacer.domain.resources import ResourceWindow, Stats
from pacer.monitor.client import MonitorClient, TransientError
from pacer.monitor.events import Event
from pacer.monitor.store import MonitorStore

log = logging.getLogger(__name__)
FINAL_KINDS = {"succeeded", "failed", "retrying", "cancelled", "skipped"}


@dataclass(frozen=True)
class Span:
    query_id: str | None
    start: float
    end: float | None


def _epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


class PacingLoop:
    def __init__(self, store: MonitorStore, client: MonitorClient, config: PacerConfig) -> None:
        self.store, self.client, self.config = store, client, config
        self.pacer = Pacer(config)
        self.position, state = store.pacer()
        self.pacer.restore(state)
        self._windows_seen = 0
        self._wake = asyncio.Event()
        self.delayed = 0

    def committed(self, _position: int) -> None:
        """The follower's after-commit hook: there may be new events to act on."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._learn()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.step()
            except TransientError as exc:
                log.warning("pacing: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def step(self) -> None:
        """Act on every committed event not acted on yet, then save the state."""
        self._learn()
        events = self.store.events_after(self.position)
        for event in events:
            await self._act(event)
            self.position = event.position
        if events:
            decisions = self.pacer.take_decisions()
            self.store.save_pacer(self.position, self.pacer.to_state(), decisions)

    async def _act(self, event: Event) -> None:
        if event.kind == "queued" and event.scheduled_at is not None:
            due = _epoch(event.scheduled_at) or time.time()
            delay = self.pacer.decide(event.run_id, event.query_id, due, time.time())
            if delay > 0.001 and await self.client.delay(event.run_id, delay * 1000):
                self.delayed += 1
        elif event.kind == "started" and event.started_at is not None:
            self.pacer.started(event.run_id, _epoch(event.started_at) or time.time())
        elif event.kind in FINAL_KINDS and event.started_at and event.finished_at:
            start, end = _epoch(event.started_at), _epoch(event.finished_at)
            assert start is not None
            assert end is not None
            self.pacer.finished(event.run_id, event.query_id, start, end)

    def _learn(self) -> None:
        """Feed the windows captured since the last call, with the executions around them."""
        rows = self.store.resources()
        if len(rows) <= self._windows_seen:
            return
        fresh = [_window(row, self.config.window_s) for row in rows[self._windows_seen :]]
        self._windows_seen = len(rows)
        spans = [
            Span(e.query_id, start, _epoch(e.finished_at))
            for e in self.store.attempts()
            if (start := _epoch(e.started_at)) is not None
        ]
        self.pacer.learn([w for w in fresh if w is not None], spans)


def _window(row: dict[str, object], window_s: float) -> ResourceWindow | None:
    try:
        stats = {
            r: Stats(*(float(row[f"{r}_{s}"]) for s in ("average", "min", "max")))  # type: ignore[arg-type]
            for r in ("cpu", "io", "memory")
        }
    except (TypeError, ValueError):
        return None  # a window the server sent without some figure
    end = int(row["timestamp"]) / 1000  # type: ignore[call-overload]
    return ResourceWindow(start=end - window_s, end=end, **stats)
