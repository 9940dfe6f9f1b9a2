"""``PacingLoop``: the monitor's pacer acting on the events it captured."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacer.domain.pacer import Pacer, PacerConfig
from pacer.domain.resources import ResourceWindow, Stats
from pacer.monitor.client import FatalError, MonitorClient
from pacer.monitor.events import Event, Resources
from pacer.monitor.pacing import PacingLoop, Span, _epoch
from pacer.monitor.store import MonitorStore


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class SlowServer:
    """Stands for the client: each ``POST /delay`` waits until the test opens the gate."""

    def __init__(self, error: Exception | None = None) -> None:
        self.gate, self.error = asyncio.Event(), error
        self.asked: list[tuple[str, float]] = []

    async def delay(self, run_id: str, delay_ms: float) -> bool:
        self.asked.append((run_id, delay_ms))
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return True


def _queued(store: MonitorStore, count: int) -> None:
    """``count`` executions queued at once, all due just after the next 1 s window opens.

    Due at a window's start, an execution (1 s, its duration never seen) lies wholly in that
    window, so how many fit does not depend on the moment the test runs: due "in 100 ms" put
    it anywhere in a window, and one starting late in one window fitted beside another (the
    test then failed about one run in three)."""
    now = datetime.now(UTC).timestamp()
    due = datetime.fromtimestamp(math.floor(now) + 1.0 + 0.001, UTC).isoformat()
    events = [
        Event(n, "queued", f"run-{n}", 1, "orders", scheduled_at=due) for n in range(1, count + 1)
    ]
    store.apply(events, count)


def _loop(tmp_path: Path, server: SlowServer) -> tuple[PacingLoop, MonitorStore]:
    """A loop that has seen one quiet window: a query it never saw costs its wide prior."""
    store = MonitorStore(tmp_path / "monitor.db")
    client: MonitorClient = server  # type: ignore[assignment]
    loop = PacingLoop(store, client, PacerConfig(window_s=1.0))
    quiet = Stats(10.0, 9.0, 11.0)
    now = datetime.now(UTC).timestamp()
    loop.pacer.learn([ResourceWindow(now - 1.0, now, cpu=quiet, io=quiet, memory=quiet)], [])
    return loop, store


async def test_delays_are_posted_together_without_holding_up_the_next_decisions(
    tmp_path: Path,
) -> None:
    """A batch of queued executions is decided and its state saved at once; the delays it
    calls for are all in flight together, not one answer at a time."""
    server = SlowServer()
    loop, store = _loop(tmp_path, server)
    _queued(store, 5)  # at its cautious prior (50 points) one fits under 70 at a time
    await asyncio.wait_for(loop.step(), 1.0)
    assert 5 == store.pacer()[0]
    await asyncio.sleep(0.01)
    assert 4 == len(server.asked)
    server.gate.set()
    for _ in range(100):
        if loop.delayed == 4:
            break
        await asyncio.sleep(0.01)
    assert 4 == loop.delayed


async def test_a_fatal_answer_to_a_delay_ends_the_loop(tmp_path: Path) -> None:
    """A revoked token (401/403) is not retried: the loop's next step raises it."""
    server = SlowServer(FatalError("401 Unauthorized"))
    loop, store = _loop(tmp_path, server)
    _queued(store, 2)
    server.gate.set()
    stop = asyncio.Event()
    with pytest.raises(FatalError):
        await asyncio.wait_for(loop.run(stop), 5.0)


async def test_learning_from_the_executions_read_incrementally_matches_reading_them_all(
    tmp_path: Path,
) -> None:
    """The loop reads only executions changed since its last read and forgets those no later
    window can overlap, yet its pacer learns exactly what one fed every stored execution at
    every window learns, while holding only the recent executions."""
    store = MonitorStore(tmp_path / "monitor.db")
    client: MonitorClient = SlowServer()  # type: ignore[assignment]
    config = PacerConfig(window_s=1.0)
    loop = PacingLoop(store, client, config)
    everything = Pacer(config)
    rng = random.Random(7)
    t0, position = 1_800_000_000.0, 0
    queries = ["ping", "report", "lookup", "rare"]
    for second in range(40):
        events = []
        for n in range(rng.randint(1, 4)):
            query = queries[3] if second == 2 else rng.choice(queries[:3])  # "rare" once
            began = t0 + second + rng.random() * 0.9
            end = began + rng.choice([0.05, 0.3, 1.7])  # some cross into later windows
            run = f"run-{second}-{n}"
            position += 2
            events += [
                Event(position - 1, "started", run, 1, query, started_at=_iso(began)),
                Event(position, "succeeded", run, 1, query, started_at=_iso(began),
                      finished_at=_iso(end)),
            ]  # fmt: skip
        store.apply(events, position)
        close = t0 + second + 1.0
        level = 20.0 + 10.0 * len(events) + rng.random()
        # Seconds 2-6 come without an IO figure, so nothing is learnt from them while the one
        # "rare" execution ends and is forgotten: its query must still reach the estimator.
        missing = 2 <= second <= 6
        figures: list[float | None] = [level, level - 1, level + 1] * 3
        if missing:
            figures[3] = None
        store.record_resources(Resources(int(close * 1000), tuple(figures)))
        await loop._learn()
        spans = [
            Span(e.query_id, start, _epoch(e.finished_at))
            for e in store.attempts()
            if (start := _epoch(e.started_at)) is not None
        ]
        window = Stats(level, level - 1, level + 1)
        fed = [] if missing else [ResourceWindow(close - 1.0, close, window, window, window)]
        everything.learn(fed, spans)
        for query in queries:
            assert everything.estimator.estimate(query) == loop.pacer.estimator.estimate(query)
    assert len(loop._spans) < 20  # of some 100 executions: only those of the last seconds
