"""The demo's registration data set is deterministic and shaped as the issue states."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from pacer.demo import LAST_DAY, ROWS, registrations, write_registrations
from pacer.domain.errors import InvalidInput


def test_same_seed_same_rows_and_the_stated_shape() -> None:
    """1,002 rows in time order, ids 1..1002, ending on 2022-12-22; the same twice."""
    rows = registrations()
    assert rows == registrations()
    assert ROWS == len(rows) == 1_002
    assert list(range(1, ROWS + 1)) == [row[0] for row in rows]
    assert sorted(row[1] for row in rows) == [row[1] for row in rows]
    assert date(2022, 12, 22) == LAST_DAY
    assert rows[-1][1].startswith("2022-12-22")
    assert all(40.0 <= row[2] <= 150.0 for row in rows)


def test_file_is_written_once_with_the_schema(tmp_path: Path) -> None:
    """The SQLite file has the stated table; a second call leaves it alone."""
    path = tmp_path / "data" / "registrations.db"
    assert write_registrations(path) is True
    assert write_registrations(path) is False
    with sqlite3.connect(path) as conn:
        columns = [(r[1], r[2], r[3]) for r in conn.execute("PRAGMA table_info(registration)")]
        count = conn.execute("SELECT count(*) FROM registration").fetchone()[0]
    conn.close()
    assert [("id", "INTEGER", 0), ("timestamp", "TEXT", 1), ("weight", "REAL", 1)] == columns
    assert ROWS == count


def _sqlite_with(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    conn.close()


def test_anything_else_at_the_path_is_refused_and_left_alone(tmp_path: Path) -> None:
    """Another SQLite database, a file of another kind, or the demo's table beside other
    tables is refused, byte for byte untouched; a copy of the demo's table alone, with other
    rows, is rewritten."""
    other_db = tmp_path / "other.db"
    _sqlite_with(other_db, "CREATE TABLE customers (id INTEGER)")
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    mixed = tmp_path / "mixed.db"
    write_registrations(mixed)
    _sqlite_with(mixed, "CREATE TABLE extra (id INTEGER)")
    for path in (other_db, text, mixed, tmp_path):
        before = path.read_bytes() if path.is_file() else None
        with pytest.raises(InvalidInput, match="not overwritten"):
            write_registrations(path)
        assert before == (path.read_bytes() if path.is_file() else None)
    stale = tmp_path / "stale.db"
    write_registrations(stale)
    _sqlite_with(stale, "DELETE FROM registration WHERE id > 10")
    assert write_registrations(stale) is True
    assert write_registrations(stale) is False
