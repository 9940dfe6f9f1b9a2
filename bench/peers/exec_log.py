"""How every system's task reports an execution: one line appended to one shared file.

The same for every peer, so the measurement costs each of them the same. A line is written
with one ``write(2)`` on a file opened ``O_APPEND``: Linux serialises appends to a regular
file, lines from concurrent processes do not interleave, and a line written before a SIGKILL
survives it (it is in the page cache; only the machine crashing could lose it).

Rejected: an INSERT into a PostgreSQL table per execution (it would cost one durable commit
per no-op job, more than some peers spend on the job itself, and it would load the same
server the PostgreSQL peers use); a Redis INCR (one network round trip per job, and no
per-job record to count doubles from).
"""

from __future__ import annotations

import asyncio
import os
import time
import zlib

_fd: int | None = None
_pid = 0


def _descriptor() -> int:
    global _fd, _pid
    if _fd is None or _pid != os.getpid():  # reopen after fork (RQ forks a horse per job)
        _fd = os.open(os.environ["BENCH_EXEC_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = os.getpid()
    return _fd


def write(key: str, started: float) -> None:
    """Record one completed execution of ``key``: its start and end (epoch seconds)."""
    line = f"{key} {started:.6f} {time.time():.6f} {os.getpid()}\n"
    os.write(_descriptor(), line.encode())


def duration(key: str, sleep_s: float) -> float:
    """Between ``sleep_s`` and twice that, fixed per key: completions spread out in time, so a
    kill lands at an arbitrary point, not always just after (or before) a wave of them."""
    return sleep_s * (1 + zlib.crc32(key.encode()) % 1000 / 1000)


def record(key: str, sleep_s: float = 0.0) -> None:
    """The benchmark's task for thread- and process-based workers."""
    started = time.time()
    if sleep_s:
        time.sleep(duration(key, sleep_s))
    write(key, started)


async def record_async(key: str, sleep_s: float = 0.0) -> None:
    """The benchmark's task for asyncio workers (no thread hop for a no-op)."""
    started = time.time()
    if sleep_s:
        await asyncio.sleep(duration(key, sleep_s))
    write(key, started)


def read(path: str) -> list[tuple[str, float, float]]:
    """Every recorded execution: (key, started, ended)."""
    try:
        with open(path) as file:
            text = file.read()
    except FileNotFoundError:
        return []
    # A read racing an append can see the line half written (reads do not wait for writes
    # to a regular file): only lines that have their newline are complete.
    lines = text.split("\n")[:-1]
    rows = []
    for line in lines:
        key, started, ended, _ = line.split()
        rows.append((key, float(started), float(ended)))
    return rows
