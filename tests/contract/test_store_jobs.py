"""Changing stored jobs: updates are by id and never create or overwrite a job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pacer.domain.errors import Conflict, NotFound
from pacer.domain.misfires import PlannedFire
from pacer.domain.models import Job, JobSpec, new_id
from pacer.domain.runs import run_for_fire
from pacer.ports import JobWrites, RunFilter
from pacer.stores.sqlalchemy import SqlStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NOOP = {"kind": "python", "function": "builtins:len"}


def _spec(name: str, **changes: object) -> JobSpec:
    return JobSpec.model_validate({"name": name, "action": NOOP, **changes})


async def test_update_of_a_missing_id_is_not_found_and_creates_nothing(store: SqlStore) -> None:
    """An update of a job deleted since it was read raises ``NotFound``; no job appears."""
    job = await store.create_job(_spec("victim"), "api", None, T0)
    await store.delete_job(job.id, T0)
    with pytest.raises(NotFound):
        await store.update_job(job.id, _spec("victim", priority=5), None, T0)
    assert [] == await store.list_jobs()


async def test_update_keeps_the_id_and_may_rename(store: SqlStore) -> None:
    """An update replaces the spec and the name of the job with that id, keeping the id."""
    job = await store.create_job(_spec("before"), "api", None, T0)
    later = T0 + timedelta(minutes=1)
    updated = await store.update_job(job.id, _spec("after", priority=7), later, later)
    assert (job.id, "after", 7, later) == (
        updated.id,
        updated.name,
        updated.spec.priority,
        updated.next_fire_at,
    )
    assert [updated] == await store.list_jobs()


async def test_update_to_a_taken_name_is_a_conflict_and_changes_nothing(store: SqlStore) -> None:
    """Renaming a job to another job's name raises ``Conflict`` on ``name``; neither job
    changes."""
    mine = await store.create_job(_spec("mine"), "api", None, T0)
    theirs = await store.create_job(_spec("theirs"), "api", None, T0)
    with pytest.raises(Conflict) as refused:
        await store.update_job(mine.id, _spec("theirs", priority=9), None, T0)
    assert "name" == refused.value.field
    assert [mine, theirs] == await store.list_jobs()


async def test_update_of_an_unknown_id_is_not_found(store: SqlStore) -> None:
    """An id that never existed is ``NotFound`` too, whatever the name in the spec."""
    await store.create_job(_spec("existing"), "api", None, T0)
    with pytest.raises(NotFound):
        await store.update_job(new_id(), _spec("existing"), None, T0)
    assert ["existing"] == [job.name for job in await store.list_jobs()]


async def test_create_jobs_writes_all_or_none(store: SqlStore) -> None:
    """Creating several jobs is one transaction: the second's name taken is a ``Conflict``
    naming it, and the first is not created either."""
    theirs = await store.create_job(_spec("second"), "api", None, T0)
    with pytest.raises(Conflict) as refused:
        await store.create_jobs([(_spec("first"), None), (_spec("second"), T0)], "cli", T0)
    assert ("name", "a job named 'second' already exists") == (
        refused.value.field,
        refused.value.reason,
    )
    assert [theirs] == await store.list_jobs()


async def test_create_jobs_returns_them_in_order(store: SqlStore) -> None:
    """The created jobs come back in the order given, with their source and next fire."""
    created = await store.create_jobs([(_spec("b"), T0), (_spec("a"), None)], "cli", T0)
    assert [("b", "cli", T0), ("a", "cli", None)] == [
        (job.name, job.source, job.next_fire_at) for job in created
    ]
    assert sorted(created, key=lambda job: job.name) == await store.list_jobs()


async def test_a_sync_creating_a_name_taken_meanwhile_keeps_the_stored_job(store: SqlStore) -> None:
    """A sync's insert of a name that a job of the same source took after the read (another
    scheduler starting at once) does nothing: that job stands, and is returned."""
    theirs = await store.create_job(_spec("defined"), "definitions", T0, T0)

    def stale(existing: Sequence[Job]) -> JobWrites:
        return JobWrites(create=[(_spec("defined", priority=5), None)])

    assert [theirs] == await store.sync_jobs(["defined"], "definitions", stale, T0)
    assert [theirs] == await store.list_jobs()


async def test_a_sync_creating_a_name_another_source_took_writes_nothing(
    store: SqlStore,
) -> None:
    """A sync's insert of a name that a job made through the API took after the read is a
    ``Conflict`` on ``name``, and none of the sync's writes stay."""
    theirs = await store.create_job(_spec("shared"), "api", None, T0)
    ours = await store.create_job(_spec("ours"), "definitions", None, T0)

    def stale(existing: Sequence[Job]) -> JobWrites:
        return JobWrites(create=[(_spec("new"), None), (_spec("shared"), None)], stop=[ours.id])

    with pytest.raises(Conflict) as refused:
        await store.sync_jobs(["new", "shared"], "definitions", stale, T0)
    assert "name" == refused.value.field
    assert [ours, theirs] == await store.list_jobs()


async def test_a_sync_updates_by_id_and_stops_by_id(store: SqlStore) -> None:
    """A sync's update replaces the spec, enabled flag and next fire of the job with that id
    and clears ``removed_at``; a stop disables a job and sets its ``removed_at``, keeping its
    next fire."""
    kept = await store.create_job(_spec("kept"), "definitions", T0, T0)
    gone = await store.create_job(_spec("gone"), "definitions", T0, T0)
    (stopped,) = await store.sync_jobs([], "definitions", lambda _: JobWrites(stop=[kept.id]), T0)
    assert (False, T0) == (stopped.spec.enabled, stopped.removed_at)
    later = T0 + timedelta(hours=1)

    def plan(existing: Sequence[Job]) -> JobWrites:
        assert ["gone", "kept"] == sorted(job.name for job in existing)
        spec = _spec("kept", priority=4, enabled=False)
        return JobWrites(update=[(kept.id, spec, later)], stop=[gone.id])

    written = await store.sync_jobs(["kept"], "definitions", plan, later)
    assert [
        ("gone", False, T0, later, 0),
        ("kept", False, later, None, 4),
    ] == [
        (job.name, job.spec.enabled, job.next_fire_at, job.removed_at, job.spec.priority)
        for job in written
    ]
    assert written == await store.list_jobs()


@pytest.mark.parametrize("paused", [False, True])
async def test_fires_of_a_job_paused_after_it_was_read_are_not_recorded(
    store: SqlStore, paused: bool
) -> None:
    """A scheduler read the job as due, then the job was paused (which keeps its
    ``next_fire_at``): its fires are not recorded and the job is not advanced. Unpaused, the
    same call records them (the control)."""
    due = T0 - timedelta(minutes=1)
    job = await store.create_job(_spec("minutely", schedule={"cron": "* * * * *"}), "api", due, T0)
    [read] = await store.due_jobs(T0, 10)
    if paused:
        await store.set_job_enabled(job.id, False, job.next_fire_at, T0)
    fire = PlannedFire(fire_time=due, run=True, note=None)
    run = run_for_fire(read, fire, T0, None)
    written = await store.record_fires(job.id, [run], due, T0 + timedelta(minutes=1))
    runs = await store.list_runs(RunFilter(job_id=job.id), limit=10)
    stored = await store.get_job(job.id)
    assert stored is not None
    if paused:
        assert (0, [], due) == (written, runs, stored.next_fire_at)
    else:
        assert (1, [run.id], T0 + timedelta(minutes=1)) == (
            written,
            [r.id for r in runs],
            stored.next_fire_at,
        )


@pytest.mark.parametrize("write", ["resume", "replace", "pause"])
async def test_a_job_removed_after_it_was_read_is_not_resumed_or_replaced(
    store: SqlStore, write: str
) -> None:
    """The service checked the job (not removed), then a start found its definition gone and
    stopped it: resuming or replacing it is a ``Conflict`` on ``job`` and it stays stopped.
    Pausing it still works (it is stopped already)."""
    job = await store.create_job(_spec("leaving"), "definitions", T0, T0)
    await store.sync_jobs([], "definitions", lambda _: JobWrites(stop=[job.id]), T0)
    later = T0 + timedelta(hours=1)
    if write == "pause":
        paused = await store.set_job_enabled(job.id, False, T0, later)
        assert (False, T0) == (paused.spec.enabled, paused.removed_at)
        return
    attempt = (
        store.set_job_enabled(job.id, True, later, later)
        if write == "resume"
        else store.update_job(job.id, _spec("leaving", priority=3), later, later)
    )
    with pytest.raises(Conflict) as refused:
        await attempt
    assert "job" == refused.value.field
    stored = await store.get_job(job.id)
    assert stored is not None
    assert (False, T0, 0) == (stored.spec.enabled, stored.removed_at, stored.spec.priority)
