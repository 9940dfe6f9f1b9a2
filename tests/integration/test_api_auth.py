"""Bearer tokens and scopes on the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.bootstrap import Container, running
from pacer.definitions import FUNCTIONS
from pacer.domain.tokens import Scope
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
