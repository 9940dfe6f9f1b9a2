"""Starting real ``pacer`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACER = [sys.executable, "-m", "pacer.cli"]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts ``pacer <role>`` subprocesses with short leases; kills leftovers at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(role: str, database_url: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "PACER_DATABASE_URL": database_url,
            "PACER_LEASE_S": "2",
            "PACER_HEARTBEAT_S": "0.3",
            "PACER_POLL_S": "0.5",
            "PACER_GRACE_S": "2",
            "PACER_CONFIG_FILE": str(tmp_path / "absent.toml"),
            **env,
        }
        log = open(tmp_path / f"{role}-{len(started)}.log", "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen([*PACER, role, *args], env=environment, stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
