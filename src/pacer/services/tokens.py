"""Creating, checking and revoking API tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from pacer.domain.errors import Forbidden, Unauthorized
from pacer.domain.models import new_id
from pacer.domain.tokens import (
    UNKNOWN_OR_REVOKED,
    Scope,
    Token,
    display_prefix,
    hash_secret,
    new_secret,
)
from pacer.ports import Clock, TokenStore

#: ``last_used_at`` is written at most this often per token: a write on every request would
#: serialise reads behind SQLite's single writer for a figure nobody needs to the second.
TOUCH_EVERY = timedelta(minutes=1)

log = logging.getLogger("pacer")


class TokenService:
    def __init__(self, store: TokenStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def create(
        self, name: str, scope: Scope, expires_in: timedelta | None = None
    ) -> tuple[Token, str]:
        """A new token and its secret; the secret is not stored and cannot be shown again.
        With ``expires_in``, requests carrying it are refused from then on."""
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        secret = new_secret()
        await self._add(name, scope, secret, expires_in)
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

    async def _add(
        self, name: str, scope: Scope, secret: str, expires_in: timedelta | None = None
    ) -> None:
        now = self.clock.now()
        try:
            expires_at = now + expires_in if expires_in is not None else None
        except OverflowError:
            raise ValueError("expires_in is too long") from None
        token = Token(new_id(), name, scope, display_prefix(secret), now, expires_at=expires_at)
        await self.store.add_token(token, hash_secret(secret))

    async def identify(self, secret: str | None) -> Token:
        """The live token for ``secret``, or ``Unauthorized``."""
        if not secret:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        token = await self.store.find_token(hash_secret(secret))
        now = self.clock.now()
        if token is None:
            raise Unauthorized(UNKNOWN_OR_REVOKED)
        if (refusal := token.refusal(now)) is not None:
            raise Unauthorized(refusal)
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

    async def extend(self, token_id: str, expires_in: timedelta) -> bool:
        """Keep a live token usable for ``expires_in`` from now; False once it is revoked."""
        return await self.store.extend_token(token_id, self.clock.now() + expires_in)

    async def hold(self, token_id: str, expires_in: timedelta, stop: asyncio.Event) -> None:
        """Extend a token made with ``expires_in`` every third of that, until ``stop``.

        A process's own token (``pacer up --pace``) lives only while the process does: it is
        revoked on a clean stop, and after a SIGKILL it expires within ``expires_in``.
        *Rejected:* revoking a dead process's leftovers at the next start, which cannot tell a
        dead server's token from a live one's when several servers share one database. A
        failed extension is logged and tried again; the token has two more chances before it
        lapses.
        """
        every = expires_in.total_seconds() / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                if not await self.extend(token_id, expires_in):
                    log.warning("token %s was revoked; not extending it", token_id)
                    return
            except Exception:
                log.exception("could not extend token %s; trying again", token_id)
