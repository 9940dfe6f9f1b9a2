"""The results receiver: what metric jobs post to ``POST /result``, kept in the store."""

from __future__ import annotations

from typing import Any

from pacer.ports import Clock, ReceivedResult, ResultStore


class ResultService:
    def __init__(self, store: ResultStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def receive(self, body: Any, idempotency_key: str | None) -> tuple[ReceivedResult, bool]:
        """Store ``body``; a repeated ``Idempotency-Key`` (a retried delivery) stores nothing
        and returns the first copy."""
        return await self.store.add_result(body, self.clock.now(), idempotency_key)

    async def all(self) -> list[ReceivedResult]:
        return await self.store.list_results(None, None)

    async def page(self, limit: int, after_id: int | None) -> list[ReceivedResult]:
        return await self.store.list_results(limit, after_id)
