"""Typed domain errors.

Each maps to exactly one problem+json status in ``pacer.api.errors``; keeping them here (and not
as HTTP exceptions) lets the CLI, the file loader and the API report the same failure the same way.
"""

from __future__ import annotations


class PacerError(Exception):
    """Base of every error Pacer raises on purpose."""


class InvalidInput(PacerError):
    """Input refused before anything was written; ``field`` names the culprit (dotted path)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(PacerError):
    """An id or name that does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class Conflict(PacerError):
    """The request clashes with stored state (duplicate name, run already started, ...)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class StoreUnavailable(PacerError):
    """The store cannot be used at all: a URL that does not parse, a database that cannot be
    reached or opened, or a schema this code does not know. A user's fix, not a bug."""

    def __init__(self, shown_url: str, reason: str) -> None:
        super().__init__(f"store {shown_url}: {reason}")
        self.reason = reason


class Unauthorized(PacerError):
    """No credentials, or credentials that match no live token."""


class Forbidden(PacerError):
    """A valid token whose scope is too small for the request."""

    def __init__(self, needed: str, held: str, why: str = "") -> None:
        reason = f"needs scope {needed!r}; the token has {held!r}"
        super().__init__(f"{reason} ({why})" if why else reason)
        self.needed = needed
        self.held = held


class ActionFailed(PacerError):
    """An action's attempt failed. ``retryable`` decides between a retry and a final failure.

    Actions raise this rather than returning a status so that a bug (any other exception) is
    also caught and, being unexpected, treated as retryable like Celery's ``autoretry_for``.
    """

    def __init__(self, message: str, *, retryable: bool, result: object = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.result = result
