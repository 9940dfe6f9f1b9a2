"""The simulated database, the workload generators and the virtual-clock engine."""

# House style is `assert expected == actual` (see STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pacer.domain.resources import aggregate
from pacer.sim.model import Duration, QueryType, Running, SimDatabase
from pacer.sim.scenarios import SCENARIOS, STANDARD, scenario
from pacer.sim.virtual import ADHOC_DELAY_S, Engine, Pending, simulate
from pacer.sim.workload import DailyWave, Poisson, arrivals

HEAVY = QueryType("heavy", 80.0, 10.0, 5.0, Duration(10.0))
TINY = QueryType("tiny", 50.0, 0.0, 0.0, Duration(0.0005))
QUIET = {"cpu": 10.0, "io": 10.0, "memory": 10.0}


def test_utilization_is_baseline_plus_running_costs_capped_at_100() -> None:
    """Two heavy executions ask for 170 % CPU and get 100; IO and memory simply add up."""
    database = SimDatabase(QUIET, noise=0.0)
    running = [Running(HEAVY, 0.0, 10.0), Running(HEAVY, 1.0, 10.0)]
    assert {"cpu": 100.0, "io": 30.0, "memory": 20.0} == database.utilization(running, 5.0)


def test_noisy_samples_never_leave_0_to_100() -> None:
    """Noise is clipped, so a saturated resource reads exactly 100 and an idle one 0."""
    database = SimDatabase({"cpu": 95.0, "io": 1.0, "memory": 50.0}, noise=10.0, seed=3)
    samples = database.samples([], 0.0, 60.0, 0.1)
    assert 100.0 == max(sample.cpu for sample in samples)
    assert 0.0 == min(sample.io for sample in samples)


def test_sub_millisecond_executions_move_the_interval_they_ran_in() -> None:
    """A 0.5 ms query at 50 points adds 0.25 points to its 100 ms sample, not 0 or 50."""
    database = SimDatabase(QUIET, noise=0.0)
    samples = database.samples([Running(TINY, 0.02, 0.0205)], 0.0, 0.2, 0.1)
    assert pytest.approx([10.25, 10.0]) == [sample.cpu for sample in samples]


def test_drift_makes_a_query_heavier_with_time() -> None:
    """drift_per_hour 0.5 makes the costs 1.5 times heavier after one hour."""
    drifting = replace(HEAVY, drift_per_hour=0.5)
    assert 120.0 == drifting.cost("cpu", 1.0)


def test_arrivals_are_reproducible_by_seed() -> None:
    """The same seed gives the same arrivals and durations; another seed does not."""
    queries = {"heavy": HEAVY}
    generators = [Poisson("heavy", 0.5)]
    first = arrivals(generators, queries, 0.0, 600.0, seed=7)
    assert first == arrivals(generators, queries, 0.0, 600.0, seed=7)
    assert first != arrivals(generators, queries, 0.0, 600.0, seed=8)


def test_daily_wave_is_busiest_at_its_peak() -> None:
    """Thinning follows the sinusoid: the peak half of the day gets most arrivals."""
    wave = DailyWave("heavy", mean_rate=1.0, amplitude=0.8, day_s=1000.0, peak_s=250.0)
    times = wave.times(0.0, 10_000.0, np.random.default_rng(1))
    near_peak = np.mean(np.abs((times % 1000.0) - 250.0) < 250.0)
    assert 0.65 < near_peak < 0.75  # the exact share is 1/2 + 0.8/π ≈ 0.755 minus sampling


def test_lognormal_durations_have_the_mean_asked_for() -> None:
    """mu is chosen so the lognormal's mean is mean_s whatever sigma."""
    draws = Duration(2.0, 0.8).draw(np.random.default_rng(2), 200_000)
    assert pytest.approx(2.0, rel=0.02) == draws.mean()


def test_simulation_is_deterministic() -> None:
    """Two runs of one scenario observe identical executions and windows."""
    steady = scenario("steady")
    assert simulate(steady, 0.1) == simulate(steady, 0.1)


def test_engine_windows_aggregate_its_samples_every_window_length() -> None:
    """Windows are contiguous, window_s long, and their stats are those of aggregate()."""
    steady = scenario("steady")
    result = simulate(steady, 0.25)
    assert 30 == len(result.windows)
    assert all(b.start == a.end for a, b in zip(result.windows, result.windows[1:], strict=False))
    first = result.windows[0]
    assert steady.epoch + steady.window_s == first.end
    assert first.cpu.min <= first.cpu.average <= first.cpu.max


def test_windows_match_aggregate_of_the_databases_samples() -> None:
    """The engine's window is aggregate() of the sim database's samples for that window."""
    steady = replace(scenario("steady"), noise=0.0, wander=0.0)
    result = simulate(steady, 30 / 3600)
    running = [Running(steady.query(e.query_id), e.start, e.end) for e in result.executions]
    samples = steady.database().samples(running, steady.epoch, steady.epoch + 30, 0.1)
    assert aggregate(samples, steady.epoch, steady.epoch + 30) == result.windows[0]


def test_executions_start_100_ms_after_they_are_queued_by_default() -> None:
    """Without a policy every execution waits exactly the ad-hoc delay."""
    result = simulate(scenario("steady"), 0.05)
    assert {ADHOC_DELAY_S} == {round(e.wait_s, 5) for e in result.executions}


def test_policy_delays_are_applied_and_asked_again_when_due() -> None:
    """A policy holding each execution twice for 1 s makes every wait 2.1 s."""
    asked: list[int] = []

    def hold_twice(pending: Pending, engine: Engine) -> float:
        asked.append(pending.delays)
        return 1000.0 if pending.delays < 2 else 0.0

    result = simulate(scenario("steady"), 0.05, policy=hold_twice)
    assert {2.1} == {round(e.wait_s, 5) for e in result.executions}
    assert {0, 1, 2} == set(asked)


def test_standard_scenarios_exist_and_overloaded_asks_more_than_the_target() -> None:
    """The named scenarios are there; only 'overloaded' demands more than 70 % on average."""
    assert {"steady", "bursty", "daily", "drift", "overloaded"} <= set(STANDARD)
    over = {name for name, s in SCENARIOS.items() if max(s.demand().values()) > 70.0}
    assert {"overloaded"} == over
