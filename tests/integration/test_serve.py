"""``pacer up``'s HTTP API role: a server that ends on its own ends the process, and a port
out of range is refused before anything starts."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from pacer.bootstrap import Container
from pacer.cli import processes
from pacer.cli.main import app


class Boom(Exception):
    """What the fake server fails with."""


async def test_a_failing_server_ends_the_role(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When uvicorn's serve fails, ``_serve`` raises its error at once instead of waiting
    for a stop that never comes (the process ran on half-alive, without its API)."""

    async def fail(self: object, sockets: object = None) -> None:
        raise Boom("cannot bind")

    monkeypatch.setattr(processes._Server, "serve", fail)
    with pytest.raises(Boom):
        await processes._serve(container, asyncio.Event())


async def test_a_server_that_returns_early_ends_the_role(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that returns before the stop is an error too, so the process exits non-zero."""

    async def finish(self: object, sockets: object = None) -> None:
        return None

    monkeypatch.setattr(processes._Server, "serve", finish)
    with pytest.raises(processes.ApiStopped):
        await processes._serve(container, asyncio.Event())


@pytest.mark.parametrize("port", ["0", "99999"])
def test_a_port_out_of_range_is_refused(port: str, sqlite_url: str) -> None:
    """``--port`` outside 1-65535 is an error line and exit code 2 before anything starts."""
    result = CliRunner().invoke(app, ["up", "--port", port, "--database-url", sqlite_url])
    assert 2 == result.exit_code, result.output
    assert result.output.startswith("error: port: Input should be")
