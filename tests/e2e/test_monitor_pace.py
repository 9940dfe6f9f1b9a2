"""``pacer monitor --pace`` against a real-time ``sim`` server with 1 s windows: the pacer
delays executions over HTTP to hold the window average near the target, and a SIGKILL of the
pacer mid-run does not lose its place. Marked slow: it runs traffic in real time."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_capture import AUTH, PACER, TOKEN, Server, _until

pytestmark = pytest.mark.slow


def _drive(server: Server, seconds: float, rate: float, stop: threading.Event) -> None:
    """Poisson arrivals of the sim scenario's short queries, above the target on purpose."""
    rng = random.Random(11)
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10, headers=AUTH) as client:
        while time.monotonic() < deadline and not stop.is_set():
            query = rng.choice(["orders", "search", "lookup"])
            body = {"action": {"kind": "sim", "query": query}}
            with contextlib.suppress(httpx.TransportError):
                client.post(f"{server.base}/api/v1/tasks", json=body)
            time.sleep(rng.expovariate(rate))


def _pacer(folder: Path, server: Server, n: int) -> subprocess.Popen[bytes]:
    command = [*PACER, "monitor", "run", "--url", server.base, "--token", TOKEN]
    command += ["--db", str(folder / "pacer.db"), "--name", "pacer", "--pace"]
    command += ["--window", "1", "--target", "70", "--max-delay", "5", "--keepalive", "0.5"]
    command += ["--resources-interval", "0.5"]
    log = open(folder / f"pacer-{n}.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, stdout=log, stderr=log)


def _paced_position(folder: Path) -> int:
    try:
        with sqlite3.connect(folder / "pacer.db") as conn:
            row = conn.execute("SELECT position FROM pacer_state").fetchone()
        conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _windows(server: Server) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.base}/api/v1/resources", headers=AUTH, params={"limit": 10_000})
    windows: list[dict[str, Any]] = answer.json()
    return windows


def test_pacer_holds_the_target_and_survives_a_sigkill(tmp_path: Path) -> None:
    """Delays are posted, the paced windows stay near the target, and after a SIGKILL the
    restarted pacer resumes from its saved position and keeps pacing."""
    server = Server(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/pacer.db")
    server.env |= {
        "PACER_RESOURCE_SAMPLER": "sim",
        "PACER_SIM_SCENARIO": "steady",
        "PACER_RESOURCE_WINDOW_S": "1",
        "PACER_RESOURCE_SAMPLE_S": "0.05",
    }
    server.start()
    stop = threading.Event()
    pacer = _pacer(tmp_path, server, 0)
    traffic = threading.Thread(target=_drive, args=(server, 40.0, 40.0, stop))
    try:
        traffic.start()
        _until(lambda: _paced_position(tmp_path) > 200, 60)
        pacer.send_signal(signal.SIGKILL)
        pacer.wait()
        saved = _paced_position(tmp_path)
        pacer = _pacer(tmp_path, server, 1)
        _until(lambda: _paced_position(tmp_path) > saved + 200, 60)
        traffic.join()
    finally:
        stop.set()
        pacer.terminate()
        pacer.wait(timeout=30)
        server.stop()
    # The pacer's own file holds what it captured: the log's delays and the windows.
    with sqlite3.connect(tmp_path / "pacer.db") as conn:
        delayed = conn.execute("SELECT count(*) FROM events WHERE kind = 'delayed'").fetchone()[0]
        cpu = [r[0] for r in conn.execute("SELECT cpu_average FROM resources ORDER BY timestamp")]
    conn.close()
    assert delayed > 0
    late = cpu[len(cpu) // 2 :]  # after the estimator has learnt
    assert late
    assert sum(late) / len(late) < 80
