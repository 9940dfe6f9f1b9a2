"""Schedules: cron, interval and one-off, in an IANA time zone, and the fire times they give.

Everything here is pure: the current time is always an argument, and every instant taken or
returned is a timezone-aware UTC ``datetime`` (naive ``at``/``start``/``end`` in a spec are wall
times in its ``tz``).

Semantics (these go into the user docs):

- **cron** (5 fields; 6 fields with *seconds first*, as in Quartz and APScheduler; the macros
  ``@yearly @annually @monthly @weekly @daily @midnight @hourly``) is evaluated in the wall-clock
  time of ``tz``, then converted to UTC.
- **Daylight saving.** A wall time that does not exist (the spring-forward gap, e.g. 02:30 on
  2026-03-29 in Europe/Amsterdam) fires once, moved forward by the gap (03:30 CEST). A wall time
  that occurs twice (fall-back) fires once, at its first occurrence. Both are Python's
  ``fold=0`` reading of a wall time. Fire times are strictly increasing: wall times that land on
  the same or an earlier instant than a fire already made collapse into it, so an hourly
  ``30 * * * *`` fires 23 times on a spring-forward day and 24 times on a fall-back day, and a
  job running more often than hourly pauses during the repeated hour. Use ``tz="UTC"`` or an
  interval when that matters.
- **Intervals** (``interval_s``, or ``cron="@every 1h30m"`` with units d, h, m, s) are absolute
  durations, blind to daylight saving, anchored at ``start`` if given, else at the Unix epoch:
  the fires are ``anchor + k * interval``, the same after any restart. An interval is at
  least one second (``MIN_INTERVAL``), cron's finest step.
- **One-off** (``at``): the single fire is ``at``. It takes no ``start`` or ``end``.
- ``start`` and ``end`` bound recurring schedules, both inclusive.
- ``jitter_s`` delays each run by a stable pseudo-random amount; the fire keeps its nominal time
  as its identity.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pacer.domain.errors import InvalidInput
from pacer.domain.fields import Instant, Number
from pacer.domain.moments import in_range
from pacer.domain.validation import is_stored

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest interval (``interval_s``, ``@every``): one second, the finest step of cron
#: (six fields). A write token could otherwise ask for a microsecond and fill the store with
#: runs (26,000 in five seconds, found by a probe).
MIN_INTERVAL = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_EVERY = re.compile(r"@every\s+(\S+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Hashed (H) and random (R) fields need a seed croniter would pick per process: fire times
# would then differ between schedulers and across restarts.
_UNSTABLE_FIELD = re.compile(r"(?<![a-z])[hr](?![a-z])")


@dataclass(frozen=True)
class _Cron:
    expression: str
    seconds_first: bool


class ScheduleSpec(BaseModel):
    """Exactly one of ``cron``, ``interval_s`` or ``at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = None
    # The minimum is checked below (stored schedules are exempt); the schema advertises it.
    interval_s: Number | None = Field(
        default=None, gt=0, json_schema_extra={"minimum": MIN_INTERVAL.total_seconds()}
    )
    # ``tz`` before the times: their validators read it.
    tz: str = "UTC"
    at: Instant | None = None
    start: Instant | None = None
    end: Instant | None = None
    jitter_s: Number = Field(default=0.0, ge=0, le=86_400)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        parsed = _parse_cron(value.strip())
        if isinstance(parsed, timedelta) and not is_stored(info):
            _check_minimum(parsed, f"the interval of {value.strip()!r}")
        return value.strip()

    @field_validator("interval_s")
    @classmethod
    def _representable_interval(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Fire times are microsecond instants, so a shorter step would never move; and no
        new schedule may fire more often than once a second."""
        if value is not None:
            step = _as_step(value, f"interval_s {value}")
            if not is_stored(info):
                _check_minimum(step, f"interval_s {value}")
        return value

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("at", "start", "end")
    @classmethod
    def _in_range(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """Within the instants Pacer accepts (``domain/moments.py``), read in ``tz``; an
        unknown ``tz`` is its own error, so these are checked as UTC then."""
        if value is not None:
            tz = info.data.get("tz")
            in_range(value, ZoneInfo(tz) if tz is not None else UTC)
        return value

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start, tz = info.data.get("start"), info.data.get("tz")
        if value is None or start is None or tz is None:
            return value
        if _as_utc(value, ZoneInfo(tz)) <= _as_utc(start, ZoneInfo(tz)):
            raise ValueError(f"end {value.isoformat()} must be after start {start.isoformat()}")
        return value

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> ScheduleSpec:
        given = [name for name in ("cron", "interval_s", "at") if getattr(self, name) is not None]
        if len(given) != 1:
            found = " and ".join(given) or "none"
            raise ValueError(f"give exactly one of cron, interval_s or at (got {found})")
        if self.at is not None and (self.start is not None or self.end is not None):
            raise ValueError("a one-off schedule (at) takes no start or end")
        return self


def next_fire_after(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first fire strictly after ``after``; None once the schedule is exhausted."""
    return next(_fires(spec, after), None)


def fire_times(spec: ScheduleSpec, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Fires in ``(after, until]``, ascending, at most ``limit`` of them."""
    return list(islice(_takewhile_le(_fires(spec, after), until), max(limit, 0)))


def first_fire(spec: ScheduleSpec, now: datetime) -> datetime | None:
    """The first fire of a job created or enabled at ``now``.

    A one-off keeps its ``at`` even when that is a moment ago: whether a late fire still runs is
    the misfire policy's call, not something to decide silently here.
    """
    if spec.at is not None:
        return _as_utc(spec.at, _zone(spec))
    return next_fire_after(spec, now)


def jitter_offset(key: str, fire_time: datetime, jitter_s: float) -> timedelta:
    """A stable offset in ``[0, jitter_s)`` for one fire of one job.

    Derived from a hash rather than a random generator so that every scheduler, before and after
    a restart, delays the same fire by the same amount.
    """
    span_us = int(jitter_s * 1_000_000)
    seed = f"{key}|{fire_time.astimezone(UTC).isoformat()}".encode()
    draw = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    return timedelta(microseconds=(draw * span_us) >> 64)


def check_not_stale(spec: ScheduleSpec, now: datetime, max_age: timedelta) -> None:
    """Refuse a schedule that can no longer fire as meant, rather than accept a job that
    silently never runs (or runs a one-off long after anyone wanted it)."""
    zone = _zone(spec)
    if spec.at is not None and _as_utc(spec.at, zone) < now - max_age:
        age = now - _as_utc(spec.at, zone)
        raise InvalidInput("schedule.at", f"{spec.at.isoformat()} is {age} ago (limit {max_age})")
    if spec.end is not None and _as_utc(spec.end, zone) < now:
        raise InvalidInput("schedule.end", f"{spec.end.isoformat()} is already in the past")


def describe(spec: ScheduleSpec) -> str:
    """One line for listings, so a user recognises the schedule without reading its JSON."""
    step = _interval(spec)
    if spec.at is not None:
        text = f"once at {_local_text(spec, spec.at)} ({spec.tz})"
    elif step is not None:
        text = f"every {_seconds_text(step)}"
    else:
        text = f"cron {spec.cron} ({spec.tz})"
    if spec.start is not None:
        text += f" from {_local_text(spec, spec.start)}"
    if spec.end is not None:
        text += f" until {_local_text(spec, spec.end)}"
    return text


# -- fire iteration -------------------------------------------------------------------------------


def _fires(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """Every fire strictly after ``after``, ascending, within ``start`` and ``end``."""
    zone = _zone(spec)
    if spec.at is not None:
        at = _as_utc(spec.at, zone)
        return iter([at] if at > after else [])
    if spec.start is not None:
        after = max(after, _as_utc(spec.start, zone) - _MICROSECOND)
    unbounded = _recurring(spec, zone, after)
    if spec.end is None:
        return unbounded
    return _takewhile_le(unbounded, _as_utc(spec.end, zone))


def _recurring(spec: ScheduleSpec, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    step = _interval(spec)
    if step is not None:
        anchor = EPOCH if spec.start is None else _as_utc(spec.start, zone)
        return _interval_fires(anchor, step, after)
    assert spec.cron is not None  # the model guarantees exactly one kind
    cron = _parse_cron(spec.cron)
    assert isinstance(cron, _Cron)
    return _cron_fires(cron, zone, after)


def _interval_fires(anchor: datetime, step: timedelta, after: datetime) -> Iterator[datetime]:
    """``anchor + k * step`` in whole microseconds: floats would drift over millions of steps."""
    step_us = step // _MICROSECOND
    k = (after - anchor) // _MICROSECOND // step_us + 1
    while True:
        try:
            yield anchor + timedelta(microseconds=k * step_us)
        except OverflowError:  # past datetime.max: the schedule is over
            return
        k += 1


def _cron_fires(cron: _Cron, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Walk croniter over naive wall times and convert each with zoneinfo ourselves.

    croniter's own time zone handling has known daylight-saving bugs; on naive datetimes it does
    plain calendar arithmetic, which is exactly the wall clock. Wall times that map to an
    instant no later than the last fire (the gap, or ``after`` itself) are dropped.
    """
    start_wall = _earliest_wall(after, zone) - timedelta(seconds=1)
    walls = croniter(
        cron.expression, start_wall, ret_type=datetime, second_at_beginning=cron.seconds_first
    )
    latest = after
    while (wall := _next_wall(walls)) is not None:
        fire = wall.replace(tzinfo=zone).astimezone(UTC)
        if fire > latest:
            latest = fire
            yield fire


def _next_wall(walls: croniter) -> datetime | None:
    try:
        wall: datetime = walls.get_next(datetime)
    except CroniterBadDateError:  # no match within croniter's search horizon: exhausted
        return None
    except ValueError:  # the next match is past datetime.max (year 9999): exhausted too
        return None
    return wall


def _earliest_wall(after: datetime, zone: ZoneInfo) -> datetime:
    """A wall time before every wall time that could fire after ``after``.

    Just after a spring-forward, wall times in the gap (read with the offset from before the
    change) map to instants after ``after`` although they precede its wall time, so the walk
    starts from the earlier offset; a change is assumed to happen at most once a day.
    """
    offset = _offset(zone, after)
    gap = offset - _offset(zone, after - _DAY)
    if gap > timedelta(0):
        offset = min(offset, _offset(zone, after - gap))
    return (after.astimezone(UTC) + offset).replace(tzinfo=None)


def _takewhile_le(fires: Iterator[datetime], limit: datetime) -> Iterator[datetime]:
    for fire in fires:
        if fire > limit:
            return
        yield fire


# -- parsing and conversion -----------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parse_cron(text: str) -> _Cron | timedelta:
    """A cron expression, or the interval of an ``@every``; ValueError says what is wrong."""
    every = _EVERY.fullmatch(text)
    if every is not None:
        return parse_duration(every.group(1), f"invalid cron expression {text!r}: ")
    if text.lower().startswith("@every"):
        raise ValueError(f"invalid cron expression {text!r}: expected '@every <duration>'")
    if text.startswith("@") and text.lower() not in _MACROS:
        raise ValueError(f"invalid cron expression {text!r}: known macros are {', '.join(_MACROS)}")
    return _check_cron(text)


def parse_duration(duration: str, context: str = "") -> timedelta:
    """A duration like ``1h30m`` (units d, h, m, s), as ``@every`` takes it; the ValueError
    starts with ``context``."""
    parts = _DURATION_PART.findall(duration.lower())
    if not parts or "".join(number + unit for number, unit in parts) != duration.lower():
        raise ValueError(f"{context}duration {duration!r} is not like 1h30m (units d, h, m, s)")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    return _as_step(seconds, f"{context}the interval" if context else "the duration")


def _as_step(seconds: float, what: str) -> timedelta:
    try:
        step = timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{what} is too long") from None
    if step < _MICROSECOND:
        raise ValueError(f"{what} is shorter than one microsecond")
    return step


def _check_minimum(step: timedelta, what: str) -> None:
    if step < MIN_INTERVAL:
        raise ValueError(
            f"{what} is shorter than the minimum of {_seconds_text(MIN_INTERVAL)}"
            " (a schedule fires at most once a second, like six-field cron)"
        )


def _check_cron(text: str) -> _Cron:
    fields = len(text.split()) if not text.startswith("@") else 5
    if fields not in (5, 6):
        raise ValueError(
            f"invalid cron expression {text!r}: expected 5 fields (minute hour day month"
            f" weekday) or 6 with seconds first, got {fields}"
        )
    if _UNSTABLE_FIELD.search(text.lower()):
        raise ValueError(f"invalid cron expression {text!r}: H and R fields are not supported")
    cron = _Cron(text, seconds_first=fields == 6)
    try:
        croniter(text, datetime(2000, 1, 1), second_at_beginning=cron.seconds_first).get_next()
    except CroniterBadDateError:
        raise ValueError(f"invalid cron expression {text!r}: it matches no date") from None
    except (CroniterError, ValueError) as error:
        raise ValueError(f"invalid cron expression {text!r}: {error}") from None
    return cron


def _interval(spec: ScheduleSpec) -> timedelta | None:
    """The step of an interval schedule, never under ``MIN_INTERVAL``: a job stored before
    the minimum existed loads (``STORED``) but fires at most once a second."""
    step: timedelta | None = None
    if spec.interval_s is not None:
        step = timedelta(seconds=spec.interval_s)
    elif spec.cron is not None:
        parsed = _parse_cron(spec.cron)
        step = parsed if isinstance(parsed, timedelta) else None
    return None if step is None else max(step, MIN_INTERVAL)


def _zone(spec: ScheduleSpec) -> ZoneInfo:
    return ZoneInfo(spec.tz)


def _as_utc(value: datetime, zone: ZoneInfo) -> datetime:
    """Naive means a wall time in ``zone``, read with ``fold=0`` like cron fires."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _local_text(spec: ScheduleSpec, value: datetime) -> str:
    zone = _zone(spec)
    return _as_utc(value, zone).astimezone(zone).isoformat(sep=" ")


def _seconds_text(step: timedelta) -> str:
    seconds = step.total_seconds()
    return f"{int(seconds)}s" if seconds.is_integer() else f"{seconds}s"
