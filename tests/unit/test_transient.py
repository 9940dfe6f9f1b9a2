"""``transient``: a store call is tried once outside tenacity and retried only on a transient
failure (a dropped connection), never on a constraint or a bug."""

from __future__ import annotations

import pytest

from pacer.stores.sqlalchemy.store import transient


async def test_a_transient_failure_is_retried_until_the_call_succeeds() -> None:
    calls: list[int] = []

    @transient
    async def flaky(value: int) -> int:
        calls.append(value)
        if len(calls) < 3:
            raise ConnectionResetError("server closed the connection")
        return value * 2

    assert 42 == await flaky(21)
    assert [21, 21, 21] == calls


async def test_any_other_failure_surfaces_at_once() -> None:
    calls: list[int] = []

    @transient
    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await broken()
    assert [1] == calls
