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
from pacer.monitor.executions import Execution
from pacer.monitor.offloop import OffLoop
from pacer.monitor.store import MonitorStore

log = logging.getLogger(__name__)
FINAL_KINDS = {"succeeded", "failed", "retrying", "cancelled", "skipped"}
#: ``POST /delay`` requests in flight at once.
POSTS = 16


@dataclass(frozen=True)
class Span:
    query_id: str | None
    start: float
    end: float | None


def _epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


class PacingLoop:
    def __init__(
        self,
        store: MonitorStore,
        client: MonitorClient,
        config: PacerConfig,
        io: OffLoop | None = None,
    ) -> None:
        self.store, self.client, self.config = store, client, config
        #: Where the store's calls run once the loop is running: never on it (``offloop.py``).
        self.io = io or OffLoop()
        self.pacer = Pacer(config)
        self.position, state = store.pacer()
        self.pacer.restore(state)
        #: Close time (epoch ms) of the newest window fed to the pacer.
        self._last_window: int | None = None
        #: The executions that can still overlap a window to come, by (run id, attempt), read
        #: from the store up to log position ``_read_up_to``; every query id ever seen.
        self._spans: dict[tuple[str, int], Span] = {}
        self._read_up_to = -1
        self._query_ids: set[str] = set()
        self._wake = asyncio.Event()
        self._posting: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(POSTS)
        self._failure: BaseException | None = None
        self.delayed = 0

    def committed(self, _position: int) -> None:
        """The follower's after-commit hook: there may be new events to act on."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self._learn()
        try:
            while not stop.is_set():
                self._wake.clear()
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
        finally:
            await asyncio.gather(*self._posting, return_exceptions=True)

    async def step(self) -> None:
        """Act on every committed event not acted on yet, then save the state.

        Decisions are taken in log order at once; the delays they call for are posted in the
        background, concurrently. Waiting for each ``POST /delay`` answer before deciding on
        the next event let a surge of queued executions start before their delays arrived (on
        a busy server, most of them)."""
        if self._failure is not None:
            raise self._failure
        await self._learn()
        events = await self.io(self.store.events_after, self.position)
        delays = [delay for event in events if (delay := self._act(event)) is not None]
        if delays:
            posting = asyncio.create_task(self._post(delays))
            self._posting.add(posting)
            posting.add_done_callback(self._posting.discard)
        if events:
            self.position = events[-1].position
            decisions = self.pacer.take_decisions()
            await self.io(self.store.save_pacer, self.position, self.pacer.to_state(), decisions)
        await asyncio.sleep(0)  # the posts leave before the next batch is read

    def _act(self, event: Event) -> tuple[str, float] | None:
        """Feed one event to the pacer; a queued execution to postpone gives (run id, ms)."""
        if event.kind == "queued" and event.scheduled_at is not None:
            due = _epoch(event.scheduled_at) or time.time()
            delay = self.pacer.decide(event.run_id, event.query_id, due, time.time())
            if delay > 0.001:
                return event.run_id, delay * 1000
        elif event.kind == "started" and event.started_at is not None:
            self.pacer.started(event.run_id, _epoch(event.started_at) or time.time())
        elif event.kind in FINAL_KINDS and event.started_at and event.finished_at:
            start, end = _epoch(event.started_at), _epoch(event.finished_at)
            assert start is not None
            assert end is not None
            self.pacer.finished(event.run_id, event.query_id, start, end)
        return None

    async def _post(self, delays: list[tuple[str, float]]) -> None:
        """Post the delays (at most ``POSTS`` at once across batches). One that fails
        transiently is not retried: by the next try the execution has usually started, and its
        ``started`` event moves its load in the plan to the real start, as for one posted too
        late. Any other error (a revoked token) ends the loop at its next step."""

        async def post(run_id: str, delay_ms: float) -> bool:
            async with self._limit:
                return await self.client.delay(run_id, delay_ms)

        answers = await asyncio.gather(*(post(*d) for d in delays), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, TransientError):
                log.warning("pacing: %s", answer)
            elif isinstance(answer, BaseException):
                self._failure = answer
                self._wake.set()
            elif answer:
                self.delayed += 1

    async def _learn(self) -> None:
        """Feed the windows captured since the last call, with the executions around them."""
        rows = await self.io(self.store.resources, after=self._last_window)
        if not rows:
            return
        fresh = [_window(row, self.config.window_s) for row in rows]
        self._last_window = int(rows[-1]["timestamp"])
        changed = await self.io(self.store.attempts, changed_after=self._read_up_to)
        self.pacer.learn([w for w in fresh if w is not None], self._current_spans(changed))
        self._forget(self._last_window / 1000 - 2 * self.config.window_s)

    def _current_spans(self, changed: list[Execution]) -> list[Span]:
        """The executions the pacer learns from, read incrementally.

        Reading every execution the monitor ever stored at each new window grew without
        bound (a week at 10 runs/s is 6 million rows per window). Only the attempts changed
        since the last read are read and kept until no later window can overlap them. The
        estimator still sees every query id it would have seen (it gives each a column), so
        each query no longer running is passed as one empty span at the epoch, which
        overlaps no window: what it learns is the same as from every execution."""
        for execution in changed:
            self._read_up_to = max(self._read_up_to, execution.last_position)
            start = _epoch(execution.started_at)
            if start is None:
                continue
            key = (execution.run_id, execution.attempt)
            self._spans[key] = Span(execution.query_id, start, _epoch(execution.finished_at))
            if execution.query_id is not None:
                self._query_ids.add(execution.query_id)
        spans = [self._spans[key] for key in sorted(self._spans)]
        present = {span.query_id for span in spans}
        spans += [Span(q, 0.0, 0.0) for q in sorted(self._query_ids - present)]
        return spans

    def _forget(self, horizon: float) -> None:
        """Drop the executions that ended before ``horizon``: every window still to come
        closes after the newest one learnt, so it opens after that less one window length
        (the margin of a second window length is for safety)."""
        ended = [k for k, s in self._spans.items() if s.end is not None and s.end < horizon]
        for key in ended:
            del self._spans[key]


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
