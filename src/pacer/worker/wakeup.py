"""How a sleeping worker learns that a run became due earlier than it planned.

In-process, the store calls ``Wakeup.notify`` after a commit. Across processes on PostgreSQL a
``LISTEN`` connection does the same; the worker still polls slowly as a fallback, because a
notification is lost if the listener was reconnecting at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


class Wakeup:
    """An asyncio event that any number of sources may set; the worker clears it before claiming."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()

    def notify(self, _at: datetime | None = None) -> None:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._event.set)
        else:
            self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def event(self) -> asyncio.Event:
        return self._event


async def listen_postgresql(url: str, channel: str, wakeup: Wakeup, stop: asyncio.Event) -> None:
    """Relay ``NOTIFY channel`` to ``wakeup`` until ``stop``; reconnects with backoff."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.1
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute(f'LISTEN "{channel}"')
                delay = 0.1
                wakeup.notify()  # anything inserted while we were not listening
                async for _ in conn.notifies():
                    wakeup.notify()
                    if stop.is_set():
                        return
        except (psycopg.Error, OSError) as exc:
            log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)
