"""Changing stored jobs: updates are by id and never create or overwrite a job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pacer.domain.errors import Conflict, NotFound
from pacer.domain.models import JobSpec, new_id
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
