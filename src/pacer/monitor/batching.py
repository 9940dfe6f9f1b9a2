"""Grouping a stream's items into batches: up to ``size`` items or ``delay`` seconds.

One transaction per batch keeps the local store's fsyncs bounded when the server streams fast,
while a lone event still lands within a few milliseconds. A reader task fills a bounded queue so
the network keeps being read while a batch commits; if the stream fails, what arrived before
the failure is handed out first and the error is raised after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _End:
    error: BaseException | None


@dataclass
class _Reader(Generic[T]):
    source: AsyncIterator[T]
    queue: asyncio.Queue[T | _End]

    async def pump(self) -> None:
        try:
            async for item in self.source:
                await self.queue.put(item)
        except Exception as exc:  # handed to the consumer, which raises it after the batch
            await self.queue.put(_End(exc))
        else:
            await self.queue.put(_End(None))


async def batched(
    source: AsyncIterator[T], size: int, delay: float
) -> AsyncGenerator[list[T], None]:
    """Yield lists of items from ``source``; raise its error once the items before it are out."""
    reader = _Reader(source, asyncio.Queue(maxsize=size * 2))
    task = asyncio.create_task(reader.pump())
    try:
        end: _End | None = None
        while end is None:
            batch, end = await _collect(reader.queue, size, delay)
            if batch:
                yield batch
        if end.error is not None:
            raise end.error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _collect(
    queue: asyncio.Queue[T | _End], size: int, delay: float
) -> tuple[list[T], _End | None]:
    first = await queue.get()
    if isinstance(first, _End):
        return [], first
    batch = [first]
    deadline = asyncio.get_running_loop().time() + delay
    while len(batch) < size:
        try:
            async with asyncio.timeout_at(deadline):
                item = await queue.get()
        except TimeoutError:
            break
        if isinstance(item, _End):
            return batch, item
        batch.append(item)
    return batch, None
