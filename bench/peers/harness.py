"""Pacer side by side with the job queues users weigh it against, in one run on one machine.

    make bench-peers                      # or: bench/peers/run.sh [--peers pacer,celery] [...]

Every system runs the same four workloads, one after another, so each figure sits next to
Pacer's from minutes before and their ratio survives the shared machine's noise:

- drain: enqueue N no-op jobs, then start 1 (then 2) worker processes; jobs/s from the first
  job's start to the last job's end, as the jobs themselves record them (process start-up is
  not counted, for anyone).
- dispatch: one idle worker (warmed up by one job); 200 jobs enqueued 20 ms apart; latency
  from just before the enqueue call to the job's start.
- scheduled: 2 workers; 1,000 no-op jobs all due at one instant 2 s ahead, using each
  system's own scheduling; lateness = start - due.
- crash: 2 workers, 1,000 jobs of 0.5 to 1 s each; when a fifth have completed one worker's
  process group is SIGKILLed and a fresh worker started; once every job has completed (and
  nothing new has completed for the settle time) or the timeout passes: lost = jobs never
  completed, doubled = jobs that completed more than once. Executions cut off by the kill do
  not count: a job is recorded when it completes, so at-least-once systems that rerun an
  interrupted job are not charged for it; a job counted twice really ran to its end twice.

Every task records its execution the same way (``exec_log.py``): one line appended to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import contextlib

import base
import exec_log
from base import Peer, Settings
from machine import describe, write_section

ADAPTERS = {
    "pacer": "pacer_adapter:PacerPeer",
    "procrastinate": "procrastinate_adapter:ProcrastinatePeer",
    "pgqueuer": "pgqueuer_adapter:PgqueuerPeer",
    "celery": "celery_adapter:CeleryPeer",
    "rq": "rq_adapter:RqPeer",
    "dramatiq": "dramatiq_adapter:DramatiqPeer",
    "huey": "huey_adapter:HueyPeer",
    "apscheduler": "apscheduler_adapter:ApschedulerPeer",
}


@dataclass
class Run:
    """One system's figures; a metric missing from ``figures`` is reported with ``errors``."""

    peer: Peer
    figures: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Workers:
    """Worker processes of one system, each in its own process group (so a kill takes the
    whole worker: Celery's, Dramatiq's and RQ's child processes too)."""

    def __init__(self, peer: Peer, log: Path, logdir: Path) -> None:
        self.peer, self.log, self.logdir = peer, log, logdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()
        self.services: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> None:
        if not self.services:
            for index, command in enumerate(self.peer.service_commands()):
                self.services.append(self._spawn(command, f"service{index}"))
        for _ in range(count):
            index = len(self.processes)
            self.processes.append(self._spawn(self.peer.worker_command(index), str(index)))

    def _spawn(self, command: list[str], label: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            # The caller's PYTHONPATH after ours: a worktree's src/ measures that revision.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            "BENCH_EXEC_LOG": str(self.log),
            **self.peer.worker_env(),
        }
        output = open(self.logdir / f"{self.peer.name}-{label}.log", "ab")
        return subprocess.Popen(
            command,
            env=env,
            cwd=Path(__file__).resolve().parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        """Fail fast when a worker died on its own (a missing module, a bad setting)."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None and index not in self.killed:
                log = self.logdir / f"{self.peer.name}-{index}.log"
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(f"worker {index} exited {process.returncode}: {tail}")

    def kill(self, index: int) -> None:
        self.killed.add(index)
        _signal_group(self.processes[index], signal.SIGKILL)
        self.processes[index].wait()

    def stop(self) -> None:
        self.processes += self.services
        self.services = []
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # children left behind by the leader
            process.wait()
        self.processes, self.killed = [], set()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def keys(count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:6]
    return [f"{prefix}-{i}" for i in range(count)]


async def wait_for(log: Path, count: int, timeout: float, pool: Workers) -> list:
    """Poll the execution log until ``count`` executions are recorded or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    rows = exec_log.read(str(log))
    while len(rows) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        pool.check()
        rows = exec_log.read(str(log))
    return rows


async def warm_up(peer: Peer, pool: Workers, timeout: float) -> None:
    """One job through a fresh worker: imports done, connections open, then idle."""
    log = pool.log
    await peer.enqueue(["warm-up"])
    if not await wait_for(log, 1, timeout, pool):
        raise TimeoutError("the worker did not run a first job")
    await asyncio.sleep(1.0)
    os.truncate(log, 0)  # not unlink: the workers hold the file open


async def drain(peer: Peer, workers: int, count: int, ctx: Context) -> float | None:
    await peer.reset()
    await peer.enqueue(keys(count))
    pool = Workers(peer, ctx.log, ctx.logdir)
    pool.start(workers)
    try:
        rows = await wait_for(ctx.log, count, ctx.timeout, pool)
    finally:
        pool.stop()
    if len(rows) < count:
        raise TimeoutError(f"{len(rows):,} of {count:,} done after {ctx.timeout:g} s")
    first, last = min(r[1] for r in rows), max(r[2] for r in rows)
    return count / (last - first)


async def dispatch(peer: Peer, count: int, ctx: Context) -> list[float]:
    await peer.reset()
    pool = Workers(peer, ctx.log, ctx.logdir)
    pool.start(1)
    try:
        await warm_up(peer, pool, 60)
        sent = {}
        for key in keys(count):
            sent[key] = time.time()
            await peer.enqueue([key])
            await asyncio.sleep(0.02)
        rows = await wait_for(ctx.log, count, 30, pool)
    finally:
        pool.stop()
    started = {key: start for key, start, _ in rows}
    missing = count - len(started)
    if missing:
        raise TimeoutError(f"{missing} of {count} jobs did not start within 30 s")
    return [(started[key] - at) * 1000 for key, at in sent.items()]


async def scheduled(peer: Peer, count: int, ctx: Context) -> list[float]:
    await peer.reset()
    pool = Workers(peer, ctx.log, ctx.logdir)
    pool.start(2)
    try:
        await warm_up(peer, pool, 60)
        due = time.time() + 2.0
        await peer.enqueue(keys(count), due=datetime.fromtimestamp(due, UTC))
        if time.time() > due:
            raise RuntimeError("enqueueing took longer than the 2 s lead")
        rows = await wait_for(ctx.log, count, 60 + 2, pool)
    finally:
        pool.stop()
    if len(rows) < count:
        raise TimeoutError(f"{len(rows)} of {count} ran within 60 s of their due time")
    return [(start - due) * 1000 for _, start, _ in rows]


async def crash(peer: Peer, count: int, ctx: Context) -> tuple[int, int]:
    count = min(count, getattr(peer, "crash_jobs", count))
    peer.crash = True
    await peer.reset()
    submitted = keys(count)
    await peer.enqueue(submitted, sleep_s=0.5)
    pool = Workers(peer, ctx.log, ctx.logdir)
    pool.start(2)
    try:
        await wait_for(ctx.log, count // 5, ctx.timeout, pool)
        pool.kill(0)
        pool.start(1)
        rows: list = []
        deadline = time.monotonic() + ctx.crash_timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            pool.check()
            await peer.recover()
            latest = exec_log.read(str(ctx.log))
            if len(latest) != len(rows):
                rows, quiet_since = latest, time.monotonic()
            done = {row[0] for row in rows}
            if len(done) >= count and time.monotonic() - quiet_since > ctx.settle:
                break
    finally:
        pool.stop()
        peer.crash = False
    completions = Counter(row[0] for row in rows)
    lost = sum(1 for key in submitted if key not in completions)
    doubled = sum(1 for key in submitted if completions[key] > 1)
    return lost, doubled


@dataclass
class Context:
    log: Path
    logdir: Path
    timeout: float
    settle: float
    crash_timeout: float = 90


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(peer: Peer, args: argparse.Namespace, ctx: Context) -> Run:
    """Every workload for one system; a workload that fails is reported, not fatal."""
    run = Run(peer)
    steps = {
        "drain1": lambda: drain(peer, 1, args.drain_jobs, ctx),
        "drain2": lambda: drain(peer, 2, args.drain_jobs, ctx),
        "dispatch": lambda: dispatch(peer, 200, ctx),
        "scheduled": lambda: scheduled(peer, args.scheduled_jobs, ctx),
        "crash": lambda: crash(peer, args.crash_jobs, ctx),
    }
    for name, step in steps.items():
        if name.rstrip("12") not in args.workloads:
            continue
        ctx.log.unlink(missing_ok=True)
        began = time.monotonic()
        try:
            result = await step()
        except Exception as exc:  # a peer failing must not stop the others
            traceback.print_exc()
            run.errors[name] = f"{type(exc).__name__}: {exc}"[:120]
            print(f"  {peer.name} {name}: FAILED {run.errors[name]}", flush=True)
            continue
        if name == "dispatch":
            run.figures |= {
                "dispatch_p50": percentile(result, 50),
                "dispatch_p99": percentile(result, 99),
            }
        elif name == "scheduled":
            run.figures |= {
                "late_p50": percentile(result, 50),
                "late_p99": percentile(result, 99),
                "late_max": max(result),
            }
        elif name == "crash":
            run.figures |= {"lost": result[0], "doubled": result[1]}
            run.figures["crash_jobs"] = min(
                args.crash_jobs, getattr(peer, "crash_jobs", args.crash_jobs)
            )
        else:
            run.figures[name] = result
        print(
            f"  {peer.name} {name}: {result if not isinstance(result, list) else ''}"
            f" ({time.monotonic() - began:.0f} s)",
            flush=True,
        )
    await peer.close()
    return run


METRICS = [
    # key, label, workload, format, higher is better
    ("drain1", "drain, 1 worker: jobs/s", "drain", "{:,.0f}", True),
    ("drain2", "drain, 2 workers: jobs/s", "drain", "{:,.0f}", True),
    ("dispatch_p50", "dispatch p50 ms", "dispatch", "{:.1f}", False),
    ("dispatch_p99", "dispatch p99 ms", "dispatch", "{:.1f}", False),
    ("late_p50", "scheduled lateness p50 ms", "scheduled", "{:,.0f}", False),
    ("late_p99", "scheduled lateness p99 ms", "scheduled", "{:,.0f}", False),
    ("late_max", "scheduled lateness max ms", "scheduled", "{:,.0f}", False),
    ("lost", "crash: jobs lost", "crash", "{:.0f}", False),
    ("doubled", "crash: jobs completed twice", "crash", "{:.0f}", False),
]


def cell(run: Run, pacer: Run | None, key: str, workload: str, fmt: str) -> str:
    if run.peer.missing:
        return "not measured"
    value = run.figures.get(key)
    if value is None:
        step = next(
            (s for s in run.errors if s.rstrip("12") == workload and s in (key, workload)), None
        )
        return "failed" if step or key in run.errors else "n/a"
    text = fmt.format(value)
    if key in ("lost", "doubled") or pacer is None or run is pacer:
        return text
    ours = pacer.figures.get(key)
    if ours is None or not value:
        return text
    return f"{text} ({ours / value:.2f})"


def table(runs: list[Run]) -> str:
    pacer = next((r for r in runs if r.peer.name == "pacer"), None)
    header = ["workload"] + [f"{r.peer.name} ({r.peer.backend})" for r in runs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label, workload, fmt, _ in METRICS:
        if not any(key in r.figures or workload in r.errors or key in r.errors for r in runs):
            continue
        cells = [cell(r, pacer, key, workload, fmt) for r in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(runs: list[Run]) -> str:
    lines = []
    for run in runs:
        if run.peer.missing:
            lines.append(f"- **{run.peer.name}**: not measured: {run.peer.missing}")
            continue
        lines.append(f"- **{run.peer.name}** {run.peer.version()}: {run.peer.notes}")
        for step, error in run.errors.items():
            lines.append(f"  - {step} failed: `{error}`")
    return "\n".join(lines)


REDIS_PEERS = ("celery", "rq", "dramatiq", "huey")
DURABLE_REDIS_PORT = 6390


@contextlib.contextmanager
def durable_redis(folder: Path) -> Iterator[str]:
    """A private Redis that writes every command to its append-only file and fsyncs it before
    replying (``appendfsync always``), as a PostgreSQL commit is flushed before it returns.

    The Redis-backed peers are measured on the machine's Redis as their users run them by
    default (no persistence); on this one they pay for durability as Pacer does, which shows
    how much of a latency gap is the durable write rather than the queue's design.
    """
    command = [
        "redis-server", "--port", str(DURABLE_REDIS_PORT), "--bind", "127.0.0.1",
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", str(folder),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{DURABLE_REDIS_PORT}/9"
    try:
        import redis

        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {command}") from None
                time.sleep(0.05)
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        # Adapters read the URL when they are imported (here and in every worker process).
        os.environ["BENCH_REDIS"] = base.REDIS_URL = url
        yield url
    finally:
        server.terminate()
        server.wait(10)


def load(name: str, settings: Settings) -> Peer:
    module, _, cls = ADAPTERS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)(settings)
    except Exception as exc:  # a peer that cannot even be imported is reported as missing
        peer = Peer(settings)
        peer.name, peer.missing = name, f"adapter failed to load: {type(exc).__name__}: {exc}"
        return peer


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--peers", help="default: all; with --durable-redis, Pacer and the Redis-backed peers"
    )
    parser.add_argument("--workloads", help="default: all; with --durable-redis, drain,dispatch")
    parser.add_argument("--drain-jobs", type=int, default=20_000)
    parser.add_argument("--scheduled-jobs", type=int, default=1_000)
    parser.add_argument("--crash-jobs", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=400, help="seconds per drain or crash")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    parser.add_argument(
        "--durable-redis",
        action="store_true",
        help="run the Redis-backed peers on a private Redis with appendfsync always "
        f"(port {DURABLE_REDIS_PORT}); written to its own section",
    )
    args = parser.parse_args()
    if args.peers is None:
        args.peers = ",".join(("pacer", *REDIS_PEERS) if args.durable_redis else ADAPTERS)
    if args.workloads is None:
        # A durable Redis changes how fast jobs get in and out, not what a crash loses.
        args.workloads = (
            "drain,dispatch" if args.durable_redis else "drain,dispatch,scheduled,crash"
        )
    args.workloads = args.workloads.split(",")
    settings = Settings()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.durable_redis:
            stack.enter_context(durable_redis(Path(tmp)))
        logdir = Path(os.environ.get("BENCH_LOG_DIR", tmp))
        logdir.mkdir(parents=True, exist_ok=True)
        ctx = Context(
            Path(tmp) / "exec.log", logdir, args.timeout, settle=settings.redelivery_s * 3
        )
        for name in args.peers.split(","):
            peer = load(name, settings)
            if args.durable_redis and peer.backend == "redis":
                peer.backend = "redis, appendfsync always"
            print(f"{name}: {peer.missing or 'measuring'}", flush=True)
            runs.append(await measure(peer, args, ctx) if not peer.missing else Run(peer))
    result = table(runs)
    target = "bench-peers-durable" if args.durable_redis else "bench-peers"
    given = [a for a in sys.argv[1:] if a != "--durable-redis"]
    command = f"make {target}" + (" ARGS='" + " ".join(given) + "'" if given else "")
    heading = (
        "## Pacer and the Redis-backed peers on a durable Redis (`make bench-peers-durable`)\n\n"
        "The same harness, with Celery, RQ, Dramatiq and Huey on a private Redis that appends "
        "every write to its log and fsyncs it before replying (`appendfsync always`): the "
        "durability a PostgreSQL commit gives Pacer's enqueue and claim. The table above runs "
        "them on the machine's Redis as configured by default (no persistence).\n\n"
        if args.durable_redis
        else "## Pacer and its peers, side by side (`make bench-peers`)\n\n"
    )
    body = (
        heading + f"Machine: {describe()}. Command: `{command}`.\n"
        f"Drain of {args.drain_jobs:,} no-op jobs; dispatch of 200 jobs 20 ms apart to an idle "
        f"worker; {args.scheduled_jobs:,} jobs due at one instant 2 s ahead (2 workers); crash: "
        f"{args.crash_jobs:,} jobs of 0.5 to 1 s on 2 workers, one SIGKILLed after a fifth completed, "
        "a fresh one started. In brackets: Pacer's figure divided by the peer's (drain: above 1 "
        "Pacer is faster; latencies: below 1 Pacer is faster). Every job appends one line to a "
        "shared file when it completes (`bench/peers/exec_log.py`); all timings come from those "
        "lines. See `bench/peers/harness.py` for the method.\n\n"
        + result
        + "\n\nSettings (each worker process runs up to "
        f"{settings.concurrency} jobs at once in the crash workload; lease, visibility or heartbeat "
        f"timeouts set to {settings.redelivery_s:g} s where the system has one):\n" + notes(runs)
    )
    print(result)
    print(notes(runs))
    if not args.no_write:
        write_section("peers-durable-redis" if args.durable_redis else "peers", body)


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"took {time.monotonic() - started:.0f}s")
