"""Cost-estimation accuracy per scenario and resource after 2 simulated hours.

    .venv/bin/python bench/estimation.py [--hours 2]

Each standard scenario runs on the virtual clock with no pacing; the estimator is fed the
closed windows 10 at a time with the executions that overlap them, as a polling monitor would.
The error is the MAPE of the per-execution cost (percentage points while running) over the
queries carrying at least 2 % of that resource's load, against the true cost at the end (so
drift counts); the worst query is named beside it. The goal from the issue is 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, write_section

from pacer.domain.resources import RESOURCES
from pacer.sim.accuracy import Accuracy, estimate_scenario
from pacer.sim.scenarios import SCENARIOS, STANDARD


def cell(result: Accuracy) -> str:
    return f"{100 * result.mape:.1f} % ({result.worst_query} {100 * result.worst:.1f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    hours = parser.parse_args().hours
    rows = []
    for name in STANDARD:
        started = time.perf_counter()
        _, report = estimate_scenario(SCENARIOS[name], hours)
        seconds = time.perf_counter() - started
        cells = " | ".join(cell(report[resource]) for resource in RESOURCES)
        rows.append(f"| {name} | {cells} | {seconds:.1f} |")
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"## Cost estimation accuracy (`.venv/bin/python bench/estimation.py --hours {hours:g}`)",
            "",
            f"Machine: {describe()}.",
            f"MAPE of per-execution cost after {hours:g} simulated hours, over the queries with at "
            "least 2 % of the resource's load (worst query and its error in brackets); goal 10 %. "
            "No pacing: `overloaded` saturates most windows, which the estimator corrects for "
            "from the window maximum. Wall time covers simulation and estimation.",
            "",
            "| scenario | cpu | io | memory | seconds |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    write_section("estimation", body)


if __name__ == "__main__":
    main()
