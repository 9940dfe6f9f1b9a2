"""Bearer tokens and scopes on the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.bootstrap import Container, running
from pacer.definitions import FUNCTIONS
from pacer.domain.models import new_id
from pacer.domain.tokens import Scope, Token, display_prefix, hash_secret, new_secret
from pacer.stores.sqlalchemy.tables import tokens
from support import fast_settings

SQL = {"kind": "sql", "target": "demo", "statement": "SELECT 1 AS one"}


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    """A container with a ``demo`` SQL target, for the raw SQL cases."""
    settings = fast_settings(database_url, targets={"demo": f"sqlite:///{tmp_path}/demo.db"})
    async with running(settings) as built:
        yield built


def _problem(answer: httpx.Response, status: int) -> dict[str, object]:
    assert status == answer.status_code, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = answer.json()
    return body


async def test_no_token_is_401_with_challenge(container: Container) -> None:
    """A request without a token is a 401 problem naming Authorization, with a Bearer challenge."""
    async with api_client(container, scope=None) as client:
        answer = await client.get("/api/v1/jobs")
    body = _problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization" == body["errors"][0]["field"]  # type: ignore[index]


async def test_unknown_and_revoked_tokens_are_401(container: Container) -> None:
    """A made-up token and a revoked one are both refused."""
    token, secret = await container.tokens.create("soon revoked", Scope.READ)
    async with api_client(container, scope=None) as client:
        made_up = await client.get("/api/v1/runs", headers={"Authorization": "Bearer pacer_nope"})
        before = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {secret}"})
        await container.tokens.revoke(token.id)
        after = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {secret}"})
    _problem(made_up, 401)
    assert 200 == before.status_code
    _problem(after, 401)


async def test_read_scope_may_look_but_not_change(container: Container) -> None:
    """A read token lists jobs (200) and is refused creating one (403 naming the scope)."""
    async with api_client(container, scope=Scope.READ) as client:
        listed = await client.get("/api/v1/jobs")
        created = await client.post("/api/v1/jobs", json=job_body())
        cancelled = await client.post("/api/v1/runs/some-id/cancel")
    assert 200 == listed.status_code
    assert "'write'" in str(_problem(created, 403)["detail"])
    _problem(cancelled, 403)
    assert [] == await container.store.list_jobs()


async def test_raw_sql_and_unregistered_code_need_admin(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write token creates http jobs and jobs of registered python functions, but not raw SQL
    jobs or tasks, nor jobs calling any importable function (``os:system`` would be code
    execution); an admin token may."""
    monkeypatch.setitem(FUNCTIONS, "reports:daily", lambda: None)
    http = {"kind": "http", "url": "https://example.com/hook"}
    registered = {"kind": "python", "function": "reports:daily"}
    async with api_client(container, scope=Scope.WRITE) as client:
        http_job = await client.post("/api/v1/jobs", json=job_body("h", action=http))
        registered_job = await client.post("/api/v1/jobs", json=job_body("r", action=registered))
        sql_job = await client.post("/api/v1/jobs", json=job_body("raw", action=SQL))
        sql_task = await client.post("/api/v1/tasks", json={"action": SQL})
        imported = await client.post("/api/v1/jobs", json=job_body("imp", action=NOOP))
    assert (201, 201) == (http_job.status_code, registered_job.status_code)
    assert "raw SQL" in str(_problem(sql_job, 403)["detail"])
    _problem(sql_task, 403)
    assert "not registered" in str(_problem(imported, 403)["detail"])
    async with api_client(container, scope=Scope.ADMIN) as client:
        admin_sql = await client.post("/api/v1/jobs", json=job_body("raw", action=SQL))
        admin_imported = await client.post("/api/v1/jobs", json=job_body("imp", action=NOOP))
    assert (201, 201) == (admin_sql.status_code, admin_imported.status_code), admin_sql.text


async def test_health_and_result_receiver_stay_open(container: Container) -> None:
    """/healthz and POST/GET /result need no token."""
    async with api_client(container, scope=None) as client:
        health = await client.get("/healthz")
        posted = await client.post("/result", json={"ok": True})
        listed = await client.get("/result")
    assert (200, 201, 200) == (health.status_code, posted.status_code, listed.status_code)


async def test_tokens_are_stored_hashed(container: Container) -> None:
    """The secret itself is nowhere in the tokens table."""
    _, secret = await container.tokens.create("ci", Scope.WRITE)
    async with container.store.engine.connect() as conn:
        rows = (await conn.execute(select(tokens))).all()
    assert secret not in repr(rows)
    assert all(len(row.token_hash) == 64 for row in rows)


async def test_admin_token_from_settings_works_and_is_created_once(database_url: str) -> None:
    """PACER_ADMIN_TOKEN becomes one admin token, however often the server starts."""
    settings = fast_settings(database_url, admin_token="pacer_first-admin-secret")
    for _ in range(2):
        async with running(settings) as container:
            async with api_client(container, scope=None) as client:
                answer = await client.post(
                    "/api/v1/jobs",
                    json=job_body(f"j{len(await container.store.list_jobs())}", action=NOOP),
                    headers={"Authorization": "Bearer pacer_first-admin-secret"},
                )
            assert 201 == answer.status_code
            assert [Scope.ADMIN] == [t.scope for t in await container.tokens.list()]


async def test_expired_tokens_are_401_until_extended(container: Container) -> None:
    """A token past its expiry is refused, naming when it expired; extending it (as a server
    holding its own token does) makes it usable again, and a revoked one cannot be extended."""
    tokens_service = container.tokens
    now = tokens_service.clock.now()
    secret = new_secret()
    expired = Token(new_id(), "lapsed", Scope.READ, display_prefix(secret), now, expires_at=now)
    await tokens_service.store.add_token(expired, hash_secret(secret))
    headers = {"Authorization": f"Bearer {secret}"}
    async with api_client(container, scope=None) as client:
        refused = await client.get("/api/v1/runs", headers=headers)
        assert await tokens_service.extend(expired.id, timedelta(minutes=5))
        allowed = await client.get("/api/v1/runs", headers=headers)
    assert "expired" in str(_problem(refused, 401)["detail"])
    assert 200 == allowed.status_code
    await tokens_service.revoke(expired.id)
    assert not await tokens_service.extend(expired.id, timedelta(minutes=5))


async def test_a_held_token_is_extended_until_stopped(container: Container) -> None:
    """``TokenService.hold`` keeps moving the expiry forward while its holder runs, returns
    when told to stop, and stops by itself once the token is revoked."""
    tokens_service = container.tokens
    lifetime = timedelta(seconds=0.3)  # extended every 0.1 s
    token, _ = await tokens_service.create("held", Scope.WRITE, lifetime)
    assert token.expires_at is not None
    stop = asyncio.Event()
    holding = asyncio.create_task(tokens_service.hold(token.id, lifetime, stop))
    first = token.expires_at

    async def extended() -> bool:  # a third of the lifetime on
        return await _expiry(container, token.id) > first

    await _eventually(extended)
    stop.set()
    await asyncio.wait_for(holding, 5)
    await tokens_service.revoke(token.id)
    on_its_own = asyncio.create_task(tokens_service.hold(token.id, lifetime, asyncio.Event()))
    await asyncio.wait_for(on_its_own, 5)  # revoked: nothing left to hold


async def test_a_failed_extension_is_tried_again(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store error while extending is logged and the next turn tries again, so one bad
    moment of the database does not let a running server's token lapse."""
    tokens_service = container.tokens
    lifetime = timedelta(seconds=0.3)
    token, _ = await tokens_service.create("held", Scope.WRITE, lifetime)
    real, calls = tokens_service.store.extend_token, []

    async def flaky(token_id: str, expires_at: datetime) -> bool:
        calls.append(expires_at)
        if len(calls) == 1:
            raise ConnectionError("database away")
        return await real(token_id, expires_at)

    monkeypatch.setattr(tokens_service.store, "extend_token", flaky)
    stop = asyncio.Event()
    holding = asyncio.create_task(tokens_service.hold(token.id, lifetime, stop))

    async def tried_again() -> bool:
        return len(calls) >= 2 or holding.done()

    await _eventually(tried_again)
    assert not holding.done(), "the error ended the holder"
    stop.set()
    await asyncio.wait_for(holding, 5)
    assert calls[1] == await _expiry(container, token.id)


async def _expiry(container: Container, token_id: str) -> datetime:
    found = [t for t in await container.tokens.list() if t.id == token_id]
    assert found[0].expires_at is not None
    return found[0].expires_at


async def _eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10) -> None:
    """Wait for ``check`` (a bound, not a speed claim: a broken holder fails, not hangs)."""
    async with asyncio.timeout(within_s):
        while not await check():
            await asyncio.sleep(0.05)
