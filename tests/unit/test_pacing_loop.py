"""``PacingLoop``: the monitor's pacer acting on the events it captured."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacer.domain.pacer import PacerConfig
from pacer.domain.resources import ResourceWindow, Stats
from pacer.monitor.client import FatalError, MonitorClient
from pacer.monitor.events import Event
from pacer.monitor.pacing import PacingLoop
from pacer.monitor.store import MonitorStore


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
