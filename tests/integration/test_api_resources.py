"""Resource windows: sampling closes epoch-aligned windows; ``GET /resources`` serves the last
one in the contract's exact shape, ``/api/v1/resources`` the history — on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from test_api_jobs import api_client

from pacer.bootstrap import Container, running
from pacer.domain.resources import Sample
from pacer.samplers.host import HostSampler
from pacer.services.clock import ManualClock
from pacer.services.resources import ResourceService
from support import fast_settings

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


class Steps:
    """A sampler that replays fixed utilization values (the windowing logic is under test)."""

    def __init__(self, values: list[tuple[float, float, float]]) -> None:
        self.values = list(values)

    def sample(self, at: float) -> Sample:
        cpu, io, memory = self.values.pop(0)
        return Sample(at=at, cpu=cpu, io=io, memory=memory)


@pytest.fixture
async def container(database_url: str) -> AsyncIterator[Container]:
    settings = fast_settings(database_url, resource_sampler="none")
    async with running(settings, ManualClock(T0)) as built:
        yield built


async def _close_windows(container: Container, values: list[tuple[float, float, float]]) -> None:
    """One sample per 10 s of the manual clock, windows of 30 s."""
    clock = container.clock
    assert isinstance(clock, ManualClock)
    service = ResourceService(Steps(values), container.resources.store, clock, 30.0, 10.0)
    for _ in values:
        clock.advance(timedelta(seconds=10))
        window = service.tick()
        if window is not None:
            await container.resources.store.add_window(window)


async def test_resources_is_404_until_a_window_closes(container: Container) -> None:
    """Before the first window closes there is nothing to report: a 404 problem."""
    async with api_client(container) as client:
        answer = await client.get("/resources")
    assert 404 == answer.status_code


async def test_resources_serves_the_last_window_in_the_contract_shape(
    container: Container,
) -> None:
    """Three samples make a window: average, min and max per resource, timestamp = its end."""
    values = [(10.0, 1.0, 50.0), (20.0, 2.0, 50.0), (60.0, 3.0, 50.0), (5.0, 5.0, 5.0)]
    await _close_windows(container, values)
    async with api_client(container) as client:
        latest = (await client.get("/resources")).json()
        history = (await client.get("/api/v1/resources", params={"since": 0})).json()
    expected = {
        "cpu": {"average": 30.0, "min": 10.0, "max": 60.0},
        "io": {"average": 2.0, "min": 1.0, "max": 3.0},
        "memory": {"average": 50.0, "min": 50.0, "max": 50.0},
        "timestamp": round((T0 + timedelta(seconds=30)).timestamp() * 1000),
    }
    assert expected == latest
    assert [expected] == history


def test_host_sampler_reads_real_percentages() -> None:
    """The psutil sampler answers percentages in [0, 100] for CPU, IO and memory."""
    sample = HostSampler(disk_mb_s=100).sample(1.0)
    assert all(0.0 <= value <= 100.0 for value in (sample.cpu, sample.io, sample.memory))
    assert sample.memory > 0
