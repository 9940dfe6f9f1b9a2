"""The README's first command, end to end: ``pacer up`` in the examples folder serves the
registration demo, and its two metric jobs post their results to ``/result``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacer.demo import registrations

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PACER = [sys.executable, "-m", "pacer.cli"]
JOBS = ("registrations-weekly-average", "registrations-per-day")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A copy of examples/ with ``pacer demo init`` done and ``pacer up`` serving on a free
    port: on the configured SQLite file, or with PACER_DATABASE_URL pointing at PostgreSQL."""
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("*.db*", "data", "admin-token"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACER_")}
    if request.param == "postgresql":
        env["PACER_DATABASE_URL"] = request.getfixturevalue("make_pg_database")()
    port = _free_port()
    subprocess.run([*PACER, "demo", "init"], cwd=folder, env=env, check=True)
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - lives as long as the process
    server = subprocess.Popen(
        [*PACER, "up", "--jobs-dir", "jobs", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}", folder, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_for(check: Any, timeout: float = 60.0) -> Any:
    """Poll a real server until ``check`` returns something truthy (bounds a broken test)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the demo")
        time.sleep(0.2)


def test_pacer_up_demo_posts_both_results(demo: tuple[str, Path, dict[str, str]]) -> None:
    """Both demo jobs run (triggered here rather than waiting for the minute's fire) and their
    results arrive in GET /result; the runs show in ``pacer runs list``."""
    base, folder, env = demo
    _wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200)
    token = (folder / "admin-token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    for name in JOBS:
        answer = httpx.post(f"{base}/api/v1/jobs/{name}/trigger", headers=auth)
        assert 202 == answer.status_code, answer.text

    every_day = {at[:10] for _, at, _ in registrations()}

    def both_results() -> list[Any] | None:
        """Both jobs' posts have all arrived (the per-day job posts one day at a time)."""
        results = httpx.get(f"{base}/result").json()
        weekly = [r for r in results if isinstance(r, dict) and "average_weight" in r]
        days = {r["date"] for r in results if isinstance(r, dict) and "count" in r}
        return results if weekly and days == every_day else None

    results = _wait_for(both_results)
    weekly = next(r for r in results if "average_weight" in r)
    assert {"year": 2022, "week": 50} == {k: weekly[k] for k in ("year", "week")}
    week_50 = [w for _, at, w in registrations() if "2022-12-12" <= at < "2022-12-19"]
    assert sum(week_50) / len(week_50) == pytest.approx(weekly["average_weight"])
    daily = {r["date"]: r["count"] for r in results if "count" in r}
    expected = Counter(at[:10] for _, at, _ in registrations())
    assert expected == daily
    listed = subprocess.run(
        [*PACER, "runs", "list", "--json"], cwd=folder, env=env, check=True, capture_output=True
    )
    statuses = {(run["job_id"] is not None, run["status"]) for run in json.loads(listed.stdout)}
    assert (True, "succeeded") in statuses
