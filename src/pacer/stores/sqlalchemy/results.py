"""``SqlResultStore``: bodies received by ``POST /result``, in arrival order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pacer.ports import ReceivedResult
from pacer.stores.sqlalchemy.dialects import Dialect, reads
from pacer.stores.sqlalchemy.rows import aware, utc
from pacer.stores.sqlalchemy.store import transient
from pacer.stores.sqlalchemy.tables import results
from pacer.stores.sqlalchemy.writes import writing


def _result(row: RowMapping) -> ReceivedResult:
    received = aware(row["received_at"])
    assert received is not None
    return ReceivedResult(row["id"], row["body"], received, row["idempotency_key"])


class SqlResultStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self.engine, self.dialect = engine, dialect
        self.reads = reads(engine)

    @transient
    async def add_result(
        self, body: Any, received_at: datetime, idempotency_key: str | None
    ) -> tuple[ReceivedResult, bool]:
        """One transaction: insert unless the key was seen, then read back the stored row."""
        values = {"body": body, "received_at": utc(received_at), "idempotency_key": idempotency_key}
        insert = self.dialect.insert(results).values(**values)
        if idempotency_key is not None:
            insert = insert.on_conflict_do_nothing(index_elements=["idempotency_key"])
        async with writing(self.engine) as conn:
            inserted = (await conn.execute(insert.returning(results.c.id))).first()
            if inserted is not None:
                query = select(results).where(results.c.id == inserted[0])
            else:
                query = select(results).where(results.c.idempotency_key == idempotency_key)
            row = (await conn.execute(query)).mappings().one()
            return _result(row), inserted is not None

    @transient
    async def list_results(self, limit: int | None, after_id: int | None) -> list[ReceivedResult]:
        query = select(results).order_by(results.c.id)
        if after_id is not None:
            query = query.where(results.c.id > after_id)
        if limit is not None:
            query = query.limit(limit)
        async with self.reads.connect() as conn:
            return [_result(row) for row in (await conn.execute(query)).mappings()]
