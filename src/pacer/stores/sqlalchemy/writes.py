"""Write transactions: on SQLite, one at a time per process, queued in arrival order, and
committed in groups.

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

Group commit. Each commit waits for its fsync (``synchronous=FULL``: a commit is on disk when
it answers), and the writers queued behind it waited for that fsync too, one after another. On
a disk whose fsync sometimes takes a few hundred milliseconds (another process writing to the
same disk was enough here), writes piled up faster than they were committed: in the pacing
surge the server then ran its runs late, and the pacer's delays all arrived after their runs
had started. So the writers queued while a transaction is open or committing share the next
one: each runs its body in turn in the same transaction, inside a ``SAVEPOINT`` (the first of
a group needs none), and the whole group is committed once, with one fsync, when no writer is
left waiting (or the group is ``GROUP_MAX`` writers or ``GROUP_MAX_S`` old). ``writing``
returns only once the group is committed, so a caller still holds a durable write when its
block ends, and its after-commit signals still come after the commit. A writer whose body
raises is rolled back to its savepoint and leaves the others' work alone; if the group's
commit fails, every writer in it gets ``CommitFailed`` (an ``OSError``: store calls retry it).
Measured side by side with one commit per writer (``make bench-group-commit``, BENCHMARKS.md,
2026-12-02): at 200 writes/s on a quiet disk p99 16-19 against 59-120 ms; beside another
process fsyncing 500 MB files on the same disk, 65-158 against 42-54 writes/s.

PostgreSQL locks rows, so its writers run side by side: ``writing`` is ``engine.begin()``,
and PostgreSQL has group commit of its own (``commit_delay``).

*Rejected:* a shorter busy-handler sleep through ``sqlite3``'s ``busy_timeout`` (it only sets
the total; the sleep steps are compiled into SQLite); one writer task fed by a queue (every
store call's transaction would have to become a closure run elsewhere); and
``synchronous=NORMAL`` in WAL mode, which makes commits skip the fsync, but a commit answered
before a power loss may then be gone after it, and a run or delay the API confirmed must not
be.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

#: A group is committed once it holds this many writers, even with more waiting, so the first
#: of a long stream of writers is not kept waiting for all the others.
GROUP_MAX = 100
#: ... or once it has been open this long (seconds).
GROUP_MAX_S = 0.02


class CommitFailed(OSError):
    """The group's transaction was not committed: this writer's work is not stored. Its cause
    is the commit's error, or the error of another writer of the group that left the
    transaction unusable."""


@dataclass(eq=False)
class _Group:
    """One open write transaction, shared by the writers who take their turns in it."""

    conn: AsyncConnection
    transaction: AsyncTransaction
    committed: asyncio.Future[None]
    opened_at: float
    members: int = 0

    def fail(self, cause: BaseException) -> None:
        if not self.committed.done():
            error = CommitFailed(f"the write transaction was not committed: {cause!r}")
            error.__cause__ = cause
            self.committed.set_exception(error)


@dataclass(eq=False)
class _Writers:
    """One event loop's writers of one SQLite database: whose turn it is (in arrival order),
    and the group transaction open for them."""

    loop: asyncio.AbstractEventLoop
    held: bool = False
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    holder: asyncio.Task[object] | None = None
    group: _Group | None = None
    commits: set[asyncio.Task[None]] = field(default_factory=set)
    #: Groups committed, and writers they held (for tests and diagnostics).
    groups_committed: int = 0
    writes_committed: int = 0

    async def take_turn(self) -> None:
        if not self.held and not self.waiters:
            self.held = True
            return
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.end_turn()  # given the turn just as it gave up: pass it on
            raise

    def end_turn(self, commit: bool = False) -> None:
        """The turn goes to the next writer waiting, who joins the open group; with nobody
        waiting (or ``commit``), the group is committed first, the turn held meanwhile."""
        self.holder = None
        if self.group is not None and (commit or not any(not w.done() for w in self.waiters)):
            group, self.group = self.group, None
            task = self.loop.create_task(self._commit(group))
            self.commits.add(task)
            task.add_done_callback(self.commits.discard)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.held = False

    async def open(self, engine: AsyncEngine) -> _Group:
        conn = await engine.connect()
        try:
            transaction = await conn.begin()
        except BaseException:
            await conn.close()
            raise
        committed = self.loop.create_future()
        # Read here, so a group whose writers were all cancelled logs no "never retrieved".
        committed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.group = _Group(conn, transaction, committed, self.loop.time())
        return self.group

    async def undo(self, group: _Group, savepoint: AsyncTransaction | None) -> None:
        """A writer's body failed: back to its savepoint, or, for the first writer of the group
        or when that fails too, the whole transaction (which fails the writers before it)."""
        if savepoint is not None:
            try:
                await savepoint.rollback()
                return
            except Exception as exc:
                group.fail(exc)
        self.group = None
        with contextlib.suppress(Exception):
            await group.transaction.rollback()
        with contextlib.suppress(Exception):
            await group.conn.close()

    async def _commit(self, group: _Group) -> None:
        try:
            await group.transaction.commit()
        except BaseException as exc:
            group.fail(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self.groups_committed += 1
            self.writes_committed += group.members
        finally:
            with contextlib.suppress(Exception):
                await group.conn.close()
            if not group.committed.done():
                group.committed.set_result(None)
            self.end_turn()


class WriteGate:
    """The queue of one SQLite database's writers in this process.

    An asyncio future belongs to one event loop, and a store may serve several loops in turn
    (one per CLI command or test), so the turns are kept per running loop. A writer waiting
    longer than ``wait_s`` gives up as a busy SQLite would; ``TimeoutError`` is an
    ``OSError``, so store calls retry it."""

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writers] = (
            weakref.WeakKeyDictionary()
        )

    def writers(self) -> _Writers:
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        if found is None:
            found = self._loops[loop] = _Writers(loop)
        return found

    @asynccontextmanager
    async def writing(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        writers = self.writers()
        task = asyncio.current_task()
        if task is not None and writers.holder is task:
            # It would wait for itself for ever; SQLite would have refused it after wait_s.
            raise RuntimeError("a write transaction was begun inside another")
        async with asyncio.timeout(self._wait_s):
            await writers.take_turn()
        writers.holder = task
        try:
            group = writers.group or await writers.open(engine)
        except BaseException:
            writers.end_turn()
            raise
        savepoint = None
        try:
            if group.members:
                savepoint = await group.conn.begin_nested()
            yield group.conn
            if savepoint is not None:
                await savepoint.commit()
        except BaseException:
            await writers.undo(group, savepoint)
            writers.end_turn()
            raise
        group.members += 1
        full = group.members >= GROUP_MAX or writers.loop.time() - group.opened_at >= GROUP_MAX_S
        writers.end_turn(commit=full)
        # Shielded: a writer cancelled now is still committed with its group (as a commit
        # already waiting for its fsync would be), it just is not told.
        await asyncio.shield(group.committed)


_GATES: weakref.WeakKeyDictionary[object, WriteGate] = weakref.WeakKeyDictionary()


def queue_writers(engine: AsyncEngine, wait_s: float) -> None:
    """Make ``writing`` queue and group this engine's write transactions (SQLite engines)."""
    _GATES[engine.sync_engine.pool] = WriteGate(wait_s)


def gate_of(engine: AsyncEngine) -> WriteGate | None:
    return _GATES.get(engine.sync_engine.pool)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``, after this process's earlier writers on SQLite, and committed with
    those queued beside it (see the module's docstring): its changes are durable once the
    block has ended without an error."""
    gate = gate_of(engine)
    if gate is None:
        async with engine.begin() as conn:
            yield conn
        return
    async with gate.writing(engine) as conn:
        yield conn
