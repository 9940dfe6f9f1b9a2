"""Real-time simulated traffic for the pacing tests: a ``sim`` server with 1 s windows, Poisson
arrivals of sim queries posted over HTTP on a wall-clock schedule, and readers of what the
server recorded (its execution log and its resource windows)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from test_capture import AUTH, Server

TARGET = 70.0
RESOURCES = ("cpu", "io", "memory")
#: The sim sampler on 1 s windows, sampled finely enough that a window has 20 samples.
SIM_ENV = {
    "PACER_RESOURCE_SAMPLER": "sim",
    "PACER_SIM_SCENARIO": "steady",
    "PACER_RESOURCE_WINDOW_S": "1",
    "PACER_RESOURCE_SAMPLE_S": "0.05",
}


def sim_server(folder: Path, *args: str, **env: str) -> Server:
    """``pacer up`` (with ``args``) on a real-time simulated database, on its own SQLite file."""
    folder.mkdir(parents=True, exist_ok=True)
    server = Server(folder, f"sqlite+aiosqlite:///{folder}/server.db", *args)
    server.env |= SIM_ENV | env
    return server


@dataclass
class Traffic:
    """Poisson arrivals of sim queries, phase after phase (seconds, rates per second), posted
    as tasks. Arrival times follow the wall clock, not the answers, so a slow answer does not
    thin the load. Keeps the ids of the runs created and the epoch at which each phase began."""

    server: Server
    phases: list[tuple[float, dict[str, float]]]
    seed: int = 11
    ids: list[str] = field(default_factory=list)
    began: list[float] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._post, daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join()

    def _post(self) -> None:
        rng = random.Random(self.seed)
        with httpx.Client(timeout=10, headers=AUTH) as client:
            for seconds, rates in self.phases:
                self.began.append(time.time())
                self._phase(client, rng, seconds, rates)

    def _phase(
        self, client: httpx.Client, rng: random.Random, seconds: float, rates: dict[str, float]
    ) -> None:
        queries, weights = list(rates), list(rates.values())
        begin, at = time.monotonic(), rng.expovariate(sum(weights))
        while at < seconds:
            time.sleep(max(0.0, begin + at - time.monotonic()))
            body = {"action": {"kind": "sim", "query": rng.choices(queries, weights)[0]}}
            with contextlib.suppress(httpx.TransportError):
                answer = client.post(f"{self.server.base}/api/v1/tasks", json=body)
                if answer.status_code == 201:
                    self.ids.append(answer.json()["id"])
            at += rng.expovariate(sum(weights))
        time.sleep(max(0.0, begin + seconds - time.monotonic()))


class ExecutionLog:
    """The server's execution log, read incrementally by position."""

    def __init__(self, server: Server) -> None:
        self.server, self.events, self.after = server, list[dict[str, Any]](), 0

    def read(self) -> list[dict[str, Any]]:
        with httpx.Client(timeout=30, headers=AUTH) as client:
            while True:
                params = {"after": self.after, "limit": 1000}
                page = client.get(f"{self.server.base}/api/v1/events", params=params).json()
                if not page["items"]:
                    return self.events
                self.events += page["items"]
                self.after = page["items"][-1]["position"]

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        """The last event of ``kind`` of each run, by run id."""
        return {e["run_id"]: e for e in self.events if e["kind"] == kind}

    def finished(self, ids: list[str]) -> bool:
        """Every one of ``ids`` has reached a final state (read afresh)."""
        self.read()
        final = {"succeeded", "failed", "cancelled", "skipped"}
        done = {e["run_id"] for e in self.events if e["kind"] in final}
        return done >= set(ids)


def epoch(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def windows(server: Server) -> list[dict[str, Any]]:
    """Every closed resource window the server stored, oldest first."""
    answer = httpx.get(f"{server.base}/api/v1/resources", headers=AUTH, params={"limit": 10_000})
    found: list[dict[str, Any]] = answer.json()
    return found


def averages(found: list[dict[str, Any]], start: float, end: float) -> dict[str, list[float]]:
    """Each resource's window averages for the windows that closed in ``(start, end]``."""
    inside = [w for w in found if start < w["timestamp"] / 1000 <= end]
    return {r: [w[r]["average"] for w in inside] for r in RESOURCES}
