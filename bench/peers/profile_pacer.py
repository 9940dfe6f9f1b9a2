"""Where a Pacer worker spends its time while draining no-op runs (py-spy, in the bench venv).

    bench/peers/.venv/bin/python bench/peers/profile_pacer.py [--jobs 20000] [--workers 2]

Enqueues the runs, starts the workers as the harness does, samples worker 0 with
``py-spy record --format raw`` until the drain ends, and prints the functions with the most
samples on the stack (inclusive) and at the top of it (own time), in our code and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import exec_log
from base import Settings
from harness import Workers, keys
from pacer_adapter import PacerPeer


def summarise(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
            for f in stack.split(";")
        ]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    print("\nown time (top of stack):")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("\ninclusive (on the stack), pacer and sqlalchemy/psycopg frames:")
    shown = 0
    for frame, n in inclusive.most_common():
        if any(
            k in frame
            for k in (
                "pacer",
                "runner.py",
                "store.py",
                "python.py",
                "sqlalchemy",
                "psycopg",
                "pydantic",
                "tasks.py",
            )
        ):
            print(f"  {100 * n / total:5.1f}%  {frame}")
            shown += 1
            if shown == top * 2:
                break


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--output", default="/tmp/pacer-worker-profile.txt", help="py-spy's raw stacks"
    )
    args = parser.parse_args()
    peer = PacerPeer(Settings())
    with tempfile.TemporaryDirectory() as tmp:
        log, raw = Path(tmp) / "exec.log", Path(args.output)
        await peer.reset()
        await peer.enqueue(keys(args.jobs))
        pool = Workers(peer, log, Path(tmp))
        pool.start(args.workers)
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--rate", "250",
             "--output", str(raw), "--pid", str(pool.processes[0].pid)]
        )  # fmt: skip
        try:
            while len(exec_log.read(str(log))) < args.jobs:
                await asyncio.sleep(0.1)
            rows = exec_log.read(str(log))
            span = max(r[2] for r in rows) - min(r[1] for r in rows)
            print(f"{args.jobs / span:,.0f} runs/s while sampled")
            time.sleep(0.5)
        finally:
            spy.send_signal(2)
            spy.wait()
            pool.stop()
            await peer.close()
        summarise(raw, args.top)


if __name__ == "__main__":
    asyncio.run(main())
