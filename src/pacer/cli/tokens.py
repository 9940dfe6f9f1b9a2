"""``pacer tokens create|list|revoke``: API tokens, written straight to the store."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from pacer.cli.commands import Config, DatabaseUrl, Json, _with
from pacer.cli.output import emit, emit_one
from pacer.domain.tokens import Scope, Token

tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


def token_record(token: Token) -> dict[str, Any]:
    return {**asdict(token), "scope": token.scope.value}


@tokens_app.command("create")
def tokens_create(
    scope: Scope = typer.Option(..., help="read: look; write: change; admin: also raw SQL."),
    name: str = typer.Option("cli", help="What the token is for (shown in listings)."),
    database_url: str | None = DatabaseUrl,
    config: Path = Config,
    as_json: bool = Json,
) -> None:
    """Create a token and print its secret: it is stored hashed and cannot be shown again."""
    token, secret = _with(database_url, config, lambda c: c.tokens.create(name, scope))
    if as_json:
        emit_one({**token_record(token), "secret": secret}, as_json=True)
        return
    typer.echo(secret)
    typer.echo(
        f"{token.scope.value} token {token.name!r} ({token.id}); use it as "
        "'Authorization: Bearer <secret>'. It is not shown again.",
        err=True,
    )


@tokens_app.command("list")
def tokens_list(
    database_url: str | None = DatabaseUrl, config: Path = Config, as_json: bool = Json
) -> None:
    """Every token (never the secrets), oldest first."""
    tokens = _with(database_url, config, lambda c: c.tokens.list())
    columns = ["id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]
    emit([token_record(t) for t in tokens], columns, as_json, "tokens")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str,
    database_url: str | None = DatabaseUrl,
    config: Path = Config,
    as_json: bool = Json,
) -> None:
    """Revoke a token at once; requests carrying it get 401 from then on."""
    emit_one(
        token_record(_with(database_url, config, lambda c: c.tokens.revoke(token_id))), as_json
    )
