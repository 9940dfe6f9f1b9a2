"""``pacer tokens create|list|revoke``: API tokens, written straight to the store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from pacer.cli.commands import Config, DatabaseUrl, Json, _with
from pacer.cli.output import emit, emit_one
from pacer.domain.schedules import parse_duration
from pacer.domain.tokens import Scope, Token

#: Beyond this ``--expires-in`` is surely a typo (and far enough makes a date past year 9999).
LONGEST_LIFETIME = timedelta(days=36525)

tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


def token_record(token: Token) -> dict[str, Any]:
    return {**asdict(token), "scope": token.scope.value}


@tokens_app.command("create")
def tokens_create(
    scope: Scope = typer.Option(..., help="read: look; write: change; admin: also raw SQL."),
    name: str = typer.Option("cli", help="What the token is for (shown in listings)."),
    expires_in: str | None = typer.Option(
        None, help="Refuse it after this long, like 90d or 12h (units d, h, m, s); default never."
    ),
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Create a token and print its secret: it is stored hashed and cannot be shown again."""
    try:
        lifetime = parse_duration(expires_in) if expires_in else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires-in") from None
    if lifetime is not None and lifetime > LONGEST_LIFETIME:
        raise typer.BadParameter(
            "longer than 100 years; leave it out for a token that never expires",
            param_hint="--expires-in",
        )
    token, secret = _with(database_url, config, lambda c: c.tokens.create(name, scope, lifetime))
    if as_json:
        emit_one({**token_record(token), "secret": secret}, as_json=True)
        return
    typer.echo(secret)
    expiry = f" It expires at {token.expires_at.isoformat()}." if token.expires_at else ""
    typer.echo(
        f"{token.scope.value} token {token.name!r} ({token.id}); use it as "
        f"'Authorization: Bearer <secret>'. It is not shown again.{expiry}",
        err=True,
    )


@tokens_app.command("list")
def tokens_list(
    database_url: str | None = DatabaseUrl, config: Path | None = Config, as_json: bool = Json
) -> None:
    """Every token (never the secrets), oldest first."""
    tokens = _with(database_url, config, lambda c: c.tokens.list())
    columns = [
        "id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at", "expires_at"
    ]  # fmt: skip
    emit([token_record(t) for t in tokens], columns, as_json, "tokens")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Revoke a token at once; requests carrying it get 401 from then on."""
    emit_one(
        token_record(_with(database_url, config, lambda c: c.tokens.revoke(token_id))), as_json
    )
