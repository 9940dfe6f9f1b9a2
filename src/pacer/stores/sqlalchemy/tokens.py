"""``SqlTokenStore``: API tokens (hashes only) beside the runs, on the same engine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from pacer.domain.errors import NotFound
from pacer.domain.tokens import Scope, Token
from pacer.stores.sqlalchemy.dialects import reads
from pacer.stores.sqlalchemy.rows import aware, utc
from pacer.stores.sqlalchemy.store import transient
from pacer.stores.sqlalchemy.tables import tokens
from pacer.stores.sqlalchemy.writes import writing

_PUBLIC = [c for c in tokens.c if c.name != "token_hash"]


def _token(row: RowMapping) -> Token:
    created = aware(row["created_at"])
    assert created is not None
    return Token(
        id=row["id"],
        name=row["name"],
        scope=Scope(row["scope"]),
        prefix=row["prefix"],
        created_at=created,
        last_used_at=aware(row["last_used_at"]),
        revoked_at=aware(row["revoked_at"]),
        expires_at=aware(row["expires_at"]),
    )


class SqlTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.reads = reads(engine)

    @transient
    async def add_token(self, token: Token, token_hash: str) -> None:
        async with writing(self.engine) as conn:
            await conn.execute(
                tokens.insert().values(
                    id=token.id,
                    name=token.name,
                    scope=token.scope.value,
                    token_hash=token_hash,
                    prefix=token.prefix,
                    created_at=utc(token.created_at),
                    expires_at=utc(token.expires_at) if token.expires_at else None,
                )
            )

    @transient
    async def find_token(self, token_hash: str) -> Token | None:
        async with self.reads.connect() as conn:
            query = select(*_PUBLIC).where(tokens.c.token_hash == token_hash)
            row = (await conn.execute(query)).mappings().first()
            return _token(row) if row else None

    @transient
    async def list_tokens(self) -> list[Token]:
        async with self.reads.connect() as conn:
            query = select(*_PUBLIC).order_by(tokens.c.created_at, tokens.c.id)
            return [_token(row) for row in (await conn.execute(query)).mappings()]

    @transient
    async def revoke_token(self, token_id: str, now: datetime) -> Token:
        async with writing(self.engine) as conn:
            await conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=utc(now))
            )
            query = select(*_PUBLIC).where(tokens.c.id == token_id)
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                raise NotFound("token", token_id)
            return _token(row)

    @transient
    async def extend_token(self, token_id: str, expires_at: datetime) -> bool:
        """Move a live token's expiry to ``expires_at``; False when it is revoked or gone."""
        async with writing(self.engine) as conn:
            stmt = (
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(expires_at=utc(expires_at))
            )
            return (await conn.execute(stmt)).rowcount == 1

    @transient
    async def touch_token(self, token_id: str, now: datetime) -> None:
        async with writing(self.engine) as conn:
            stmt = update(tokens).where(tokens.c.id == token_id).values(last_used_at=utc(now))
            await conn.execute(stmt)
