"""The capture proof: a monitor that never loses an execution, whatever fails.

A real ``pacer up`` runs a workload of frequent sub-millisecond queries, slower ones, rare
failing ones and a schedule firing every second. Meanwhile the ``pacer monitor`` process,
connected through a TCP proxy the test controls, is SIGKILLed three times, the connection is
reset, stalled half-way through a response and refused for a while, and the server is
restarted once. At the end the monitor's own store holds exactly the server's execution log:
zero missing, zero duplicated.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_demo import _free_port

from faultproxy import FaultProxy
from support import create_pg_database, drop_pg_databases

TOKEN = "pacer_capture-proof-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACER = [sys.executable, "-m", "pacer.cli"]
#: The workload: (function, parameters, share). Sub-millisecond no-ops dominate.
MIX: list[tuple[str, dict[str, Any], float]] = [
    ("pacer.testing:noop", {}, 0.80),
    ("pacer.testing:sleep", {"seconds": 0.02}, 0.18),
    ("pacer.testing:fail", {}, 0.02),
]
#: Tasks posted one after another while the faults happen: enough to span them (each takes a
#: few ms to tens of ms) and to include failures (2 %), within the test's 120 s on a slow day.
TASKS = 1_000


class Server:
    """``pacer up`` on a fixed port, restartable on the same store."""

    def __init__(self, folder: Path, url: str, *args: str) -> None:
        self.folder, self.port, self.args = folder, _free_port(), args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PACER_")}
        self.env |= {
            "PACER_DATABASE_URL": url,
            "PACER_ADMIN_TOKEN": TOKEN,
            "PACER_CONFIG_FILE": str(folder / "absent.toml"),
            "PACER_SSE_KEEPALIVE_S": "0.5",
            "PACER_GRACE_S": "2",
        }
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        log = open(self.folder / f"up-{self.starts}.log", "wb")  # noqa: SIM115 - process-long
        command = [*PACER, "up", "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        self.starts += 1
        _until(lambda: _ok(f"{self.base}/healthz"), 30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Monitor:
    """``pacer monitor run`` through the proxy; SIGKILLable and restartable."""

    def __init__(self, folder: Path, url: str) -> None:
        self.db = folder / "monitor.db"
        self.command = [*PACER, "monitor", "run", "--url", url, "--token", TOKEN]
        self.command += ["--db", str(self.db), "--name", "proof", "--keepalive", "0.5"]
        self.command += ["--poll-wait", "2", "--resources-interval", "0"]
        self.folder, self.starts = folder, 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.folder / f"monitor-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(self.command, stdout=log, stderr=log)
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def position(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as conn:
            try:
                row = conn.execute("SELECT position FROM stream").fetchone()
            except sqlite3.OperationalError as exc:
                # The monitor creates its file, then its tables in one transaction: a read in
                # between finds the file without them, which is "nothing stored yet".
                if "no such table" not in str(exc):
                    raise
                row = None
        conn.close()
        return int(row[0]) if row else 0

    def events(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT position, run_id, kind, attempt, status FROM events ORDER BY position"
            ).fetchall()
            gaps = conn.execute("SELECT count(*) FROM gaps").fetchone()[0]
        conn.close()
        assert 0 == gaps
        return rows


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _until(check: Callable[[], bool], timeout: float) -> None:
    """Poll real processes until ``check`` holds; the timeout only bounds a broken test."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(0.05)


def _post_task(server: Server, client: httpx.Client, rng: random.Random) -> None:
    """One task; retried through the server's restart with the same Idempotency-Key."""
    roll, acc = rng.random(), 0.0
    function, parameters = MIX[-1][0], MIX[-1][1]
    for name, params, share in MIX:
        acc += share
        if roll < acc:
            function, parameters = name, params
            break
    body = {
        "action": {"kind": "python", "function": function},
        "parameters": parameters,
        "retry": {"max_attempts": 2, "backoff_s": 0},
    }
    headers = {**AUTH, "Idempotency-Key": str(uuid.uuid4())}
    deadline, last = time.monotonic() + 90, "no answer"
    while time.monotonic() < deadline:
        try:
            answer = client.post(f"{server.base}/api/v1/tasks", json=body, headers=headers)
            if answer.status_code in (200, 201):
                return
            last = f"{answer.status_code} {answer.text[:300]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise AssertionError(f"could not create a task: {last}")


def _workload(server: Server, count: int, done: threading.Event) -> None:
    rng = random.Random(4)
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            _post_task(server, client, rng)
    done.set()


def _server_events(server: Server) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    after = 0
    with httpx.Client(timeout=30, headers=AUTH) as client:
        while True:
            page = client.get(
                f"{server.base}/api/v1/events", params={"after": after, "limit": 1000}
            )
            items = page.json()["items"]
            if not items:
                return found
            found += [
                (e["position"], e["run_id"], e["kind"], e["attempt"], e["status"]) for e in items
            ]
            after = items[-1]["position"]


def _settled(server: Server) -> bool:
    """Nothing waiting or running: every run has reached a final state."""
    with httpx.Client(timeout=10, headers=AUTH) as client:
        waiting = client.get(f"{server.base}/queued").json()
        running = client.get(f"{server.base}/api/v1/runs", params={"status": "running"}).json()
    return not waiting and not running["items"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/pacer.db"
        return
    name, url = create_pg_database()
    yield url
    drop_pg_databases([name])


def test_monitor_captures_every_execution_through_kills_faults_and_a_restart(
    tmp_path: Path, store_url: str
) -> None:
    """After kills, resets, stalls, refusals and a server restart, the monitor's store equals
    the server's execution log exactly."""
    server = Server(tmp_path, store_url)
    server.start()
    proxy = FaultProxy("127.0.0.1", server.port).start()
    monitor = Monitor(tmp_path, proxy.url)
    job = {
        "name": "every-second",
        "schedule": {"cron": "* * * * * *"},
        "action": {"kind": "python", "function": "pacer.testing:noop"},
    }
    assert 201 == httpx.post(f"{server.base}/api/v1/jobs", json=job, headers=AUTH).status_code
    done = threading.Event()
    workload = threading.Thread(target=_workload, args=(server, TASKS, done))
    try:
        monitor.start()
        workload.start()
        _until(lambda: monitor.position() > 0, 30)
        monitor.kill()  # 1: as the first events arrive
        monitor.start()
        time.sleep(0.5)
        proxy.reset()
        time.sleep(0.5)
        proxy.stall(after_bytes=3_000)  # half-way through a response
        time.sleep(1.5)
        proxy.restore()
        monitor.kill()  # 2: mid-stream
        monitor.start()
        proxy.drop()  # connections refused
        time.sleep(1.0)
        proxy.restore()
        server.stop()  # the server restarts once, on the same store
        server.start()
        time.sleep(0.5)
        monitor.kill()  # 3: after the restart
        monitor.start()
        assert done.wait(120)
        httpx.post(f"{server.base}/api/v1/jobs/every-second/pause", headers=AUTH)
        _until(lambda: _settled(server), 60)
        expected = _server_events(server)
        _until(lambda: monitor.position() >= expected[-1][0], 60)
    finally:
        if monitor.process is not None and monitor.process.poll() is None:
            monitor.process.terminate()
            monitor.process.wait(timeout=30)
        proxy.close()
        server.stop()
        workload.join(timeout=5)
    assert expected == monitor.events()
    kinds = {kind for _, _, kind, _, _ in expected}
    assert {"queued", "started", "succeeded", "retrying", "failed"} <= kinds
    assert len({run for _, run, _, _, _ in expected}) >= TASKS
