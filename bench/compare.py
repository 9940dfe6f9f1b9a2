"""Before and after, side by side: ``bench/throughput.py`` on a git revision and on the work tree.

    make bench-compare                        # or: .venv/bin/python bench/compare.py --base HEAD~3
    .venv/bin/python bench/compare.py --base v0 --rounds 3 --stores postgresql,sqlite

The base revision's ``src/`` and ``migrations/`` are exported with ``git archive`` into a
temporary directory, ``src/`` first on ``PYTHONPATH``, so everything in its rounds
(migrations, enqueueing, the worker processes) runs that revision's code; the other rounds
run the work tree's. Rounds alternate (base, change, change, base, ...) so that a noisy
neighbour on this shared machine falls on both sides alike; the table gives each side's median and the ratio change / base.

Why a separate script rather than two runs of ``throughput.py``: two runs minutes apart
differ by more than most single improvements (the figures in BENCHMARKS.md vary by 10-20 %
between sessions), so a before/after claim is only worth recording from one interleaved run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, write_section

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    "drain, 1 worker: runs/s",
    "drain, 2 workers: runs/s",
    "worker CPU us/run (2 workers)",
    "database CPU us/run (2 workers)",
    "dispatch p50 ms",
    "dispatch p99 ms",
)


def export(revision: str, into: Path) -> Path:
    """The revision's ``src/`` and ``migrations/`` (found beside ``src/``), unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src", "migrations"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def one_round(src: Path, stores: str, runs: int) -> dict[str, list[float]]:
    """One ``throughput.py`` run with ``src`` first on the path: store -> its figures."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [
        sys.executable,
        str(ROOT / "bench" / "throughput.py"),
        "--no-write",
        "--stores",
        stores,
        "--workers",
        "1,2",
        "--runs",
        str(runs),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"throughput.py failed with PYTHONPATH={src}:\n{done.stderr[-3000:]}")
    out = done.stdout
    figures: dict[str, list[float]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(COLUMNS) + 1 and cells[0] in stores.split(","):
            figures.setdefault(cells[0], [float(c.replace(",", "")) for c in cells[1:]])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="HEAD", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--stores", default="postgresql,sqlite")
    parser.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = parser.parse_args()
    base_rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    results: dict[str, dict[str, list[list[float]]]] = {"base": {}, "change": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"base": export(args.base, Path(tmp)), "change": ROOT / "src"}
        order = ["base", "change", "change", "base"] * args.rounds
        for side in order[: 2 * args.rounds]:
            for store, figures in one_round(sides[side], args.stores, args.runs).items():
                results[side].setdefault(store, []).append(figures)
                print(f"{side:6} {store:10} " + "  ".join(f"{f:,.1f}" for f in figures), flush=True)
    rows = []
    for store in args.stores.split(","):
        for i, column in enumerate(COLUMNS):
            before = statistics.median(r[i] for r in results["base"][store])
            after = statistics.median(r[i] for r in results["change"][store])
            ratio = f"{after / before:.2f}" if before else "-"  # SQLite: no server process
            rows.append(f"| {store} | {column} | {before:,.1f} | {after:,.1f} | {ratio} |")
    table = "\n".join(
        [
            f"| store | figure | base ({base_rev}) | change | change / base |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        write_section(
            "compare",
            "## Before and after, side by side (`make bench-compare`)\n\n"
            f"Machine: {describe()}. Command: `.venv/bin/python bench/compare.py --base "
            f"{args.base} --rounds {args.rounds} --runs {args.runs} --stores {args.stores}`. "
            f"Medians of {args.rounds} interleaved rounds per side of `bench/throughput.py` "
            "(drain of no-op runs with 1 and 2 worker processes, the CPU each run cost the workers "
            "and the database's backends, and dispatch to an idle worker). CPU per run is the "
            "steadiest figure on a shared machine; runs/s and latencies move with other load.\n\n"
            + table,
        )


if __name__ == "__main__":
    main()
