"""The registration data set the demo queries: a deterministic generator.

Same seed, same file, byte for byte in content: the demo's results and the tests that check
them do not depend on the day they run. The data ends on 2022-12-22, so the demo jobs use
``as_of = 2022-12-22`` to treat that day as "today".
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path

ROWS = 1_002
LAST_DAY = date(2022, 12, 22)
FIRST_DAY = LAST_DAY - timedelta(days=90)
SEED = 20221222

SCHEMA = (
    "CREATE TABLE registration ("
    "id INTEGER PRIMARY KEY, timestamp TEXT NOT NULL, weight REAL NOT NULL)"
)


def registrations(seed: int = SEED) -> list[tuple[int, str, float]]:
    """``ROWS`` registrations between ``FIRST_DAY`` and ``LAST_DAY`` (both included), in time
    order, with weights around 75 kg; the last one falls on ``LAST_DAY``."""
    rng = random.Random(seed)
    start = datetime.combine(FIRST_DAY, time())
    span = (LAST_DAY - FIRST_DAY).days + 1
    seconds = sorted(rng.randrange(span * 86_400) for _ in range(ROWS - 1))
    seconds.append((span - 1) * 86_400 + 17 * 3600)  # the data set's last day has a row
    rows = []
    for number, offset in enumerate(sorted(seconds), start=1):
        stamp = (start + timedelta(seconds=offset)).strftime("%Y-%m-%d %H:%M:%S")
        weight = round(min(150.0, max(40.0, rng.gauss(75.0, 12.0))), 1)
        rows.append((number, stamp, weight))
    return rows


def write_registrations(path: Path, seed: int = SEED) -> bool:
    """Create the SQLite file at ``path``; False (and untouched) when it already holds the set."""
    if path.exists() and _row_count(path) == ROWS:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as conn:
        conn.execute(SCHEMA)
        conn.executemany("INSERT INTO registration VALUES (?, ?, ?)", registrations(seed))
    conn.close()
    partial.replace(path)  # readers never see a half-written file
    return True


def _row_count(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            count: int = conn.execute("SELECT count(*) FROM registration").fetchone()[0]
        conn.close()
        return count
    except sqlite3.Error:
        return -1
