"""The monitor's follow loop against a real (fake) server with faults: exactly the server's events.

Every test ends with the local store holding the server's events exactly (none missing, none
twice) and every acknowledgement no further than what was committed when it arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from monitor_server import TOKEN, FakeServer
from pacer.monitor.client import FatalError, MonitorClient
from pacer.monitor.follower import Follower, FollowSettings
from pacer.monitor.store import MonitorStore


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeServer]:
    """A fake event-log server on a free loopback port, checking acks against monitor.db."""
    server = FakeServer(keepalive=0.3)
    server.db_path = tmp_path / "monitor.db"
    server.start()
    yield server
    server.stop()


@dataclass
class Following:
    """A follower running in this event loop, and a way to await its commits and its logs."""

    fake: FakeServer
    store: MonitorStore
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    committed: int = 0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_commit(self, position: int) -> None:
        self.committed = position
        self.progressed.set()

    async def until(self, position: int) -> None:
        while self.committed < position:
            await self.progressed.wait()
            self.progressed.clear()

    async def until_caught_up(self) -> None:
        await self.until(self.fake.events[-1]["position"])

    async def finish(self) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task


class LogAwaiter(logging.Handler):
    """Sets an event when a log line containing ``needle`` is emitted (in the loop's thread)."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle, self.seen = needle, asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


def settings(transport: str, **overrides: Any) -> FollowSettings:
    base: dict[str, Any] = {
        "name": "test",
        "transport": transport,
        "poll_wait": 0.5,
        "poll_limit": 37,
        "batch_size": 20,
        "backoff_base": 0.01,
        "backoff_cap": 0.2,
        "ack_interval": 0.01,
        "resources_interval": 0,
    }
    return FollowSettings(**{**base, **overrides})


@pytest.fixture
async def follow(fake: FakeServer) -> AsyncIterator[Any]:
    """Starts a follower on the fake (with given settings and token); stops it after the test."""
    started: list[Following] = []

    async def start(config: FollowSettings, token: str = TOKEN) -> Following:
        assert fake.db_path is not None
        following = Following(fake, MonitorStore(fake.db_path, consumer=config.name))
        client = MonitorClient(fake.url, token, keepalive=fake.keepalive, timeout=1.0)
        follower = Follower(following.store, client, config, on_commit=following.on_commit)
        following.task = asyncio.create_task(follower.run(following.stop))
        started.append(following)
        return following

    yield start
    for following in started:
        following.stop.set()
        await asyncio.gather(following.task, return_exceptions=True)  # type: ignore[arg-type]


def assert_exact_copy(fake: FakeServer, store: MonitorStore) -> None:
    """The store holds the server's events, each once, and every ack was committed first."""
    assert fake.events == [asdict(event) for event in store.events()]
    assert [] == fake.violations
    assert fake.acks == sorted(fake.acks)


@pytest.mark.parametrize(
    ("transport", "faults"),
    [
        ("stream", ["500", "reset", "stall", "end", "reset", "500", "stall"]),
        ("poll", ["500", "reset", "stall", "500", "reset", "stall"]),
    ],
)
async def test_faults_lose_and_duplicate_nothing(
    fake: FakeServer, follow: Any, transport: str, faults: list[str]
) -> None:
    """500s, resets and stalls half-way through a response, then new events: an exact copy."""
    fake.add_runs(40)
    fake.faults.extend(faults)
    following: Following = await follow(settings(transport))
    await following.until(fake.events[len(fake.events) // 2]["position"])
    fake.add_runs(40)
    await following.until_caught_up()
    await following.finish()
    assert_exact_copy(fake, following.store)
    assert ([], fake.events[-1]["position"]) == (list(fake.faults), fake.acks[-1])


async def test_refused_connections_and_server_restarts(fake: FakeServer, follow: Any) -> None:
    """A closed port at start and a restart half-way: the follower reconnects and catches up."""
    refused = LogAwaiter("ConnectError")
    logging.getLogger("pacer.monitor").addHandler(refused)
    try:
        fake.stop()
        following: Following = await follow(settings("auto"))
        await refused.seen.wait()
        fake.add_runs(30)
        fake.start()
        await following.until(fake.events[40]["position"])
        fake.stop()
        refused.seen.clear()
        await refused.seen.wait()
        fake.add_runs(30)
        fake.start()
        await following.until_caught_up()
        await following.finish()
    finally:
        logging.getLogger("pacer.monitor").removeHandler(refused)
    assert_exact_copy(fake, following.store)


async def test_falls_back_to_long_poll_without_a_stream(fake: FakeServer, follow: Any) -> None:
    """A server without the stream endpoint (404) is followed by long polling."""
    fake.stream_enabled = False
    fake.add_runs(25)
    following: Following = await follow(settings("auto"))
    await following.until_caught_up()
    await following.finish()
    assert_exact_copy(fake, following.store)


@pytest.mark.parametrize("transport", ["stream", "poll"])
async def test_pruned_events_are_reported_loudly_and_recorded(
    fake: FakeServer, follow: Any, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events pruned before being read: a warning on stderr, a gap row, and the rest copied."""
    fake.add_runs(10)
    fake.prune(fake.events[6]["position"])
    following: Following = await follow(settings(transport))
    await following.until_caught_up()
    await following.finish()
    assert_exact_copy(fake, following.store)
    gap = {"from_position": fake.pruned[0], "to_position": fake.pruned[-1], "count": 7}
    assert [gap] == [{k: g[k] for k in gap} for g in following.store.gaps()]
    assert "MISSED 7 events" in capsys.readouterr().err


async def test_resource_windows_are_recorded_once_and_404_ignored(
    fake: FakeServer, follow: Any
) -> None:
    """A missing /resources is ignored; each distinct window (by timestamp) is stored once."""
    window = {f: {"average": 1.0, "min": 0.5, "max": 2.0} for f in ("cpu", "io", "memory")}
    fake.resources.extend([404, {**window, "timestamp": 1}, {**window, "timestamp": 1}])
    fake.resources.extend([{**window, "timestamp": 2}, 404])
    following: Following = await follow(settings("stream", resources_interval=0.01))
    await asyncio.to_thread(fake.wait_for, lambda: fake.resource_requests >= 6)
    await following.finish()
    assert [1, 2] == [row["timestamp"] for row in following.store.resources()]


async def test_a_refused_token_ends_the_run(fake: FakeServer, follow: Any) -> None:
    """401 is not retried: the run ends with FatalError."""
    following: Following = await follow(settings("stream"), token="wrong")
    with pytest.raises(FatalError):
        await asyncio.wait_for(following.task, 30)  # type: ignore[arg-type]


def test_sigkill_at_any_moment_then_restart_gives_an_exact_copy(
    fake: FakeServer, tmp_path: Path
) -> None:
    """``pacer monitor run`` killed (SIGKILL) mid-stream, mid-batch and after an ack, restarted."""
    fake.add_runs(400)
    fake.pace = 0.0005  # so that kills land while the monitor is part-way through
    log = (tmp_path / "monitor.log").open("ab")
    command = [sys.executable, "-m", "pacer.cli.monitor", "run", "--url", fake.url]
    command += ["--token", TOKEN, "--db", str(fake.db_path), "--name", "killed"]
    command += ["--keepalive", "0.3", "--poll-wait", "1", "--resources-interval", "0"]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ})

    def kill_when(predicate: Any) -> int:
        process = spawn()
        assert fake.wait_for(predicate)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert fake.db_path is not None
        return MonitorStore(fake.db_path).position()

    first = fake.streamed
    killed = [kill_when(lambda: fake.streamed > first)]  # as the first events arrive
    second = fake.streamed
    killed.append(kill_when(lambda: fake.streamed > second + 300))  # with batches in flight
    middle = fake.events[len(fake.events) * 2 // 3]["position"]
    killed.append(kill_when(lambda: fake.acks and fake.acks[-1] >= middle))  # after an ack
    assert killed == sorted(killed)
    assert killed[1] < fake.events[-1]["position"]  # the second kill fell part-way through
    fake.add_runs(100)
    last = fake.events[-1]["position"]
    process = spawn()
    assert fake.wait_for(lambda: fake.acks and fake.acks[-1] == last)
    process.send_signal(signal.SIGTERM)
    assert 0 == process.wait(timeout=30)
    assert fake.db_path is not None
    assert_exact_copy(fake, MonitorStore(fake.db_path))
