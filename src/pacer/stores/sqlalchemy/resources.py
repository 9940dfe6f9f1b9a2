"""``SqlWindowStore``: closed resource windows, one row each, keyed by when they closed.

Several server processes sharing a PostgreSQL store may each close the same window; the first
write wins (``ON CONFLICT DO NOTHING``), so the history has one row per window.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pacer.domain.resources import RESOURCES, ResourceWindow, Stats
from pacer.stores.sqlalchemy.dialects import Dialect, reads
from pacer.stores.sqlalchemy.store import transient
from pacer.stores.sqlalchemy.tables import resource_windows as table
from pacer.stores.sqlalchemy.writes import writing

_STATS = ("average", "min", "max")


def _values(window: ResourceWindow) -> dict[str, Any]:
    values: dict[str, Any] = {
        "end_ms": window.timestamp_ms,
        "start_ms": round(window.start * 1000),
    }
    for resource in RESOURCES:
        stats = window.stats(resource)
        values.update({f"{resource}_{name}": getattr(stats, name) for name in _STATS})
    return values


def _window(row: RowMapping) -> ResourceWindow:
    stats = {r: Stats(*(row[f"{r}_{name}"] for name in _STATS)) for r in RESOURCES}
    return ResourceWindow(start=row["start_ms"] / 1000, end=row["end_ms"] / 1000, **stats)


class SqlWindowStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self.engine, self.dialect = engine, dialect
        self.reads = reads(engine)

    @transient
    async def add_window(self, window: ResourceWindow) -> None:
        stmt = self.dialect.insert(table).values(**_values(window))
        async with writing(self.engine) as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["end_ms"]))

    @transient
    async def latest_window(self) -> ResourceWindow | None:
        query = select(table).order_by(table.c.end_ms.desc()).limit(1)
        async with self.reads.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _window(row) if row else None

    @transient
    async def windows_since(self, since_ms: int, limit: int) -> list[ResourceWindow]:
        query = select(table).where(table.c.end_ms > since_ms).order_by(table.c.end_ms)
        async with self.reads.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).mappings().all()
        return [_window(row) for row in rows]
