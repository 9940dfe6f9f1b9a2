"""The monitor's SQLite file, used from a thread of its own instead of the event loop's.

Every write to the monitor's file commits with ``synchronous=FULL``, so it waits for an fsync,
and a ``sqlite3`` call holds the thread that makes it. Made on the event loop, that stopped
everything else on the loop for the disk's time: in ``pacer up --pace`` the whole server (its
API, its event stream, its worker), since the embedded pacer's monitor shares the server's
loop. With another process writing to the same disk, fsyncs took up to a few hundred
milliseconds and the asyncio debug log showed the follower's and the pacer's steps holding the
loop 0.1-1.1 s each; tasks were answered seconds late and every delay of the pacer arrived
after its run had started (2026-12-02; ``BENCHMARKS.md``).

One thread for a process's monitor stores (the follower's and the pacer's connections), so
each ``sqlite3`` connection is used by one thread at a time and the two never wait for each
other's write lock in SQLite's busy handler (calls queue on the thread in order). A caller cancelled while its call runs waits
for the call to finish before the cancellation goes on: the store may be closed right after,
which must not race a commit.

*Rejected:* ``aiosqlite`` (the same thread per connection, with a trip through the loop per
statement and cursor, where one trip per store call does here); and ``synchronous=NORMAL``,
which skips the fsync but may lose, on a power cut, a batch whose position was already
acknowledged to the server, which then prunes it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent import futures
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class OffLoop:
    """Runs store calls on one thread of their own: ``await io(store.apply, events, position)``."""

    def __init__(self, name: str = "pacer-monitor-store") -> None:
        self._thread = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def __call__(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        running = self._thread.submit(functools.partial(call, *args, **kwargs))
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            futures.wait([running])
            raise

    def close(self) -> None:
        """After the last call: the thread ends once it has run what was submitted."""
        self._thread.shutdown(wait=True)
