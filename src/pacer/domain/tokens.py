"""API tokens: scopes, and how a secret becomes what the store keeps.

A token is 256 random bits shown once; the store keeps only its SHA-256. A slow password hash
(argon2, bcrypt) protects low-entropy secrets against guessing; a random 256-bit secret cannot
be guessed, so a slow hash would only add latency to every request.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

#: An unknown and a revoked token get the same answer: a leaked, revoked secret reveals nothing.
UNKNOWN_OR_REVOKED = "the bearer token is unknown or revoked"

#: Secrets start with this, so a leaked one is recognisable (secret scanners, logs).
SECRET_PREFIX = "pacer_"


class Scope(enum.StrEnum):
    """Each scope includes the ones before it: ``admin`` may do all that ``write`` may."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    scope: Scope
    #: The first characters of the secret, to tell tokens apart in listings.
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    #: None: until revoked.
    expires_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the token may not be used at ``now``, or None when it may."""
        if self.revoked_at is not None:
            return UNKNOWN_OR_REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return f"the bearer token expired at {self.expires_at.isoformat()}"
        return None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 6]
