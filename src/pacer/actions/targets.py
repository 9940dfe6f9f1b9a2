"""The databases that ``sql`` jobs query, named in configuration.

Jobs name a target (``warehouse``) rather than carrying a URL, so that credentials live in one
place outside the job definitions, and a job moves between environments unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pacer.domain.errors import InvalidInput

__all__ = ["Targets"]

#: Targets are queried from worker threads with sync drivers; async driver names (as the run
#: store uses) are mapped to their sync twins so one URL can serve both.
_SYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
    "sqlite+aiosqlite": "sqlite",
}


class Targets:
    """Named target databases, each with one lazily created, cached sync engine."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._urls = {name: _sync_url(name, raw) for name, raw in mapping.items()}
        self._engines: dict[str, sqlalchemy.Engine] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.display_url(name)}" for name in self.names())
        return f"Targets({shown})"

    def names(self) -> list[str]:
        return sorted(self._urls)

    def url(self, name: str) -> str:
        """The full URL, password included: for connecting, never for showing."""
        return self._get(name).render_as_string(hide_password=False)

    def display_url(self, name: str) -> str:
        """The URL with its password masked, for logs, errors and the API."""
        return self._get(name).render_as_string(hide_password=True)

    def dialect(self, name: str) -> str:
        """``sqlite`` or ``postgresql``: actions pick their read-only and timeout tools by it."""
        return self._get(name).get_backend_name()

    def engine(self, name: str) -> sqlalchemy.Engine:
        """The target's engine; ``pool_pre_ping`` because targets restart under us."""
        url = self._get(name)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = sqlalchemy.create_engine(
                    url, pool_pre_ping=True, connect_args=_connect_args(url)
                )
                self._engines[name] = engine
        return engine

    def dispose(self) -> None:
        """Close every pooled connection; engines are created again on the next use."""
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.dispose()

    def _get(self, name: str) -> URL:
        try:
            return self._urls[name]
        except KeyError:
            known = ", ".join(self.names()) or "none configured"
            reason = f"unknown target {name!r}; known: {known}"
            raise InvalidInput(field="action.target", reason=reason) from None


def _sync_url(name: str, raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        # The message of ArgumentError repeats the string, which may hold a password.
        raise InvalidInput(f"targets.{name}", "not a database URL") from None
    url = url.set(drivername=_SYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        # The sql action's read-only mode and timeout exist for these two backends only.
        reason = f"{url.get_backend_name()!r} is not supported; use sqlite or postgresql"
        raise InvalidInput(f"targets.{name}", reason)
    return url


def _connect_args(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "postgresql":
        # Fail an attempt on an unreachable host in seconds, not the OS's minutes.
        return {"connect_timeout": 10}
    return {}
