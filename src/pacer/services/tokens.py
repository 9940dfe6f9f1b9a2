"""Creating, checking and revoking API tokens."""

from __future__ import annotations

from datetime import timedelta

from pacer.domain.errors import Forbidden, Unauthorized
from pacer.domain.models import new_id
from pacer.domain.tokens import Scope, Token, display_prefix, hash_secret, new_secret
from pacer.ports import Clock, TokenStore

#: ``last_used_at`` is written at most this often per token: a write on every request would
#: serialise reads behind SQLite's single writer for a figure nobody needs to the second.
TOUCH_EVERY = timedelta(minutes=1)


class TokenService:
    def __init__(self, store: TokenStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def create(self, name: str, scope: Scope) -> tuple[Token, str]:
        """A new token and its secret; the secret is not stored and cannot be shown again."""
        secret = new_secret()
        await self._add(name, scope, secret)
        token = await self.store.find_token(hash_secret(secret))
        assert token is not None
        return token, secret

    async def ensure(self, name: str, scope: Scope, secret: str) -> Token:
        """Make ``secret`` a live token (``PACER_ADMIN_TOKEN``); a no-op when it already is."""
        found = await self.store.find_token(hash_secret(secret))
        if found is None:
            await self._add(name, scope, secret)
            found = await self.store.find_token(hash_secret(secret))
            assert found is not None
        return found

    async def _add(self, name: str, scope: Scope, secret: str) -> None:
        token = Token(new_id(), name, scope, display_prefix(secret), self.clock.now())
        await self.store.add_token(token, hash_secret(secret))

    async def identify(self, secret: str | None) -> Token:
        """The live token for ``secret``, or ``Unauthorized``."""
        if not secret:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        token = await self.store.find_token(hash_secret(secret))
        if token is None or token.revoked_at is not None:
            raise Unauthorized("the bearer token is unknown or revoked")
        now = self.clock.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            await self.store.touch_token(token.id, now)
        return token

    @staticmethod
    def require(token: Token, needed: Scope, why: str = "") -> None:
        """``Forbidden`` unless the token's scope includes ``needed``."""
        if not token.scope.allows(needed):
            raise Forbidden(needed.value, token.scope.value, why)

    async def list(self) -> list[Token]:
        return await self.store.list_tokens()

    async def revoke(self, token_id: str) -> Token:
        return await self.store.revoke_token(token_id, self.clock.now())
