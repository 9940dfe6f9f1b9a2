"""Resource windows: aggregation of samples, the GET /resources contract, and exposure."""

# House style is `assert expected == actual` (see STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from pacer.domain.errors import InvalidInput
from pacer.domain.resources import ResourceWindow, Sample, Stats, Window, aggregate, exposure


@dataclass(frozen=True)
class Run:
    query_id: str | None
    start: float
    end: float | None


def window(start: float, end: float) -> ResourceWindow:
    flat = Stats(50.0, 50.0, 50.0)
    return ResourceWindow(start, end, flat, flat, flat)


def test_aggregate_takes_average_min_and_max_of_the_samples_inside() -> None:
    """Each resource's stats come from the samples stamped in (start, end] only."""
    samples = [
        Sample(0.0, 99.0, 99.0, 99.0),
        Sample(1.0, 10.0, 20.0, 30.0),
        Sample(2.0, 30.0, 40.0, 50.0),
        Sample(3.0, 99.0, 99.0, 99.0),
    ]
    expected = ResourceWindow(
        0.0, 2.0, Stats(20.0, 10.0, 30.0), Stats(30.0, 20.0, 40.0), Stats(40.0, 30.0, 50.0)
    )
    assert expected == aggregate(samples, 0.0, 2.0)


def test_aggregate_refuses_an_empty_window() -> None:
    """A window with no sample has no average, so it is an input error, not a zero."""
    with pytest.raises(InvalidInput):
        aggregate([Sample(5.0, 1.0, 1.0, 1.0)], 0.0, 2.0)


def test_contract_is_exactly_the_get_resources_body() -> None:
    """to_contract gives cpu/io/memory stats and the end as epoch milliseconds."""
    stats = ResourceWindow(
        1_700_000_000.0, 1_700_000_030.0, Stats(1, 0, 2), Stats(3, 2, 4), Stats(5, 4, 6)
    )
    expected = {
        "cpu": {"average": 1, "min": 0, "max": 2},
        "io": {"average": 3, "min": 2, "max": 4},
        "memory": {"average": 5, "min": 4, "max": 6},
        "timestamp": 1_700_000_030_000,
    }
    assert expected == stats.to_contract()


def test_contract_round_trips_with_the_configured_length() -> None:
    """from_contract rebuilds the window from the body and the window length."""
    original = ResourceWindow(100.0, 160.0, Stats(1, 0, 2), Stats(3, 2, 4), Stats(5, 4, 6))
    assert original == ResourceWindow.from_contract(original.to_contract(), length_s=60.0)


def test_exposure_is_average_concurrency_per_window() -> None:
    """Seconds of each query inside each window, over the window length."""
    runs = [Run("a", 5.0, 15.0), Run("a", 0.0, 30.0), Run("b", 25.0, 40.0), Run(None, 0, 1)]
    seen = exposure(runs, [window(0.0, 30.0), window(30.0, 60.0)])
    assert ("a", "b") == seen.query_ids
    np.testing.assert_allclose([[40 / 30, 5 / 30], [0.0, 10 / 30]], seen.matrix)


def test_exposure_counts_a_running_execution_to_the_window_end() -> None:
    """An execution without an end ran through every window after its start."""
    seen = exposure([Run("a", 10.0, None)], [Window(0.0, 20.0), Window(20.0, 40.0)])
    np.testing.assert_allclose([[0.5], [1.0]], seen.matrix)
