"""Write transactions: on SQLite, one at a time per process, queued in arrival order.

SQLite has one writer. Its lock is taken at ``BEGIN IMMEDIATE`` (``dialects._setup_sqlite``),
and a connection that finds it taken sleeps in SQLite's busy handler and tries again after 1,
2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then every 100 ms, however soon the lock was
released. In ``pacer up`` the API, the worker, the scheduler, the resource sampler and the
embedded pacer's acknowledgements all write to one file, and each write transaction holds the
lock across several trips through the event loop, so under load a writer that missed the lock
could sleep for 100 ms at a time while the lock came and went. Queued on an asyncio lock
instead, a writer of this process starts as soon as the ones before it are done. Other
processes on the same file still meet the busy handler, which is why ``BEGIN IMMEDIATE`` stays.

Measured in ``tests/e2e/test_up_pace.py``'s surge, two runs of each, alternating, timing each
write from asking to holding an open transaction (a temporary hook here, not kept): with the queue p99 83-91 ms and at worst
96-185 ms, without it p99 238-637 ms and at worst 0.94-1.35 s; the mean 21-26 against 23-34
ms. The median rises, from about 4.6 to 14-21 ms, as a fair queue's does: without it a writer
that retries at the right moment overtakes the ones already waiting, which is where the
second-long waits came from. For a scheduler the tail is what counts (a delay that arrives
after its run started is lost), so the queue stays.

Since ``onloop.py`` drives the file from the loop's thread, a write transaction yields to the
loop only while its commit waits for the fsync, but it still does, and ``BEGIN IMMEDIATE``
there retries on a timer, not in arrival order, so the queue stays.

PostgreSQL locks rows, so its writers run side by side: ``writing`` is ``engine.begin()``.

*Rejected:* a shorter busy-handler sleep through ``sqlite3``'s ``busy_timeout`` (it only sets
the total; the sleep steps are compiled into SQLite), and one writer task fed by a queue (every
store call's transaction would have to become a closure run elsewhere).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class WriteGate:
    """The queue of one SQLite database's writers in this process.

    An asyncio lock belongs to one event loop, and a store may serve several loops in turn
    (one per CLI command or test), so there is one lock per running loop. A writer waiting
    longer than ``wait_s`` gives up as a busy SQLite would; ``TimeoutError`` is an
    ``OSError``, so store calls retry it."""

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._holders: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[object]
        ] = weakref.WeakKeyDictionary()

    async def acquire(self) -> None:
        """Wait for this writer's turn (in arrival order); ``release`` ends it."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is not None and self._holders.get(loop) is task:
            # It would wait for itself for ever; SQLite would have refused it after wait_s.
            raise RuntimeError("a write transaction was begun inside another")
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with asyncio.timeout(self._wait_s):
            await lock.acquire()
        if task is not None:
            self._holders[loop] = task

    def release(self) -> None:
        loop = asyncio.get_running_loop()
        self._holders.pop(loop, None)
        self._locks[loop].release()


_GATES: weakref.WeakKeyDictionary[object, WriteGate] = weakref.WeakKeyDictionary()


def queue_writers(engine: AsyncEngine, wait_s: float) -> None:
    """Make ``writing`` queue this engine's write transactions (SQLite engines)."""
    _GATES[engine.sync_engine.pool] = WriteGate(wait_s)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``, after this process's earlier writers on SQLite."""
    gate = _GATES.get(engine.sync_engine.pool)
    if gate is None:
        async with engine.begin() as conn:
            yield conn
        return
    # The turn first, then a connection: a writer waiting for its turn holds none, so a queue
    # of writers cannot empty the pool under the readers (who never wait for the writer),
    # and the turn is taken in arrival order even when some connections take longer to
    # open than others (the pool's overflow). The turn ends at the commit, before the
    # connection goes back to the pool: its reset there is another trip to the database
    # thread, which the next writer need not wait for.
    await gate.acquire()
    turn = True
    try:
        async with engine.connect() as conn:
            try:
                async with conn.begin():
                    yield conn
            finally:
                turn = False
                gate.release()
    finally:
        if turn:
            gate.release()
