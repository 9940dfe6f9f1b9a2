"""Pooled connections after the server dropped them: a connection idle for a while is pinged
and replaced before use, so even calls without a retry (log reads, token lookups) go through."""

from __future__ import annotations

import psycopg
import pytest

from pacer.stores.sqlalchemy import SqlStore, dialects
from pacer.stores.sqlalchemy.events import SqlEventLog
from pacer.stores.sqlalchemy.migrate import upgrade
from support import PG_ADMIN_DSN


def _drop_connections(url: str) -> None:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


@pytest.mark.parametrize("idle_ping_s", [0.0, 3600.0])
async def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping_s: float
) -> None:
    """Idle longer than ``IDLE_PING_S`` (0 here): the dead connection is found by the ping and
    the read succeeds. Trusted without a ping (an hour): the same read fails, which is what
    the ping is for (and why store calls under load, which skip it, retry)."""
    monkeypatch.setattr(dialects, "IDLE_PING_S", idle_ping_s)
    upgrade(pg_url)
    store = SqlStore(pg_url)
    log = SqlEventLog(store.engine, store.dialect)
    try:
        assert [] == await log.read(0, 10)  # one pooled connection, now idle
        _drop_connections(pg_url)
        if idle_ping_s == 0.0:
            assert [] == await log.read(0, 10)
        else:
            with pytest.raises(Exception, match=r"terminat|closed|connection"):
                await log.read(0, 10)
    finally:
        await store.close()
