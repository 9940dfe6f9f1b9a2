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
