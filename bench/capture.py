"""Which executions a monitor captures: polling ``GET /queued`` against following the event log.

    make bench-capture     # or: .venv/bin/python bench/capture.py [--seconds 150] [--stores sqlite]

Starts a real ``pacer up`` (SQLite file, or a fresh PostgreSQL database) with an admin token,
submits a seeded workload through ``POST /api/v1/tasks`` and one scheduled job, and watches it
three ways at once:

- ``GET /queued`` every 5 s, the old way monitoring clients observed executions: an execution
  counts as captured if any poll listed its id;
- ``GET /api/v1/events?after=…&wait=10`` long poll from position 0;
- ``GET /api/v1/events/stream`` (Server-Sent Events) from position 0.

An event-log observer captures an execution when it receives its ``started`` or a final event;
capture lag is its receive time minus the event's ``at`` (one machine, one clock), over every
event it received. Ground truth is every run the server lists (``GET /api/v1/runs``) as
finished at the end: the ids ``POST /api/v1/tasks`` returned plus the job's runs.

Workload (``--rate`` tasks/s, Poisson arrivals, ``--seed``), each type tagged with
``parameters.query`` so the types stay distinguishable (a python action has no query id):

| type | share / frequency | action | duration |
|---|---|---|---|
| lookup | 60 % | ``pacer.testing:sleep`` | 0.5 ms |
| count | 20 % | ``pacer.testing:noop`` | none |
| report | 14 % | ``pacer.testing:sleep`` | 50 ms |
| export | 5 % | ``pacer.testing:sleep`` | 1-3 s, uniform |
| broken | 1 % | ``pacer.testing:fail`` | fails once, no retry |
| reindex | once a minute (at :30 of the run) | ``pacer.testing:sleep`` | 2 s |
| audit | once a minute, job ``bench-audit``, cron ``0 * * * * *`` | ``pacer.testing:sleep`` | 0.5 ms |
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import drop_database, fresh_database
from machine import describe, write_section

FINAL = {"succeeded", "failed", "cancelled", "skipped", "dead"}
CAPTURING_KINDS = {"started", "succeeded", "failed", "cancelled", "skipped"}
SLEEP = {"kind": "python", "function": "pacer.testing:sleep"}
NOOP = {"kind": "python", "function": "pacer.testing:noop"}
FAIL = {"kind": "python", "function": "pacer.testing:fail"}
NO_RETRY = {"max_attempts": 1}
AUDIT_JOB = "bench-audit"


@dataclass
class Observed:
    """What one observer saw: execution id -> first receive time, and every event's lag."""

    name: str
    captured: dict[str, float] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    lags_by_kind: dict[str, list[float]] = field(default_factory=dict)
    events: int = 0
    requests: int = 0

    def take(self, event: dict[str, Any], received: float) -> None:
        self.events += 1
        lag = (received - datetime.fromisoformat(event["at"]).timestamp()) * 1000
        self.lags_ms.append(lag)
        self.lags_by_kind.setdefault(event["kind"], []).append(lag)
        if event["kind"] in CAPTURING_KINDS:
            self.captured.setdefault(event["run_id"], received)


# -- the workload -------------------------------------------------------------------------------


def workload(seconds: float, rate: float, seed: int) -> list[tuple[float, dict[str, Any]]]:
    """(offset s, task body) in time order; the same for the same seed."""
    rng = random.Random(seed)
    plan: list[tuple[float, dict[str, Any]]] = []
    at = rng.expovariate(rate)
    while at < seconds:
        plan.append((at, frequent_task(rng)))
        at += rng.expovariate(rate)
    for minute in range(int(seconds // 60) + 1):
        if (offset := minute * 60 + 30) < seconds:
            body = {"action": SLEEP, "parameters": {"query": "reindex", "seconds": 2.0}}
            plan.append((offset, body))
    return sorted(plan, key=lambda item: item[0])


def frequent_task(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.60:
        return {"action": SLEEP, "parameters": {"query": "lookup", "seconds": 0.0005}}
    if roll < 0.80:
        return {"action": NOOP, "parameters": {"query": "count"}}
    if roll < 0.94:
        return {"action": SLEEP, "parameters": {"query": "report", "seconds": 0.05}}
    if roll < 0.99:
        seconds = round(rng.uniform(1.0, 3.0), 3)
        return {"action": SLEEP, "parameters": {"query": "export", "seconds": seconds}}
    return {"action": FAIL, "parameters": {"query": "broken"}, "retry": NO_RETRY}


async def submit(client: httpx.AsyncClient, plan: list[tuple[float, dict[str, Any]]]) -> list[str]:
    """POST each task at its offset (concurrently, so a slow answer does not delay the rest)."""
    started = time.monotonic()

    async def post(body: dict[str, Any]) -> str:
        response = await client.post("/api/v1/tasks", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    posts = []
    for offset, body in plan:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        posts.append(asyncio.create_task(post(body)))
    return list(await asyncio.gather(*posts))


async def create_audit_job(client: httpx.AsyncClient) -> None:
    job = {
        "name": AUDIT_JOB,
        "action": SLEEP,
        "schedule": {"cron": "0 * * * * *"},
        "parameters": {"query": "audit", "seconds": 0.0005},
    }
    (await client.post("/api/v1/jobs", json=job)).raise_for_status()


# -- the observers --------------------------------------------------------------------------------


async def poll_queued(client: httpx.AsyncClient, every_s: float, stop: asyncio.Event) -> Observed:
    seen = Observed("GET /queued every 5 s")
    while not stop.is_set():
        response = await client.get("/queued")
        response.raise_for_status()
        seen.requests += 1
        received = time.time()
        for item in response.json():
            seen.captured.setdefault(item["execution"]["id"], received)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    return seen


async def long_poll(client: httpx.AsyncClient, stop: asyncio.Event) -> Observed:
    seen = Observed("events long poll")
    after = 0
    while not stop.is_set():
        params = {"after": after, "limit": 1000, "wait": 10}
        response = await client.get("/api/v1/events", params=params, timeout=30)
        received = time.time()
        response.raise_for_status()
        seen.requests += 1
        page = response.json()
        if page["missed"] is not None:
            print(f"long poll: missed {page['missed']}", flush=True)
        for event in page["items"]:
            seen.take(event, received)
        after = page["next_after"]
    return seen


async def follow_sse(client: httpx.AsyncClient, stop: asyncio.Event) -> Observed:
    seen = Observed("events SSE stream")
    timeout = httpx.Timeout(10, read=None)
    async with client.stream("GET", "/api/v1/events/stream", timeout=timeout) as response:
        response.raise_for_status()
        seen.requests += 1
        async for data in sse_data(response.aiter_lines(), stop):
            seen.take(json.loads(data), time.time())
    return seen


async def sse_data(lines: AsyncIterator[str], stop: asyncio.Event) -> AsyncIterator[str]:
    """The ``data`` of each ``event: run`` frame, until ``stop`` (checked between lines)."""
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "run":
            yield line[6:]
        if stop.is_set():
            return


# -- ground truth ---------------------------------------------------------------------------------


async def finished_runs(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Every run the server lists, by id (the listing is keyset-paged, 500 a page)."""
    runs: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v1/runs", params=params)
        response.raise_for_status()
        page = response.json()
        runs.update((run["id"], run) for run in page["items"])
        if not (cursor := page["next_cursor"]):
            return runs


async def until_finished(client: httpx.AsyncClient, ids: list[str], limit_s: float = 60) -> None:
    """Wait for every submitted task to finish (the last exports take up to 3 s)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        runs = await finished_runs(client)
        if all(runs.get(run_id, {}).get("status") in FINAL for run_id in ids):
            return
        await asyncio.sleep(1)
    print("warning: some tasks did not finish in time", flush=True)


# -- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def pacer_up(url: str, token: str, workdir: Path) -> AsyncIterator[str]:
    """A ``pacer up`` subprocess; yields its base URL once ``/healthz`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "PACER_DATABASE_URL": url,
        "PACER_ADMIN_TOKEN": token,
        "PACER_CONFIG_FILE": str(workdir / "absent.toml"),
        "PACER_LOG_LEVEL": "WARNING",
    }
    async with running_up(port, env, workdir / f"pacer-{port}.log") as base:
        yield base


@contextlib.asynccontextmanager
async def running_up(port: int, env: dict[str, str], log: Path, *args: str) -> AsyncIterator[str]:
    """``pacer up --port PORT ARGS`` with ``env``; yields its base URL once ``/healthz``
    answers, and stops it with SIGTERM."""
    command = [sys.executable, "-m", "pacer.cli", "up", "--port", str(port), *args]
    process = spawn(command, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as probe:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                if process.poll() is not None:
                    raise RuntimeError(f"pacer up exited: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=output, stderr=output)


# -- one measurement ------------------------------------------------------------------------------


@dataclass
class Result:
    store: str
    truth: set[str]
    observers: list[Observed]
    submitted: int
    ghosts: int


async def measure(kind: str, args: argparse.Namespace, workdir: Path) -> Result:
    url = fresh_database(kind, workdir, prefix="capture")
    token = secrets.token_urlsafe(24)
    try:
        async with pacer_up(url, token, workdir) as base:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
                return await observe(kind, client, args)
    finally:
        drop_database(url)


async def observe(kind: str, client: httpx.AsyncClient, args: argparse.Namespace) -> Result:
    stop = asyncio.Event()
    observers = [
        asyncio.create_task(poll_queued(client, args.poll_s, stop)),
        asyncio.create_task(long_poll(client, stop)),
        asyncio.create_task(follow_sse(client, stop)),
    ]
    await create_audit_job(client)
    plan = workload(args.seconds, args.rate, args.seed)
    ids = await submit(client, plan)
    await until_finished(client, ids)
    await asyncio.sleep(2)  # the last final events reach the followers
    runs = await finished_runs(client)
    stop.set()
    seen = list(await asyncio.gather(*observers))
    truth = {run_id for run_id, run in runs.items() if run["status"] in FINAL}
    followed = set(seen[1].captured) | set(seen[2].captured)
    return Result(kind, truth, seen, len(ids), len(followed - set(runs)))


def lag_by_kind(seen: Observed) -> str:
    """p50/p99 lag per event kind, to show where the lag comes from."""
    parts = []
    for kind in sorted(seen.lags_by_kind):
        lags = seen.lags_by_kind[kind]
        parts.append(f"{kind} {percentile(lags, 50):.0f}/{percentile(lags, 99):.0f}")
    return ", ".join(parts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rows(result: Result) -> list[str]:
    lines = []
    total = len(result.truth)
    for seen in result.observers:
        captured = len(seen.captured.keys() & result.truth)
        share = 100 * captured / total
        lag = "-"
        if seen.lags_ms:
            lag = f"{percentile(seen.lags_ms, 50):.1f} / {percentile(seen.lags_ms, 99):.1f}"
        lines.append(
            f"| {result.store} | {seen.name} | {captured:,} / {total:,} | {share:.1f} % "
            f"| {lag} | {seen.requests:,} |"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=150.0, help="workload length")
    parser.add_argument("--rate", type=float, default=20.0, help="tasks per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--poll-s", type=float, default=5.0, help="GET /queued period")
    parser.add_argument("--stores", default="sqlite,postgresql", help="--store works too")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args()
    lines: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            result = await measure(kind, args, Path(tmp))
            lines += rows(result)
            notes.append(
                f"- {kind}: {result.submitted:,} tasks submitted, {len(result.truth):,} runs finished "
                f"(with the job's), {result.observers[1].events:,} events; "
                f"executions the stream saw that the server does not list: {result.ghosts}; "
                f"SSE lag p50/p99 ms by kind: {lag_by_kind(result.observers[2])}."
            )
            print("\n".join(lines[-3:] + notes[-1:]), flush=True)
    table = "\n".join(
        [
            "| store | observer | executions captured / finished | share | lag p50 / p99 ms | requests |",
            "|---|---|---|---|---|---|",
            *lines,
        ]
    )
    command = f".venv/bin/python bench/capture.py --seconds {args.seconds:g} --stores {args.stores}"
    body = (
        "## Capturing executions: polling `GET /queued` against the event log (`make bench-capture`)\n\n"
        f"Machine: {describe()}.\nCommand: `{command}` (seed {args.seed}, {args.rate:g} tasks/s; "
        "the mix is in the script's docstring: 80 % of runs take under 1 ms, a few take 1-3 s, "
        "two queries run once a minute). One `pacer up` per store, default settings; an "
        "execution is captured by the log observers when its `started` or final event arrives; "
        "lag is receive time minus the event's `at`, over every event.\n\n"
        + table
        + "\n\n"
        + "\n".join(notes)
        + "\n\nA poll of `GET /queued` lists only the runs waiting at that instant; a task waits "
        "100 ms (the ad-hoc delay) and then runs in milliseconds, so a 5 s poll sees about "
        "0.1 / 5 = 2 % of them, whatever their duration."
    )
    print(table)
    if not args.no_write:
        write_section("capture", body)


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"took {time.monotonic() - started:.0f}s")
