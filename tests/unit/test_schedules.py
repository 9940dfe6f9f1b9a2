"""Schedules: validation, cron/interval/one-off fire times, daylight saving, bounds and jitter."""

# House style is `assert expected == actual` (see STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pacer.domain.errors import InvalidInput
from pacer.domain.schedules import (
    EPOCH,
    ScheduleSpec,
    check_not_stale,
    describe,
    fire_times,
    first_fire,
    jitter_offset,
    next_fire_after,
)
from pacer.domain.validation import STORED


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def all_fires(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    return fire_times(spec, after, until, limit=1_000_000)


def refusal(**fields: Any) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        ScheduleSpec(**fields)
    error = caught.value.errors()[0]
    return error["loc"], error["msg"]


# -- cron syntax ---------------------------------------------------------------------------------


def test_five_field_cron_fires_on_matching_minutes() -> None:
    """A 5-field cron fires at every matching minute, in order."""
    spec = ScheduleSpec(cron="*/20 9 * * *")
    expected = [utc(2026, 1, 1, 9, 0), utc(2026, 1, 1, 9, 20), utc(2026, 1, 1, 9, 40)]
    assert expected == all_fires(spec, utc(2026, 1, 1), utc(2026, 1, 1, 12))


def test_six_field_cron_reads_seconds_first() -> None:
    """In a 6-field cron the first field is the second (Quartz/APScheduler convention)."""
    spec = ScheduleSpec(cron="15 30 2 * * *")
    assert utc(2026, 1, 1, 2, 30, 15) == next_fire_after(spec, utc(2026, 1, 1))


def test_six_field_cron_fires_every_thirty_seconds() -> None:
    """``*/30`` in the seconds field fires twice a minute."""
    spec = ScheduleSpec(cron="*/30 * * * * *")
    expected = [utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 1, 30)]
    assert expected == all_fires(spec, utc(2026, 1, 1), utc(2026, 1, 1, 0, 1, 30))


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 6, 1)),
        ("@weekly", utc(2026, 5, 17)),
        ("@daily", utc(2026, 5, 15)),
        ("@midnight", utc(2026, 5, 15)),
        ("@hourly", utc(2026, 5, 14, 11)),
        ("@DAILY", utc(2026, 5, 15)),
    ],
)
def test_macros_fire_at_their_usual_times(macro: str, expected: datetime) -> None:
    """The cron macros mean what they mean in Vixie cron (weekly is Sunday midnight)."""
    assert expected == next_fire_after(ScheduleSpec(cron=macro), utc(2026, 5, 14, 10, 30))


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("2m", 120), ("90s", 90), ("1h30m", 5400), ("1d", 86_400), ("1d2h3m4s", 93_784)],
)
def test_every_is_the_same_as_an_interval(duration: str, seconds: int) -> None:
    """``@every <duration>`` fires exactly like ``interval_s`` of the same length."""
    every = ScheduleSpec(cron=f"@every {duration}", tz="Europe/Amsterdam")
    interval = ScheduleSpec(interval_s=seconds)
    span = (utc(2026, 3, 28), utc(2026, 3, 31))
    assert all_fires(interval, *span) == all_fires(every, *span)


@pytest.mark.parametrize(
    "cron",
    [
        "61 * * * *",
        "* * * *",
        "* * * * * * *",
        "0 0 30 2 *",
        "H * * * *",
        "R * * * *",
        "@every",
        "@every 5x",
        "@every 500ms",
        "@every 0s",
        "@fortnightly",
        "",
    ],
)
def test_invalid_cron_is_refused_naming_the_field(cron: str) -> None:
    """A bad cron expression is a validation error on ``cron`` that quotes the expression."""
    loc, message = refusal(cron=cron)
    assert ("cron",) == loc
    assert f"invalid cron expression {cron!r}" in message


def test_out_of_range_cron_says_why() -> None:
    """The error carries croniter's reason, not just "invalid"."""
    _, message = refusal(cron="61 * * * *")
    assert "out of range" in message


def test_unknown_time_zone_is_refused_naming_the_field() -> None:
    """An unknown IANA zone is a validation error on ``tz``."""
    assert (("tz",), "Value error, unknown time zone 'Mars/Base'") == refusal(
        cron="@daily", tz="Mars/Base"
    )


@pytest.mark.parametrize(
    ("fields", "found"),
    [
        ({}, "none"),
        ({"cron": "@daily", "interval_s": 60}, "cron and interval_s"),
        ({"interval_s": 60, "at": utc(2026, 1, 1)}, "interval_s and at"),
        ({"cron": "@daily", "interval_s": 60, "at": utc(2026, 1, 1)}, "cron and interval_s and at"),
    ],
)
def test_exactly_one_kind_is_required(fields: dict[str, Any], found: str) -> None:
    """Zero or several of cron/interval_s/at is refused, saying which were given."""
    _, message = refusal(**fields)
    assert f"give exactly one of cron, interval_s or at (got {found})" in message


@pytest.mark.parametrize("interval_s", [0, -5])
def test_interval_must_be_positive(interval_s: float) -> None:
    """A zero or negative interval is a validation error on ``interval_s``."""
    assert ("interval_s",) == refusal(interval_s=interval_s)[0]


def test_end_must_follow_start() -> None:
    """An end not after the start is a validation error on ``end``."""
    loc, message = refusal(interval_s=60, start=utc(2026, 2, 1), end=utc(2026, 1, 1))
    assert ("end",) == loc
    assert "must be after start" in message


def test_one_off_takes_no_bounds() -> None:
    """Bounds on a one-off could only make it never fire, so they are refused."""
    _, message = refusal(at=utc(2026, 1, 1), end=utc(2026, 2, 1))
    assert "a one-off schedule (at) takes no start or end" in message


def test_negative_jitter_and_unknown_keys_are_refused() -> None:
    """``jitter_s`` must be >= 0, and unknown keys are errors."""
    assert ("jitter_s",) == refusal(interval_s=60, jitter_s=-1)[0]
    assert ("every",) == refusal(interval_s=60, every=5)[0]


# -- daylight saving -----------------------------------------------------------------------------


def test_amsterdam_spring_forward_fires_once_moved_forward_by_the_gap() -> None:
    """02:30 does not exist on 2026-03-29 in Amsterdam: the fire is 03:30 CEST (01:30 UTC)."""
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Amsterdam")
    expected = [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert expected == all_fires(spec, utc(2026, 3, 28), utc(2026, 3, 30, 12))


def test_amsterdam_fall_back_fires_once_at_the_first_occurrence() -> None:
    """02:30 happens twice on 2026-10-25 in Amsterdam: the fire is the first (00:30 UTC)."""
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Amsterdam")
    expected = [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert expected == all_fires(spec, utc(2026, 10, 24), utc(2026, 10, 26, 12))


def test_gap_fire_is_found_from_just_after_the_change() -> None:
    """Asked at 03:00 CEST on the spring-forward day, the moved 02:30 fire (03:30) is next."""
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Amsterdam")
    assert utc(2026, 3, 29, 1, 30) == next_fire_after(spec, utc(2026, 3, 29, 1, 0))


def local_day(zone: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """The UTC span of one local calendar day, minus a microsecond at the start."""
    midnight = datetime(year, month, day, tzinfo=ZoneInfo(zone))
    after = midnight.astimezone(UTC) - timedelta(microseconds=1)
    return after, (midnight + timedelta(days=1)).astimezone(UTC) - timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("cron", "zone", "day", "count"),
    [
        ("30 * * * *", "Europe/Amsterdam", (2026, 3, 29), 23),
        ("30 * * * *", "Europe/Amsterdam", (2026, 10, 25), 24),
        ("30 * * * *", "Europe/Amsterdam", (2026, 7, 1), 24),
        ("30 * * * *", "America/New_York", (2026, 3, 8), 23),
        ("30 * * * *", "America/New_York", (2026, 11, 1), 24),
        ("*/15 * * * *", "Australia/Lord_Howe", (2026, 10, 4), 94),
        ("*/15 * * * *", "Australia/Lord_Howe", (2026, 4, 5), 96),
    ],
)
def test_frequent_cron_across_a_change_is_strictly_increasing(
    cron: str, zone: str, day: tuple[int, int, int], count: int
) -> None:
    """Across a change fires never repeat or go back; colliding wall times make one fire."""
    fires = all_fires(ScheduleSpec(cron=cron, tz=zone), *local_day(zone, *day))
    assert count == len(fires)
    assert sorted(set(fires)) == fires


def test_new_york_gap_and_repeat() -> None:
    """New York: 02:30 on 2026-03-08 becomes 03:30 EDT; 01:30 on 2026-11-01 fires once, EDT."""
    gap = ScheduleSpec(cron="30 2 * * *", tz="America/New_York")
    repeat = ScheduleSpec(cron="30 1 * * *", tz="America/New_York")
    assert [utc(2026, 3, 8, 7, 30)] == all_fires(gap, *local_day("America/New_York", 2026, 3, 8))
    assert [utc(2026, 11, 1, 5, 30)] == all_fires(
        repeat, *local_day("America/New_York", 2026, 11, 1)
    )


def test_lord_howe_half_hour_shift() -> None:
    """Lord Howe shifts by 30 minutes: 02:15 moves to 02:45; the repeated 01:45 fires once."""
    gap = ScheduleSpec(cron="15 2 * * *", tz="Australia/Lord_Howe")
    repeat = ScheduleSpec(cron="45 1 * * *", tz="Australia/Lord_Howe")
    gap_day = local_day("Australia/Lord_Howe", 2026, 10, 4)
    repeat_day = local_day("Australia/Lord_Howe", 2026, 4, 5)
    assert [utc(2026, 10, 3, 15, 45)] == all_fires(gap, *gap_day)
    assert [utc(2026, 4, 4, 14, 45)] == all_fires(repeat, *repeat_day)


def test_every_thirty_seconds_across_spring_forward_keeps_its_pace() -> None:
    """A 6-field 30-second cron fires every 30 s of real time through the skipped hour."""
    spec = ScheduleSpec(cron="*/30 * * * * *", tz="Europe/Amsterdam")
    fires = all_fires(spec, utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))
    assert 240 == len(fires)
    assert {timedelta(seconds=30)} == {later - earlier for earlier, later in pairwise(fires)}


def test_every_thirty_seconds_across_fall_back_pauses_for_the_repeated_hour() -> None:
    """The repeated hour's wall times already fired, so a 30-second cron pauses for an hour."""
    spec = ScheduleSpec(cron="*/30 * * * * *", tz="Europe/Amsterdam")
    fires = all_fires(spec, utc(2026, 10, 24, 23), utc(2026, 10, 25, 2))
    assert 240 == len(fires)
    assert [utc(2026, 10, 25, 0, 59, 30), utc(2026, 10, 25, 2)] == fires[-2:]
    assert utc(2026, 10, 25, 2) == next_fire_after(spec, utc(2026, 10, 25, 1, 30))


# -- intervals, bounds, one-offs -----------------------------------------------------------------


def test_interval_is_anchored_at_the_epoch() -> None:
    """Without a start, interval fires are epoch + k * interval, whenever asked."""
    spec = ScheduleSpec(interval_s=7 * 3600)
    fire = next_fire_after(spec, utc(2026, 1, 1))
    assert fire is not None
    assert timedelta(0) == (fire - EPOCH) % timedelta(hours=7)
    assert fire - timedelta(hours=7) <= utc(2026, 1, 1) < fire


def test_interval_is_anchored_at_start_and_start_fires() -> None:
    """With a start, the start itself is the first fire and the rest follow at the interval."""
    spec = ScheduleSpec(interval_s=60, start=utc(2026, 1, 1, 0, 0, 10))
    expected = [utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 1, 10)]
    assert expected == fire_times(spec, utc(2025, 1, 1), utc(2027, 1, 1), limit=2)


def test_interval_ignores_daylight_saving() -> None:
    """An interval is absolute: an hourly interval keeps 1 h spacing through fall-back."""
    spec = ScheduleSpec(interval_s=3600, tz="Europe/Amsterdam")
    fires = all_fires(spec, utc(2026, 10, 24, 22), utc(2026, 10, 25, 4))
    assert [utc(2026, 10, 24, 23) + timedelta(hours=n) for n in range(6)] == fires


def test_fractional_interval_does_not_drift() -> None:
    """A 1.1 s interval lands exactly on 1100 s after 1000 steps."""
    spec = ScheduleSpec(interval_s=1.1, start=utc(2026, 1, 1))
    fires = fire_times(spec, utc(2026, 1, 1), utc(2026, 1, 2), limit=1000)
    assert utc(2026, 1, 1, 0, 18, 20) == fires[-1]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval_s": 0.000001}, "interval_s"),
        ({"interval_s": 0.999}, "interval_s"),
        ({"cron": "@every 0.5s"}, "cron"),
        ({"cron": "@every 0.01m"}, "cron"),
    ],
)
def test_an_interval_under_one_second_is_refused(fields: dict[str, Any], field: str) -> None:
    """No new schedule fires more often than once a second (six-field cron's finest step):
    a shorter ``interval_s`` or ``@every`` is refused on its field, saying the minimum."""
    loc, message = refusal(**fields)
    assert (field,) == loc
    assert "shorter than the minimum of 1s" in message


def test_an_interval_of_one_second_is_accepted() -> None:
    """One second, as ``interval_s`` or ``@every 1s``, is allowed and fires every second."""
    after, until = utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 3)
    expected = [utc(2026, 1, 1, 0, 0, s) for s in (1, 2, 3)]
    assert expected == all_fires(ScheduleSpec(interval_s=1), after, until)
    assert expected == all_fires(ScheduleSpec(cron="@every 1s"), after, until)


@pytest.mark.parametrize("fields", [{"interval_s": 0.000001}, {"cron": "@every 0.5s"}])
def test_a_stored_sub_second_interval_loads_but_fires_once_a_second(
    fields: dict[str, Any],
) -> None:
    """A schedule stored before the minimum still loads (``STORED``), and fires at most once a
    second: the floor holds in the fire maths too, not only at the door."""
    spec = ScheduleSpec.model_validate(fields, context=STORED)
    fires = all_fires(spec, utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 3))
    assert [utc(2026, 1, 1, 0, 0, s) for s in (1, 2, 3)] == fires


def test_naive_bounds_are_wall_times_in_the_zone() -> None:
    """A naive start is read in ``tz``; a fire exactly at the start counts."""
    spec = ScheduleSpec(cron="0 9 * * *", tz="Europe/Amsterdam", start=datetime(2026, 5, 10, 9))
    assert utc(2026, 5, 10, 7) == next_fire_after(spec, utc(2026, 1, 1))
    assert utc(2026, 5, 10, 7) == first_fire(spec, utc(2026, 1, 1))


def test_end_is_inclusive_and_exhausts_the_schedule() -> None:
    """A fire at ``end`` happens; after it the schedule has no more fires."""
    spec = ScheduleSpec(interval_s=3600, end=utc(2026, 1, 1, 3))
    assert [utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)] == all_fires(
        spec, utc(2026, 1, 1, 1), utc(2026, 1, 2)
    )
    assert None is next_fire_after(spec, utc(2026, 1, 1, 3))


def test_one_off_fires_once() -> None:
    """A one-off fires at ``at`` (naive means in ``tz``) and then never again."""
    spec = ScheduleSpec(at=datetime(2026, 5, 1, 9), tz="Europe/Amsterdam")
    assert utc(2026, 5, 1, 7) == next_fire_after(spec, utc(2026, 4, 1))
    assert [utc(2026, 5, 1, 7)] == all_fires(spec, utc(2026, 4, 1), utc(2026, 6, 1))
    assert None is next_fire_after(spec, utc(2026, 5, 1, 7))


def test_first_fire_of_a_one_off_keeps_a_past_at() -> None:
    """A one-off created a moment late still gets its ``at``; the misfire policy decides."""
    spec = ScheduleSpec(at=utc(2026, 5, 1, 7))
    assert utc(2026, 5, 1, 7) == first_fire(spec, utc(2026, 5, 1, 7, 0, 5))


def test_first_fire_of_a_recurring_schedule_is_strictly_after_now() -> None:
    """A new cron job does not fire for the instant it was created at."""
    spec = ScheduleSpec(cron="0 * * * *")
    assert utc(2026, 1, 1, 1) == first_fire(spec, utc(2026, 1, 1, 0))


def test_stale_one_off_is_refused() -> None:
    """A one-off older than ``max_age`` is refused on ``schedule.at``; a recent one is not."""
    spec = ScheduleSpec(at=utc(2026, 1, 1))
    check_not_stale(spec, utc(2026, 1, 1, 0, 5), timedelta(minutes=10))
    with pytest.raises(InvalidInput) as caught:
        check_not_stale(spec, utc(2026, 1, 1, 1), timedelta(minutes=10))
    assert "schedule.at" == caught.value.field


def test_past_end_is_refused() -> None:
    """A recurring schedule whose end has passed is refused on ``schedule.end``."""
    spec = ScheduleSpec(interval_s=60, end=utc(2026, 1, 1))
    with pytest.raises(InvalidInput) as caught:
        check_not_stale(spec, utc(2026, 1, 2), timedelta(minutes=10))
    assert "schedule.end" == caught.value.field


# -- jitter and descriptions ---------------------------------------------------------------------


def test_jitter_is_deterministic_and_within_range() -> None:
    """The same job and fire always get the same offset, in ``[0, jitter_s)``."""
    fires = [utc(2026, 1, 1) + timedelta(minutes=n) for n in range(500)]
    offsets = [jitter_offset("job-1", fire, 30.0) for fire in fires]
    assert offsets == [jitter_offset("job-1", fire, 30.0) for fire in fires]
    assert all(timedelta(0) <= offset < timedelta(seconds=30) for offset in offsets)
    assert len(set(offsets)) > 450


def test_jitter_depends_on_the_instant_not_its_zone() -> None:
    """The same instant written in another zone gets the same offset; zero jitter is zero."""
    fire = utc(2026, 1, 1, 12)
    local = fire.astimezone(ZoneInfo("Asia/Tokyo"))
    assert jitter_offset("k", fire, 60) == jitter_offset("k", local, 60)
    assert jitter_offset("k", fire, 60) != jitter_offset("other", fire, 60)
    assert timedelta(0) == jitter_offset("k", fire, 0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            ScheduleSpec(cron="0 13 * * *", tz="Europe/Amsterdam"),
            "cron 0 13 * * * (Europe/Amsterdam)",
        ),
        (ScheduleSpec(interval_s=120), "every 120s"),
        (ScheduleSpec(cron="@every 2m"), "every 120s"),
        (ScheduleSpec(interval_s=1.5), "every 1.5s"),
        (
            ScheduleSpec(at=datetime(2026, 5, 1, 9), tz="Europe/Amsterdam"),
            "once at 2026-05-01 09:00:00+02:00 (Europe/Amsterdam)",
        ),
        (
            ScheduleSpec(interval_s=60, start=utc(2026, 1, 1), end=utc(2026, 2, 1)),
            "every 60s from 2026-01-01 00:00:00+00:00 until 2026-02-01 00:00:00+00:00",
        ),
    ],
)
def test_describe_is_short_and_human(spec: ScheduleSpec, expected: str) -> None:
    """Listings show a one-line summary of the schedule."""
    assert expected == describe(spec)


# -- properties ----------------------------------------------------------------------------------

CRONS = [
    "30 2 * * *",
    "*/15 * * * *",
    "0 * * * *",
    "15,45 1-3 * * *",
    "45 */2 * * 1-5",
    "0 0 * * 0",
    "0 */20 1-3 * * *",
]
ZONES = [
    "UTC",
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Kolkata",
]
# Instants near the 2026 daylight-saving changes of the zones above, so spans cross them.
CHANGES = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 4, 14),
    utc(2026, 9, 26, 14),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
]
SPAN = timedelta(days=10)


def seconds_first(cron: str) -> bool:
    return len(cron.split()) == 6


def reference_fires(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    """The documented rule done the slow way: every wall time from days earlier, read with
    fold=0, kept only when later than every fire before it."""
    zone = ZoneInfo(spec.tz)
    assert spec.cron is not None
    origin = (after - timedelta(days=3)).replace(tzinfo=None)
    walls = croniter(spec.cron, origin, second_at_beginning=seconds_first(spec.cron))
    fires: list[datetime] = []
    latest = after - timedelta(days=4)
    while latest <= until:
        wall = walls.get_next(datetime)
        fire = wall.replace(tzinfo=zone).astimezone(UTC)
        if fire > latest:
            latest = fire
            fires.append(fire)
    return [fire for fire in fires if after < fire <= until]


def wall_matches(cron: str, fire: datetime, zone: ZoneInfo) -> bool:
    """The fire's own wall time matches the cron, or it is a gap wall time moved forward."""
    local = fire.astimezone(zone)
    if croniter.match(cron, local.replace(tzinfo=None), second_at_beginning=seconds_first(cron)):
        return fire == local.replace(fold=0).astimezone(UTC)
    offsets = {
        fire.astimezone(zone).utcoffset(),
        (fire - timedelta(days=1)).astimezone(zone).utcoffset(),
    }
    for offset in offsets:
        assert offset is not None
        wall = (fire + offset).replace(tzinfo=None)
        missing = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if wall != missing and croniter.match(cron, wall, second_at_beginning=seconds_first(cron)):
            return True
    return False


@settings(max_examples=60, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    near=st.sampled_from(CHANGES),
    shift_us=st.integers(min_value=-9 * 86_400 * 10**6, max_value=86_400 * 10**6),
)
def test_iterating_equals_listing_and_matches_the_cron(
    cron: str, zone: str, near: datetime, shift_us: int
) -> None:
    """Stepping with next_fire_after gives fire_times' list, strictly increasing, each fire on
    a matching wall time (or a gap time moved forward), and the same as the slow reference."""
    spec = ScheduleSpec(cron=cron, tz=zone)
    start = near + timedelta(microseconds=shift_us)
    listed = all_fires(spec, start, start + SPAN)
    stepped: list[datetime] = []
    cursor = next_fire_after(spec, start)
    while cursor is not None and cursor <= start + SPAN:
        stepped.append(cursor)
        cursor = next_fire_after(spec, cursor)
    assert listed == stepped
    assert sorted(set(listed)) == listed
    assert reference_fires(spec, start, start + SPAN) == listed
    assert [] == [fire for fire in listed if not wall_matches(cron, fire, ZoneInfo(zone))]
