"""The monitor's pure stream pieces: the SSE parser, batching, and full-jitter backoff."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from pacer.monitor.backoff import Backoff
from pacer.monitor.batching import batched
from pacer.monitor.sse import Comment, Message, messages


async def _lines(*lines: str, error: Exception | None = None) -> AsyncIterator[str]:
    for line in lines:
        yield line
    if error is not None:
        raise error


async def test_sse_messages_comments_and_a_cut_off_tail() -> None:
    """Complete messages and comments come out; a message without its blank line does not."""
    lines = _lines(
        ": keepalive",
        "",
        "id: 7",
        "event: run",
        "data: {",
        "data:  }",
        "",
        "event: missed",
        'data: {"from": 1}',
    )
    parsed = [item async for item in messages(lines)]
    assert [Comment("keepalive"), Message("run", "{\n }", "7")] == parsed


async def test_batches_are_bounded_and_an_error_follows_the_items_before_it() -> None:
    """Items come in lists of at most ``size``; the source's error is raised after them."""

    async def numbers() -> AsyncIterator[int]:
        for number in range(5):
            yield number
        raise ConnectionResetError("reset")

    received: list[list[int]] = []

    async def consume() -> None:
        async for batch in batched(numbers(), size=2, delay=1.0):
            received.append(batch)

    with pytest.raises(ConnectionResetError):
        await consume()
    assert [0, 1, 2, 3, 4] == [n for batch in received for n in batch]
    assert all(len(batch) <= 2 for batch in received)


def test_backoff_is_full_jitter_under_a_cap_and_resets() -> None:
    """Delays are drawn from [0, min(cap, base * 2**n)]; after reset the ceiling is base again."""
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    ceilings = [min(1.0, 0.1 * 2**n) for n in range(8)]
    delays = [backoff.next_delay() for _ in ceilings]
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.1
