"""Where a Pacer dispatch's time goes: the peers' dispatch workload (an idle worker, jobs
enqueued 20 ms apart) with each stage timed.

    bench/peers/.venv/bin/python bench/peers/trace_dispatch.py [--jobs 200]

The worker runs as ``pacer worker`` does, with its wake-ups, claims and run starts (and any
garbage collection over 2 ms) appended to a trace file; the enqueuer times its calls. Per job:
the enqueue call, the wake-up after the call began, wake-up to claim, the claim, claim to the
function's first line, and the whole. Used to find the issue-6 dispatch fixes (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def traced_worker() -> None:
    """``pacer worker``, with timestamps of its wake-ups, claims and starts."""
    from pacer.cli.main import main
    from pacer.stores.sqlalchemy.store import SqlStore
    from pacer.worker import runner, wakeup

    out = open(os.environ["TRACE_FILE"], "a", buffering=1)
    notify, claim, start = wakeup.Wakeup.notify, SqlStore.claim, runner.Worker._start

    def traced_notify(self: Any, at: Any = None) -> None:
        out.write(f"wake {time.time():.6f}\n")
        notify(self, at)

    async def traced_claim(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.time()
        claimed = await claim(self, *args, **kwargs)
        out.write(f"claim {began:.6f} {time.time():.6f} {len(claimed)}\n")
        return claimed

    def traced_start(self: Any, run: Any) -> None:
        out.write(f"start {time.time():.6f}\n")
        start(self, run)

    collecting: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting["at"] = time.time()
        elif (took := time.time() - collecting.get("at", time.time())) > 0.002:
            out.write(f"gc {collecting['at']:.6f} {took * 1000:.2f} {info['generation']}\n")

    wakeup.Wakeup.notify = traced_notify  # type: ignore[method-assign]
    SqlStore.claim = traced_claim  # type: ignore[method-assign]
    runner.Worker._start = traced_start  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    sys.argv = ["pacer", "worker"]
    main()


async def measure(jobs: int) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import harness
    from base import Settings
    from pacer_adapter import PacerPeer

    class Traced(PacerPeer):
        def worker_command(self, index: int) -> list[str]:
            return [sys.executable, __file__, "--worker"]

    peer = Traced(Settings())
    scratch = Path(tempfile.mkdtemp(prefix="pacer-trace-"))
    log, trace = scratch / "exec.log", scratch / "trace.txt"
    os.environ["TRACE_FILE"] = str(trace)
    await peer.reset()
    pool = harness.Workers(peer, log, scratch)
    pool.start(1)
    calls: dict[str, tuple[float, float]] = {}
    try:
        await harness.warm_up(peer, pool, 60)
        trace.write_text("")
        for key in harness.keys(jobs):
            began = time.time()
            await peer.enqueue([key])
            calls[key] = (began, time.time())
            await asyncio.sleep(0.02)
        done = await harness.wait_for(log, jobs, 30, pool)
    finally:
        pool.stop()
        await peer.close()
    started = {key: at for key, at, _ in done}
    lines = [line.split() for line in trace.read_text().splitlines()]
    wakes = sorted(float(f[1]) for f in lines if f[0] == "wake")
    claims = sorted((float(f[1]), float(f[2])) for f in lines if f[0] == "claim" and f[3] != "0")
    stages: dict[str, list[float]] = {
        name: [] for name in ("enqueue call", "wake-up", "wake-up to claim", "claim")
    }
    stages |= {"claim to start": [], "total": []}
    for key, (began, returned) in calls.items():
        woke = wakes[min(bisect.bisect_left(wakes, began), len(wakes) - 1)]
        claim = next((c for c in claims if c[0] >= woke - 1e-4), (woke, woke))
        for name, value in zip(
            stages,
            (returned - began, woke - began, claim[0] - woke, claim[1] - claim[0],
             started[key] - claim[1], started[key] - began),
            strict=True,
        ):  # fmt: skip
            stages[name].append(value * 1000)
    print(f"{'ms':18} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for name, values in stages.items():
        q = [harness.percentile(values, p) for p in (50, 90, 99)]
        print(f"{name:18} {q[0]:7.2f} {q[1]:7.2f} {q[2]:7.2f} {max(values):7.2f}")
    pauses = [f for f in lines if f[0] == "gc"]
    print(f"garbage collections over 2 ms in the worker: {len(pauses)}", end="")
    print("".join(f"; {float(f[2]):.0f} ms (generation {f[3]})" for f in pauses))


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        traced_worker()
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--jobs", type=int, default=200)
        asyncio.run(measure(parser.parse_args().jobs))
