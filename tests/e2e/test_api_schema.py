"""Schemathesis against the live OpenAPI schema of a real ``pacer up``: every operation, with a
valid admin token, on SQLite and on PostgreSQL. No input may produce a 5xx, and every response
must match the schema (status code, content type, body)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from test_demo import _free_port

from support import create_pg_database, drop_pg_databases

TOKEN = "pacer_schemathesis-admin-token"
#: Streams that never end by design; tests/integration/test_api_events.py covers them.
ENDLESS = {"/api/v1/events/stream"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    """One ``pacer up`` per backend for the whole module, and its schema."""
    folder = tmp_path_factory.mktemp("schema")
    databases: list[str] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{folder}/pacer.db"
    else:
        name, url = create_pg_database()
        databases.append(name)
    server, base = _start(folder, url)
    try:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json", wait_for_schema=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_pg_databases(databases)


def _start(folder: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACER_")}
    env |= {
        "PACER_DATABASE_URL": url,
        "PACER_ADMIN_TOKEN": TOKEN,
        "PACER_CONFIG_FILE": str(folder / "absent.toml"),
        "PACER_TARGETS": f'{{"demo": "sqlite:///{folder}/demo.db"}}',
    }
    log = open(folder / "up.log", "wb")  # noqa: SIM115 - lives as long as the process
    command = [sys.executable, "-m", "pacer.cli", "up", "--port", str(port)]
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError((folder / "up.log").read_text())


def _fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int | float):
            case.query["wait"] = 0  # a long poll would only make the fuzzer wait
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

    try:
        call()
    except Unsatisfiable:
        # Negative mode on an operation with nothing to negate (no parameters, no body).
        assert mode is schemathesis.GenerationMode.NEGATIVE


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_every_operation_conforms_and_never_fails(
    live_schema: schemathesis.BaseSchema, mode: schemathesis.GenerationMode
) -> None:
    """Generated requests (valid and invalid) get a documented, schema-valid answer, never a 5xx.

    The operations are looped here rather than with ``@schema.parametrize``: its lazy fixture
    form does not run on pytest 9, and the server must start before the schema can load.
    """
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        if operation.path not in ENDLESS:
            _fuzz(operation, mode)
