"""Scratch databases for the benchmarks: a fresh one per measurement, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get("PACER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(kind: str, workdir: Path, prefix: str = "bench") -> str:
    """A new, empty database's SQLAlchemy URL: a file in ``workdir`` for SQLite, a
    ``pacer_<prefix>_…`` database on the benchmark server for PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
    name = f"pacer_{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database made by ``fresh_database`` (SQLite files go with workdir)."""
    if url.startswith("postgresql"):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
