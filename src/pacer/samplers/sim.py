"""``SimSampler``: utilization of the simulated database the server runs (``sim`` target)."""

from __future__ import annotations

from pacer.domain.resources import Sample
from pacer.sim.live import LiveSim


class SimSampler:
    def __init__(self, live: LiveSim) -> None:
        self.live = live

    def sample(self, at: float) -> Sample:
        return self.live.sample(at)
