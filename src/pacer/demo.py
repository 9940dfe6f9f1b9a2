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
from typing import Literal

from pacer.domain.errors import InvalidInput

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
    """Create the SQLite file at ``path``; False (and untouched) when it already holds the set.

    Anything else found there is refused, never overwritten: the path is a user's argument,
    and a typo must not replace their database. Only a file holding nothing but the demo's
    table (an older or edited copy) or an empty file is rewritten.
    """
    found = _found_at(path) if path.exists() else "other demo"
    if found == "data set":
        return False
    if found == "something else":
        raise InvalidInput(
            str(path), "holds something other than the demo's data set; not overwritten"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as conn:
        conn.execute(SCHEMA)
        conn.executemany("INSERT INTO registration VALUES (?, ?, ?)", registrations(seed))
    conn.close()
    partial.replace(path)  # readers never see a half-written file
    return True


def _found_at(path: Path) -> Literal["data set", "other demo", "something else"]:
    """What an existing ``path`` holds: the data set, a copy of the demo's table with other
    rows (or an empty file), or anything else (another database, another kind of file)."""
    if not path.is_file():
        return "something else"
    if path.stat().st_size == 0:
        return "other demo"
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            schema = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
            if schema != [("table", "registration", SCHEMA)]:
                return "something else"
            count: int = conn.execute("SELECT count(*) FROM registration").fetchone()[0]
        conn.close()
    except sqlite3.Error:  # not an SQLite file
        return "something else"
    return "data set" if count == ROWS else "other demo"
