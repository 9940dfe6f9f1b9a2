"""The CLI with a user's mistakes: each is an ``error:`` line and exit code 2, never a traceback,
and nothing it prints gives a database password away."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from pacer.cli import main
from pacer.cli.main import app

runner = CliRunner()


def test_up_masks_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pacer up`` names its store without the password in it."""
    started: list[Any] = []
    monkeypatch.setattr(main, "_run", lambda *args, **kwargs: started.append(args))
    result = runner.invoke(
        app, ["up", "--database-url", "postgresql+psycopg://postgres:s3cretpw@127.0.0.1/db"]
    )
    assert (0, 1) == (result.exit_code, len(started)), result.output
    assert "s3cretpw" not in result.output
    assert "postgresql+psycopg://postgres:***@127.0.0.1/db" in result.output
