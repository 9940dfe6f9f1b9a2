"""``JobSpec`` rules that the API, the job files and the Python API share."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pacer.domain.models import JobSpec, looks_like_id, new_id
from pacer.domain.validation import STORED

NOOP = {"kind": "python", "function": "pacer.testing:noop"}


@pytest.mark.parametrize(
    "name",
    [
        "0b9c3a1e-5f2d-4c6b-9a8e-7d1f2e3c4b5a",  # as new_id writes them (uuid4, lowercase)
        "0B9C3A1E-5F2D-4C6B-9A8E-7D1F2E3C4B5A",
        "00000000-0000-0000-0000-000000000000",
        "c232ab00-9414-11ec-b3c8-9e6bdeced846",  # a uuid1
    ],
)
def test_a_name_shaped_like_a_job_id_is_refused(name: str) -> None:
    """A name with the shape of a job id (a UUID, either case, any version) is refused on
    ``name``: the API addresses jobs by id or name, and it would answer for another job."""
    with pytest.raises(ValidationError) as refused:
        JobSpec.model_validate({"name": name, "action": NOOP})
    (error,) = refused.value.errors()
    assert ("name",) == error["loc"]
    assert "shape of a job id" in error["msg"]


@pytest.mark.parametrize(
    "name",
    [
        "report-0b9c3a1e-5f2d-4c6b-9a8e-7d1f2e3c4b5a",
        "0b9c3a1e-5f2d-4c6b-9a8e-7d1f2e3c4b5",
        "0b9c3a1e5f2d4c6b9a8e7d1f2e3c4b5a",
        "0b9c3a1e-5f2d-4c6b-9a8e-7d1f2e3c4b5g",
        "deadbeef",
    ],
)
def test_names_that_only_resemble_an_id_are_accepted(name: str) -> None:
    """Only the whole 8-4-4-4-12 shape is refused; a UUID inside a name, or hex that is not
    an id's shape, is a name like any other."""
    assert name == JobSpec.model_validate({"name": name, "action": NOOP}).name
    assert not looks_like_id(name)


def test_a_stored_job_named_like_an_id_still_loads() -> None:
    """A job stored before the rule still loads (one bad row would fail every jobs list)."""
    name = new_id()
    assert name == JobSpec.model_validate({"name": name, "action": NOOP}, context=STORED).name


def test_every_new_id_looks_like_an_id() -> None:
    """The shape matches the ids Pacer makes, so no id can be mistaken for a name."""
    assert all(looks_like_id(new_id()) for _ in range(100))


SCHEDULED = {"name": "nightly", "action": NOOP, "schedule": {"cron": "0 3 * * *"}}
SQL = {"kind": "sql", "target": "demo", "statement": "SELECT 1"}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"as_of": 0}, ("as_of",)),
        ({"as_of": "0"}, ("as_of",)),
        ({"as_of": 1671667200}, ("as_of",)),
        ({"schedule": {"at": 0}}, ("schedule", "at")),
        ({"schedule": {"at": "1700000000"}}, ("schedule", "at")),
        ({"schedule": {"at": "1.5e3"}}, ("schedule", "at")),
        ({"schedule": {"cron": "* * * * *", "start": 0.5}}, ("schedule", "start")),
        ({"schedule": {"cron": "* * * * *", "end": "-1"}}, ("schedule", "end")),
        ({"priority": True}, ("priority",)),
        ({"priority": "2"}, ("priority",)),
        ({"priority": 2.5}, ("priority",)),
        ({"retry": {"max_attempts": True}}, ("retry", "max_attempts")),
        ({"misfire": {"backfill_limit": "10"}}, ("misfire", "backfill_limit")),
        ({"action": {**SQL, "max_rows": "10"}}, ("action", "sql", "max_rows")),
        ({"timeout_s": "30"}, ("timeout_s",)),
        ({"timeout_s": True}, ("timeout_s",)),
        ({"retry": {"backoff_s": "1"}}, ("retry", "backoff_s")),
        ({"schedule": {"interval_s": "60"}}, ("schedule", "interval_s")),
        (
            {"action": {**SQL, "statement_timeout_s": True}},
            ("action", "sql", "statement_timeout_s"),
        ),
        ({"enabled": "yes"}, ("enabled",)),
        ({"enabled": 1}, ("enabled",)),
        ({"retry": {"jitter": "off"}}, ("retry", "jitter")),
        ({"action": {**SQL, "read_only": 0}}, ("action", "sql", "read_only")),
    ],
)
def test_a_value_of_another_json_type_is_refused(
    change: dict[str, object], where: tuple[str, ...]
) -> None:
    """A field takes its own JSON type only: a number for a time or a date (pydantic read it
    as seconds since 1970), a boolean or text for a number, a number or text for a boolean."""
    with pytest.raises(ValidationError) as refused:
        JobSpec.model_validate({**SCHEDULED, **change})
    assert [where] == [error["loc"] for error in refused.value.errors()]


def test_proper_values_of_every_type_are_accepted() -> None:
    """ISO-8601 text with an offset or none, integers (2.0 too, as JSON Schema counts it),
    integers where a number is expected, and booleans load as before."""
    spec = JobSpec.model_validate(
        {
            **SCHEDULED,
            "schedule": {
                "interval_s": 60,
                "start": "2026-01-05T12:00:00+05:30",
                "end": "2026-02-01T00:00:00",
            },
            "as_of": "2022-12-22",
            "priority": 2.0,
            "timeout_s": 30,
            "enabled": False,
            "retry": {"max_attempts": 5, "backoff_s": 0.5, "jitter": False},
        }
    )
    assert (2, 30.0, False, "2022-12-22") == (
        spec.priority,
        spec.timeout_s,
        spec.enabled,
        spec.as_of.isoformat() if spec.as_of else None,
    )
    assert spec.schedule is not None
    assert spec.schedule.start is not None
    assert "2026-01-05T12:00:00+05:30" == spec.schedule.start.isoformat()


def test_a_stored_spec_loads_back() -> None:
    """A spec as the stores keep it (its JSON dump) validates again, types unchanged."""
    spec = JobSpec.model_validate(
        {**SCHEDULED, "as_of": "2022-12-22", "action": {**SQL, "max_rows": 5}}
    )
    assert spec == JobSpec.model_validate(spec.model_dump(mode="json"), context=STORED)
