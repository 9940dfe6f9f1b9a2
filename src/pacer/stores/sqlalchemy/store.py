"""``SqlStore``: jobs and runs in SQLite or PostgreSQL through SQLAlchemy Core (async).

Every public method is one transaction. Writes that workers race on are guarded in the database
itself: claims lock rows (``FOR UPDATE SKIP LOCKED``) or rely on SQLite's single writer;
completions are fenced by ``(id, attempt, status='running')``; scheduled fires are unique per
``(job_id, fire_time)``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential_jitter

from pacer.domain.errors import Conflict, InvalidInput, NotFound
from pacer.domain.events import KIND_OF_STATUS, MAX_EVENT_ERROR, EventKind, RunEvent, event_of
from pacer.domain.models import CLAIMABLE, FINAL, Job, JobSpec, Run, RunStatus, new_id
from pacer.domain.moments import later
from pacer.ports import Completion, JobWrites, RunFilter
from pacer.stores.sqlalchemy import onetrip
from pacer.stores.sqlalchemy.dialects import NOTIFY_CHANNEL, create_engine, reads
from pacer.stores.sqlalchemy.events import append_events, append_from_runs
from pacer.stores.sqlalchemy.held import HeldConnection
from pacer.stores.sqlalchemy.rows import aware, run_values, to_job, to_run, utc
from pacer.stores.sqlalchemy.tables import (
    Timestamp,
    consumers,
    event_prunes,
    events,
    jobs,
    runs,
)
from pacer.stores.sqlalchemy.writes import writing

CLAIMABLE_VALUES = [s.value for s in CLAIMABLE]
_NO_BITMAP_SCAN = text("SET LOCAL enable_bitmapscan = off")


def _is_transient(exc: BaseException) -> bool:
    """A dropped connection or a restarting server is worth a retry; a constraint is not."""
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or type(exc.orig).__name__ in (
            "OperationalError",
            "InterfaceError",
            "AdminShutdown",
        )
    return isinstance(exc, ConnectionError | OSError)


#: Retries a store call through a short outage; a longer one surfaces to the caller's loop.
_retrying = retry(
    retry=retry_if_exception(_is_transient),
    wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
    stop=stop_after_delay(10),
    reraise=True,
)

_Call = TypeVar("_Call", bound=Callable[..., Awaitable[Any]])


def transient(call: _Call) -> _Call:
    """Retry ``call`` through a short outage (``_retrying``), entering tenacity only once a
    first attempt failed: its bookkeeping on every call (a retry state, the coroutine checks)
    was a tenth of an idle worker's claim. A transient failure is retried at once, then with
    backoff for up to 10 s."""
    with_retries = _retrying(call)

    @functools.wraps(call)
    async def first_then_retries(*args: Any, **kwargs: Any) -> Any:
        try:
            return await call(*args, **kwargs)
        except Exception as exc:
            if not _is_transient(exc):
                raise
        return await with_retries(*args, **kwargs)

    return cast(_Call, first_then_retries)


class SqlStore:
    """The one ``RunStore`` implementation, for both dialects."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine
        self.engine, self.dialect = create_engine(url)
        self.reads = reads(self.engine)
        self.url = url
        #: Whether the last claim came back full: runs are piling up (see ``claim``).
        self._backlog = False
        postgresql = self.dialect.name == "postgresql"
        self._claim = onetrip.claim_statement() if postgresql else _claim_statement()
        #: An autocommit connection kept between PostgreSQL's one-statement calls (``onetrip``).
        self._held = HeldConnection(self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._enqueue = {c: onetrip.enqueue_statement(c) for c in ("id", "idempotency_key")}
        #: Called after a commit that made runs claimable: wakes in-process workers at once.
        self.on_enqueued: list[Callable[[datetime], None]] = []
        #: Called after a commit that appended to the execution log: wakes in-process readers.
        self.on_events: list[Callable[[], None]] = []

    async def close(self) -> None:
        await self._held.close()
        await self.engine.dispose()

    # -- jobs ---------------------------------------------------------------------------------

    @transient
    async def sync_jobs(
        self,
        names: Sequence[str],
        source: str,
        plan: Callable[[Sequence[Job]], JobWrites],
        now: datetime,
    ) -> list[Job]:
        """Write a sync of the jobs folder in one transaction, as ``plan`` decides from the jobs
        read in it: those named ``names`` and every job of ``source``.

        The rows read are held until the commit (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE``
        on PostgreSQL), so a DELETE, PUT or pause of one of them lands wholly before the read
        or after the commit. Updates are by id. An insert does nothing if the name was taken
        since the read (a scheduler starting at the same moment wrote the same definition);
        taken by a job of another source, it is a ``Conflict``. Returns the jobs named
        ``names`` and the stopped ones, by name.
        """
        held = (
            select(jobs)
            .where(or_(jobs.c.name.in_(names), jobs.c.source == source))
            .order_by(jobs.c.id)  # one locking order for every sync: no deadlock between them
            .with_for_update()
        )
        async with writing(self.engine) as conn:
            writes = plan([to_job(r) for r in (await conn.execute(held)).mappings().all()])
            await self._write_sync(conn, writes, source, now)
            query = select(jobs).where(or_(jobs.c.name.in_(names), jobs.c.id.in_(writes.stop)))
            rows = (await conn.execute(query.order_by(jobs.c.name))).mappings()
            written = [to_job(row) for row in rows]
            created = {spec.name for spec, _ in writes.create}
            for job in written:
                if job.name in created and job.source != source:  # rolls the sync back
                    raise Conflict(
                        "name", f"a job named {job.name!r} was created meanwhile ({job.source})"
                    )
        return written

    async def _write_sync(
        self, conn: AsyncConnection, writes: JobWrites, source: str, now: datetime
    ) -> None:
        for spec, next_fire_at in writes.create:
            values = _job_values(spec, source, next_fire_at, now)
            insert = self.dialect.insert(jobs).values(id=new_id(), created_at=utc(now), **values)
            await conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
        for job_id, spec, next_fire_at in writes.update:
            values = _job_values(spec, source, next_fire_at, now)
            del values["source"]  # a sync only updates jobs of its own source
            await conn.execute(
                update(jobs).where(jobs.c.id == job_id).values(removed_at=None, **values)
            )
        if writes.stop:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(writes.stop))
                .values(enabled=False, removed_at=utc(now), updated_at=utc(now))
            )

    @transient
    async def update_job(
        self, job_id: str, spec: JobSpec, next_fire_at: datetime | None, now: datetime
    ) -> Job:
        """Replace the spec (and name) of the job with this id; ``NotFound`` if there is none.

        An ``UPDATE`` by id, never an upsert: a job deleted since the caller read it must stay
        deleted (an upsert by name brought it back under a new id). A name another job holds
        is a ``Conflict`` on ``name``, found by the unique index, so a rename racing a create
        of the same name cannot overwrite either job.
        """
        stmt = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.removed_at.is_(None))
            .values(
                name=spec.name,
                spec=spec.model_dump(mode="json", exclude={"enabled"}),
                enabled=spec.enabled,
                next_fire_at=_utc_or_none(next_fire_at),
                updated_at=utc(now),
            )
        )
        try:
            async with writing(self.engine) as conn:
                if not (await conn.execute(stmt)).rowcount:
                    await self._refuse_unwritten(conn, job_id)
                return await self._job(conn, job_id)
        except IntegrityError as exc:
            raise Conflict("name", f"a job named {spec.name!r} already exists") from exc

    async def create_job(
        self, spec: JobSpec, source: str, next_fire_at: datetime | None, now: datetime
    ) -> Job:
        """Create a job; a duplicate name is a ``Conflict``, never an overwrite."""
        return (await self.create_jobs([(spec, next_fire_at)], source, now))[0]

    async def create_jobs(
        self, planned: Sequence[tuple[JobSpec, datetime | None]], source: str, now: datetime
    ) -> list[Job]:
        """Create jobs in one transaction: a name already taken is a ``Conflict`` naming it,
        and then none of them is created. Not retried on a lost connection: a retry after a
        commit whose answer was lost would find its own jobs and call them a conflict."""
        ids = [new_id() for _ in planned]
        async with writing(self.engine) as conn:
            for job_id, (spec, next_fire_at) in zip(ids, planned, strict=True):
                values = _job_values(spec, source, next_fire_at, now)
                try:
                    await conn.execute(
                        jobs.insert().values(id=job_id, created_at=utc(now), **values)
                    )
                except IntegrityError as exc:
                    raise Conflict("name", f"a job named {spec.name!r} already exists") from exc
            rows = (await conn.execute(select(jobs).where(jobs.c.id.in_(ids)))).mappings()
            created = {row["id"]: to_job(row) for row in rows}
        return [created[job_id] for job_id in ids]

    async def _refuse_unwritten(self, conn: AsyncConnection, job_id: str) -> NoReturn:
        """Why a job's ``UPDATE`` by id changed no row: removed from the jobs folder (a
        ``Conflict``), or gone (``NotFound``)."""
        (await self._job(conn, job_id)).refuse_if_removed()
        raise NotFound("job", job_id)

    async def _job(self, conn: AsyncConnection, job_id: str) -> Job:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
        if row is None:
            raise NotFound("job", job_id)
        return to_job(row)

    @transient
    async def get_job(self, job_id: str) -> Job | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
            return to_job(row) if row else None

    @transient
    async def get_job_by_name(self, name: str) -> Job | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.name == name))).mappings().first()
            return to_job(row) if row else None

    @transient
    async def list_jobs(self) -> list[Job]:
        async with self.reads.connect() as conn:
            rows = (await conn.execute(select(jobs).order_by(jobs.c.name))).mappings().all()
            return [to_job(r) for r in rows]

    @transient
    async def delete_job(self, job_id: str, now: datetime | None = None) -> bool:
        """Deletes the job and its not-yet-started runs (logged as cancelled); finished runs
        stay as history."""
        now = now or datetime.now(UTC)
        async with writing(self.engine) as conn:
            dropped = await conn.execute(
                delete(runs)
                .where(runs.c.job_id == job_id, runs.c.status.in_(CLAIMABLE_VALUES))
                .returning(*runs.c)
            )
            cancelled = [to_run(r) for r in dropped.mappings().all()]
            result = await conn.execute(delete(jobs).where(jobs.c.id == job_id))
            for run in cancelled:
                run.status, run.finished_at = RunStatus.CANCELLED, now
            await self._log(conn, [event_of(r, now) for r in cancelled])
        self._signal_events(cancelled)
        return bool(result.rowcount)

    @transient
    async def set_job_enabled(
        self, job_id: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> Job:
        stmt = update(jobs).where(jobs.c.id == job_id)
        if enabled:  # a job removed from the jobs folder meanwhile stays stopped
            stmt = stmt.where(jobs.c.removed_at.is_(None))
        async with writing(self.engine) as conn:
            result = await conn.execute(
                stmt.values(
                    enabled=enabled, next_fire_at=_utc_or_none(next_fire_at), updated_at=utc(now)
                )
            )
            if not result.rowcount:
                await self._refuse_unwritten(conn, job_id)
            return await self._job(conn, job_id)

    @transient
    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        query = (
            select(jobs)
            .where(jobs.c.enabled.is_(True), jobs.c.next_fire_at <= utc(now))
            .order_by(jobs.c.next_fire_at)
            .limit(limit)
        )
        async with self.reads.connect() as conn:
            return [to_job(r) for r in (await conn.execute(query)).mappings().all()]

    @transient
    async def next_job_fire_at(self) -> datetime | None:
        query = select(func.min(jobs.c.next_fire_at)).where(jobs.c.enabled.is_(True))
        async with self.reads.connect() as conn:
            value = (await conn.execute(query)).scalar()
        return _aware(value)

    @transient
    async def record_fires(
        self,
        job_id: str,
        new_runs: Sequence[Run],
        expected_next: datetime | None,
        next_fire_at: datetime | None,
    ) -> int:
        """Insert a job's fires and advance its ``next_fire_at``, all or nothing.

        The advance is a compare-and-set on the value the caller planned from: a scheduler that
        lost the race (another one advanced the job, or the job was changed) writes nothing,
        and the unique ``(job_id, fire_time)`` key drops any fire two schedulers both computed.
        A job paused (or stopped) after the scheduler read it writes nothing either: a pause
        keeps ``next_fire_at``, so the compare-and-set alone would let those fires through.
        """
        async with writing(self.engine) as conn:
            # The compare-and-set first: a loser has then written nothing and need not roll
            # back (which on SQLite would undo the other writers grouped in its transaction,
            # ``writes.py``), and on PostgreSQL a second scheduler waits on the job's row lock
            # before inserting anything.
            moved = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, _eq_or_null(jobs.c.next_fire_at, expected_next))
                .where(jobs.c.enabled.is_(True))
                .values(next_fire_at=_utc_or_none(next_fire_at))
            )
            if not moved.rowcount:
                return 0
            inserted = await self._insert_runs(conn, new_runs, on_conflict=("job_id", "fire_time"))
            await self._notify(conn, inserted)
            await self._log(conn, [event_of(r, r.created_at) for r in inserted])
        self._signal(inserted)
        return len(inserted)

    # -- runs ---------------------------------------------------------------------------------

    @transient
    async def enqueue(self, new_runs: Sequence[Run]) -> list[Run]:
        """Insert ad-hoc runs. Ids make it idempotent: a retried insert adds nothing twice."""
        inserted = await self._insert_logged(new_runs, "id")
        self._signal(inserted)
        return inserted

    async def enqueue_idempotent(self, run: Run) -> tuple[Run, bool]:
        """Insert a run unless one with its idempotency key exists; returns (run, created)."""
        assert run.idempotency_key is not None
        inserted = await self._insert_logged([run], "idempotency_key")
        if not inserted:
            query = select(runs).where(runs.c.idempotency_key == run.idempotency_key)
            async with self.reads.connect() as conn:
                existing = (await conn.execute(query)).mappings().one()
            return to_run(existing), False
        self._signal(inserted)
        return inserted[0], True

    async def _insert_logged(self, new_runs: Sequence[Run], conflict: str) -> list[Run]:
        """Insert runs unless ``conflict`` (a unique column) is taken, logging each inserted
        one; on PostgreSQL as one statement with the NOTIFY (``onetrip``)."""
        if not new_runs:
            return []
        if self.dialect.name != "postgresql":
            async with writing(self.engine) as conn:
                inserted = await self._insert_runs(conn, new_runs, on_conflict=(conflict,))
                await self._log(conn, [event_of(r, r.created_at) for r in inserted])
            return inserted
        values = {"rows": _json_text(onetrip.runs_json(new_runs)), "channel": NOTIFY_CHANNEL}
        async with self._held.connect() as conn:
            found = await conn.execute(self._enqueue[conflict], values)
            inserted_ids = {r[0] for r in found}
        return [r for r in new_runs if r.id in inserted_ids]

    async def _insert_runs(
        self, conn: AsyncConnection, new_runs: Sequence[Run], on_conflict: tuple[str, ...]
    ) -> list[Run]:
        if not new_runs:
            return []
        stmt = self.dialect.insert().on_conflict_do_nothing(index_elements=list(on_conflict))
        rows = await conn.execute(stmt.returning(runs.c.id), [run_values(r) for r in new_runs])
        inserted_ids = {r[0] for r in rows}
        return [r for r in new_runs if r.id in inserted_ids]

    async def _notify(self, conn: AsyncConnection, inserted: Sequence[Run]) -> None:
        await self._notify_due(conn, [r.scheduled_at for r in inserted if r.status in CLAIMABLE])

    async def _notify_due(self, conn: AsyncConnection, due: Sequence[datetime]) -> None:
        """Inside the transaction: PostgreSQL delivers the NOTIFY only if it commits."""
        if due and self.dialect.notify:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": NOTIFY_CHANNEL, "payload": min(due).isoformat()},
            )

    def _signal(self, inserted: Sequence[Run]) -> None:
        self._signal_due([r.scheduled_at for r in inserted if r.status in CLAIMABLE])
        self._signal_events(inserted)

    async def _log(self, conn: AsyncConnection, new: Sequence[RunEvent]) -> None:
        """The execution log's append: the last statement of the transaction (see events.py)."""
        await append_events(conn, self.dialect, new)

    def _signal_events(self, changed: Sequence[object]) -> None:
        if changed:
            for callback in self.on_events:
                callback()

    def _signal_due(self, due: Sequence[datetime]) -> None:
        """After the commit: wakes this process's workers (the only wake-up SQLite has)."""
        if due:
            earliest = min(due)
            for callback in self.on_enqueued:
                callback(earliest)

    @transient
    async def claim(self, worker: str, now: datetime, limit: int, lease_s: float) -> list[Run]:
        """Move up to ``limit`` due runs to ``running`` for this worker, one attempt more."""
        values = {
            "now": utc(now),
            "limit": limit,
            "worker": worker,
            "lease_until": utc(now) + timedelta(seconds=lease_s),
        }
        if self.dialect.name == "postgresql":
            claimed = await self._claim_postgresql(values)
        else:
            async with writing(self.engine) as conn:
                found = await conn.execute(self._claim, values)
                claimed = [to_run(r) for r in found.mappings().all()]
                await self._log(conn, [event_of(r, now) for r in claimed])
        self._backlog = len(claimed) >= limit
        self._signal_events(claimed)
        claimed.sort(key=lambda r: (-r.priority, r.scheduled_at))
        return claimed

    async def _claim_postgresql(self, values: dict[str, Any]) -> list[Run]:
        """One statement: the claim and its log append (``onetrip``)."""
        if not self._backlog:
            # An idle worker's claim: one round trip, commit included (dispatch latency).
            async with self._held.connect() as conn:
                found = await conn.execute(self._claim, values)
                return [to_run(r) for r in found.mappings().all()]
        async with writing(self.engine) as conn:
            # Before the table has statistics (a fresh install, a first burst) PostgreSQL
            # guesses a dozen claimable rows and reads *every* claimable run through a bitmap
            # scan to sort them: 9 ms a claim with 20,000 queued, against 0.3 ms along the
            # claimable index, which is already in claim order. That only costs when many runs
            # are claimable, i.e. when the last claim came back full, so only then is the
            # claim a transaction of its own with the setting.
            await conn.execute(_NO_BITMAP_SCAN)
            found = await conn.execute(self._claim, values)
            return [to_run(r) for r in found.mappings().all()]

    @transient
    async def complete(self, worker: str, completions: Sequence[Completion]) -> list[str]:
        """Record finished attempts; returns the ids accepted.

        Fencing: a completion applies only while the run is still ``running`` at that attempt.
        A worker whose lease expired (and whose run was retried) or whose run was cancelled
        finds nothing to update, so a stale result can never overwrite a newer one.
        """
        if not completions:
            return []
        async with writing(self.engine) as conn:
            if self.dialect.name == "postgresql":
                accepted = await _complete_postgresql(conn, completions)
            else:
                logged = await _complete_each(conn, completions)
                accepted = [e.run_id for e in logged]
            held = set(accepted)
            retry_times = [
                c.retry_at for c in completions if c.retry_at is not None and c.run_id in held
            ]
            await self._notify_due(conn, retry_times)
            if self.dialect.name == "postgresql":
                finished = {c.run_id: c.finished_at for c in completions}
                await append_from_runs(conn, [(run_id, finished[run_id]) for run_id in accepted])
            else:
                await self._log(conn, logged)
        self._signal_due(retry_times)
        self._signal_events(accepted)
        return accepted

    @transient
    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], now: datetime, lease_s: float
    ) -> list[str]:
        """Extend the leases this worker still holds; returns them (others were lost)."""
        if not run_ids:
            return []
        stmt = (
            update(runs)
            .where(runs.c.id.in_(list(run_ids)), runs.c.worker == worker)
            .where(runs.c.status == RunStatus.RUNNING.value)
            .values(lease_until=utc(now) + timedelta(seconds=lease_s))
            .returning(runs.c.id)
        )
        async with writing(self.engine) as conn:
            return [r[0] for r in await conn.execute(stmt)]

    @transient
    async def release(self, worker: str, held: Sequence[tuple[str, int]], now: datetime) -> int:
        """Give unfinished runs back on shutdown: queued again, the attempt not counted."""
        released: list[Run] = []
        async with writing(self.engine) as conn:
            for run_id, attempt in held:
                result = await conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.attempt == attempt, runs.c.worker == worker)
                    .where(runs.c.status == RunStatus.RUNNING.value)
                    .values(
                        status=RunStatus.QUEUED.value,
                        attempt=attempt - 1,
                        worker=None,
                        lease_until=None,
                        started_at=None,
                        scheduled_at=utc(now),
                    )
                    .returning(*runs.c)
                )
                released += [to_run(r) for r in result.mappings().all()]
            await self._notify_due(conn, [now] if released else [])
            await self._log(conn, [event_of(r, now) for r in released])
        self._signal_due([now] if released else [])
        self._signal_events(released)
        return len(released)

    @transient
    async def reap_expired(self, now: datetime, limit: int) -> list[Run]:
        """Runs whose worker stopped heartbeating: retried at once if attempts remain, else dead."""
        expired = (
            select(runs.c.id)
            .where(runs.c.status == RunStatus.RUNNING.value, runs.c.lease_until < utc(now))
            .limit(limit)
        )
        if self.dialect.skip_locked:
            expired = expired.with_for_update(skip_locked=True)
        has_attempts_left = runs.c.attempt < runs.c.max_attempts
        stmt = (
            update(runs)
            .where(runs.c.id.in_(expired.scalar_subquery()))
            .values(
                status=case(
                    (has_attempts_left, RunStatus.RETRYING.value), else_=RunStatus.DEAD.value
                ),
                error=func.coalesce(runs.c.worker, "?").concat(
                    " stopped heartbeating; lease expired"
                ),
                lease_until=None,
                scheduled_at=utc(now),
                finished_at=case((has_attempts_left, None), else_=utc(now)),
            )
            .returning(*runs.c)
        )
        async with writing(self.engine) as conn:
            reaped = [to_run(r) for r in (await conn.execute(stmt)).mappings().all()]
            await self._notify(conn, reaped)
            await self._log(conn, [event_of(r, now) for r in reaped])
        self._signal(reaped)
        return reaped

    @transient
    async def next_due_at(self) -> datetime | None:
        """The earliest scheduled time among claimable runs, to sleep exactly until then."""
        per_status = [
            select(func.min(runs.c.scheduled_at).label("at")).where(runs.c.status == status)
            for status in CLAIMABLE_VALUES
        ]
        both = union_all(*per_status).subquery()
        async with self.reads.connect() as conn:
            value = (await conn.execute(select(func.min(both.c.at)))).scalar()
        return _aware(value)

    @transient
    async def get_run(self, run_id: str) -> Run | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
            return to_run(row) if row else None

    @transient
    async def run_ids_starting(self, prefix: str, limit: int) -> list[str]:
        """Ids of runs that begin with ``prefix`` (the CLI's short ids), at most ``limit``.
        A ``LIKE`` with the prefix escaped; without a text-pattern index PostgreSQL scans
        for it, which a person typing a command can afford."""
        query = (
            select(runs.c.id)
            .where(runs.c.id.startswith(prefix, autoescape=True))
            .order_by(runs.c.id)
            .limit(limit)
        )
        async with self.reads.connect() as conn:
            return [row[0] for row in await conn.execute(query)]

    @transient
    async def list_runs(
        self, flt: RunFilter, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Run]:
        """Newest first, keyset-paged on (created_at, id): stable under concurrent inserts."""
        query = select(runs).where(*_filters(flt))
        if after is not None:
            created, run_id = after
            # A row-value comparison: PostgreSQL turns it into an index bound, where the
            # equivalent ``a < x OR (a = x AND b < y)`` is only a filter over every row
            # before the page (as slow as OFFSET; measured in bench/api_list.py).
            query = query.where(tuple_(runs.c.created_at, runs.c.id) < tuple_(utc(created), run_id))
        query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        async with self.reads.connect() as conn:
            return [to_run(r) for r in (await conn.execute(query)).mappings().all()]

    @transient
    async def last_runs(self, job_ids: Sequence[str]) -> dict[str, Run]:
        """The newest run of each job, by job id (jobs without runs are absent), in one query:
        a page of the jobs list shows each job's last run, and a query per job made the page
        cost one round trip per row. The inner query walks ``(job_id, created_at)`` backwards
        for each job, so it reads one run per job however many each has."""
        if not job_ids:
            return {}
        of_job = runs.alias("of_job")
        newest = (
            select(of_job.c.id)
            .where(of_job.c.job_id == jobs.c.id)
            .order_by(of_job.c.created_at.desc(), of_job.c.id.desc())
            .limit(1)
            .correlate(jobs)
            .scalar_subquery()
        )
        query = select(runs).where(runs.c.id.in_(select(newest).where(jobs.c.id.in_(job_ids))))
        async with self.reads.connect() as conn:
            found = [to_run(r) for r in (await conn.execute(query)).mappings().all()]
        return {run.job_id: run for run in found if run.job_id is not None}

    @transient
    async def count_runs(self, flt: RunFilter) -> int:
        async with self.reads.connect() as conn:
            query = select(func.count()).select_from(runs).where(*_filters(flt))
            return int((await conn.execute(query)).scalar_one())

    async def cancel_run(self, run_id: str, now: datetime) -> Run:
        """Cancel a queued, retrying or running run. A running worker learns of it by heartbeat."""
        cancellable = [*CLAIMABLE_VALUES, RunStatus.RUNNING.value]
        stmt = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_(cancellable))
            .values(status=RunStatus.CANCELLED.value, finished_at=utc(now), lease_until=None)
            .returning(*runs.c)
        )
        return await self._transition(
            run_id, stmt, "only a queued, retrying or running run can be cancelled", now
        )

    async def retry_run(self, run_id: str, now: datetime) -> Run:
        """Manual retry of a finished run: queued now, with a fresh allowance of attempts."""
        current = await self.get_run(run_id)
        if current is None:
            raise NotFound("run", run_id)
        allowance = int(current.retry.get("max_attempts", 1))
        stmt = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_([s.value for s in FINAL]))
            .values(
                status=RunStatus.QUEUED.value,
                scheduled_at=utc(now),
                max_attempts=runs.c.attempt + allowance,
                finished_at=None,
                lease_until=None,
                error=None,
            )
            .returning(*runs.c)
        )
        return await self._transition(run_id, stmt, "only a finished run can be retried", now)

    async def delay_run(self, run_id: str, delay: timedelta, now: datetime) -> Run:
        """Move a waiting run's scheduled time later by ``delay`` (``POST /delay``).

        The new time is computed here from the row read in the same transaction, which holds
        it (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL), so no other delay
        can land between the read and the update (read outside it, two concurrent delays of
        one run kept only one), and a time past the accepted range is refused before it is
        written (PostgreSQL stored it, then could not hand it back)."""

        async def computed(conn: AsyncConnection) -> Any:
            query = select(runs.c.scheduled_at).where(runs.c.id == run_id).with_for_update()
            current = _aware((await conn.execute(query)).scalar())
            stmt = update(runs).where(runs.c.id == run_id, runs.c.status.in_(CLAIMABLE_VALUES))
            if current is None:
                return stmt.values(scheduled_at=runs.c.scheduled_at).returning(*runs.c)
            try:
                moved = later(current, delay)
            except ValueError as error:
                raise InvalidInput("delay", str(error)) from None
            return stmt.values(scheduled_at=utc(moved)).returning(*runs.c)

        refusal = "only a queued or retrying run can be delayed"
        return await self._transition(run_id, computed, refusal, now, EventKind.DELAYED)

    @transient
    async def list_waiting(self, limit: int) -> list[Run]:
        """Runs waiting to start (queued or retrying), soonest first (``GET /queued``)."""
        query = (
            select(runs)
            .where(runs.c.status.in_(CLAIMABLE_VALUES))
            .order_by(runs.c.scheduled_at, runs.c.id)
            .limit(limit)
        )
        async with self.reads.connect() as conn:
            return [to_run(r) for r in (await conn.execute(query)).mappings().all()]

    async def _transition(
        self,
        run_id: str,
        stmt: Any,
        refusal: str,
        now: datetime,
        kind: EventKind | None = None,
    ) -> Run:
        async with writing(self.engine) as conn:
            if callable(stmt):  # built inside the transaction (see ``delay_run``)
                stmt = await stmt(conn)
            row = (await conn.execute(stmt)).mappings().first()
            if row is None:
                exists = (
                    await conn.execute(select(runs.c.status).where(runs.c.id == run_id))
                ).first()
                if exists is None:
                    raise NotFound("run", run_id)
                raise Conflict("status", f"{refusal}; this one is {exists[0]}")
            run = to_run(row)
            await self._notify(conn, [run])
            await self._log(conn, [event_of(run, now, kind)])
        self._signal([run])
        return run

    async def delete_all(self) -> None:
        """Empty every table (tests and ``pacer db reset``)."""
        async with writing(self.engine) as conn:
            for table in (runs, jobs, events, consumers, event_prunes):
                await conn.execute(delete(table))


def _job_values(
    spec: JobSpec, source: str, next_fire_at: datetime | None, now: datetime
) -> dict[str, Any]:
    """A job's columns from its spec (``enabled`` has a column of its own)."""
    return {
        "name": spec.name,
        "spec": spec.model_dump(mode="json", exclude={"enabled"}),
        "source": source,
        "enabled": spec.enabled,
        "next_fire_at": _utc_or_none(next_fire_at),
        "updated_at": utc(now),
    }


def _claim_statement() -> Any:
    """SQLite's claim (PostgreSQL's is ``onetrip.claim_statement``), built once with bound
    values: building it per call was a tenth of an idle worker's claim latency (SQLAlchemy
    constructs and hashes the expression each time). SQLite has one writer at a time, so the
    candidates need no row locks."""
    now = bindparam("now", type_=Timestamp)
    candidates = (
        select(runs.c.id)
        .where(runs.c.status.in_(CLAIMABLE_VALUES), runs.c.scheduled_at <= now)
        .order_by(runs.c.priority.desc(), runs.c.scheduled_at)
        .limit(bindparam("limit", type_=Integer))
    )
    return (
        update(runs)
        .where(runs.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=RunStatus.RUNNING.value,
            attempt=runs.c.attempt + 1,
            worker=bindparam("worker", type_=String),
            started_at=now,
            finished_at=None,
            lease_until=bindparam("lease_until", type_=Timestamp),
        )
        .returning(*runs.c)
    )


def _filters(flt: RunFilter) -> list[Any]:
    clauses: list[Any] = []
    if flt.job_id is not None:
        clauses.append(runs.c.job_id == flt.job_id)
    if flt.adhoc_only:
        clauses.append(runs.c.job_id.is_(None))
    if flt.status:
        clauses.append(runs.c.status.in_([s.value for s in flt.status]))
    if flt.query_id is not None:
        clauses.append(runs.c.query_id == flt.query_id)
    if flt.since is not None:
        clauses.append(runs.c.created_at >= utc(flt.since))
    if flt.until is not None:
        clauses.append(runs.c.created_at < utc(flt.until))
    return clauses


def _completed_event(row: Any, c: Completion) -> RunEvent:
    """The log entry of an accepted completion, from the run's row and the completion."""
    finished = utc(c.finished_at) if c.status is not RunStatus.RETRYING else None
    scheduled = c.retry_at or _aware(row.scheduled_at)
    error = c.error[:MAX_EVENT_ERROR] if c.error else None
    return RunEvent(
        kind=KIND_OF_STATUS[c.status],
        run_id=c.run_id,
        attempt=c.attempt,
        status=c.status,
        at=c.finished_at,
        job_id=row.job_id,
        query_id=row.query_id,
        scheduled_at=scheduled,
        started_at=_aware(row.started_at),
        finished_at=finished,
        worker=row.worker,
        error=error,
    )


def _completion_values(c: Completion) -> dict[str, Any]:
    return {
        "status": c.status.value,
        "finished_at": utc(c.finished_at) if c.status is not RunStatus.RETRYING else None,
        "result": c.result,
        "error": c.error,
        "retry_at": utc(c.retry_at) if c.retry_at else None,
    }


#: What a completion's log entry needs of the run beyond the completion itself.
_EVENT_COLUMNS = ("id", "attempt", "job_id", "query_id", "scheduled_at", "started_at", "worker")


async def _complete_each(
    conn: AsyncConnection, completions: Sequence[Completion]
) -> list[RunEvent]:
    """SQLite: read which completions still hold their run, then one ``executemany``.

    Reading first is safe because the transaction holds SQLite's write lock from its start
    (``BEGIN IMMEDIATE``); one UPDATE per completion cost a round trip through aiosqlite's
    thread each.
    """
    wanted = {c.run_id: c.attempt for c in completions}
    held = select(*(runs.c[name] for name in _EVENT_COLUMNS)).where(
        runs.c.id.in_(list(wanted)), runs.c.status == RunStatus.RUNNING.value
    )
    holding = {r.id: r for r in await conn.execute(held) if wanted.get(r.id) == r.attempt}
    accepted = [c for c in completions if c.run_id in holding]
    if not accepted:
        return []
    stmt = (
        update(runs)
        .where(runs.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            finished_at=bindparam("b_finished_at"),
            result=bindparam("b_result", type_=runs.c.result.type),
            error=bindparam("b_error"),
            lease_until=None,
            scheduled_at=func.coalesce(
                bindparam("b_retry_at", type_=Timestamp), runs.c.scheduled_at
            ),
        )
    )
    params = [
        {"b_id": c.run_id, **{f"b_{k}": v for k, v in _completion_values(c).items()}}
        for c in accepted
    ]
    await conn.execute(stmt, params)
    return [_completed_event(holding[c.run_id], c) for c in accepted]


_PG_COMPLETE = text(
    """
    UPDATE pacer_runs AS r SET
        status = v.status,
        finished_at = v.finished_at,
        result = v.result,
        error = v.error,
        lease_until = NULL,
        scheduled_at = COALESCE(v.retry_at, r.scheduled_at)
    FROM json_to_recordset(CAST(:batch AS json)) AS v(
        id varchar, attempt integer, status varchar, finished_at timestamptz, result jsonb,
        error text, retry_at timestamptz
    )
    WHERE r.id = v.id AND r.attempt = v.attempt AND r.status = 'running'
    RETURNING r.id
    """
)


async def _complete_postgresql(
    conn: AsyncConnection, completions: Sequence[Completion]
) -> list[str]:
    """One round trip for a whole batch, sent as one JSON text; the ids accepted, in the order
    given (their events are then built from the rows, ``append_from_runs``).

    Rejected: one array parameter per column (``unnest``), which psycopg dumps element by
    element in Python: 14 % of a draining worker's samples (BENCHMARKS.md).
    """
    batch = [
        {
            "id": c.run_id,
            "attempt": c.attempt,
            "status": c.status.value,
            "finished_at": None if c.status is RunStatus.RETRYING else _iso(c.finished_at),
            "result": c.result,
            "error": c.error,
            "retry_at": _iso(c.retry_at) if c.retry_at else None,
        }
        for c in completions
    ]
    accepted = {r.id for r in await conn.execute(_PG_COMPLETE, {"batch": _json_text(batch)})}
    return [c.run_id for c in completions if c.run_id in accepted]


def _iso(value: datetime) -> str:
    return utc(value).isoformat()


def _json_text(value: Any) -> str:
    """JSON for PostgreSQL, which cannot hold NUL in text or jsonb: a NUL in a result or an
    error (a function may return any string) becomes U+FFFD rather than failing the batch, which
    the worker would retry for ever."""
    encoded = json.dumps(value)
    if "\\u0000" in encoded:
        encoded = json.dumps(_without_nul(value))
    return encoded


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _utc_or_none(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):  # SQLite aggregates lose the column type
        value = datetime.fromisoformat(value)
    return aware(value)


def _eq_or_null(column: Any, value: datetime | None) -> Any:
    return column.is_(None) if value is None else column == utc(value)
