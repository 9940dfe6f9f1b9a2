"""The instants Pacer accepts from outside: a bounded range, so that no input can overflow.

Python's ``datetime`` ends at 9999-12-31 and starts at 0001-01-01. An input near either end
was accepted and then overflowed later, as a 500, in a place far from the field that caused
it: converting ``9999-12-31T23:59:59-05:00`` to UTC, adding a delay to a run due then, walking
a cron from a start in 9999. PostgreSQL would store such a time but could not hand it back.
Bounding every accepted instant a year inside Python's range leaves room for any UTC offset
(a day at most), a delay and a last fire, and turns each of those into a 422 naming the field.

*Rejected:* catching ``OverflowError`` where it happens: it happens in many places (time zone
conversions in the schedules, the stores, the pagination), each would need its own catch, and
one missed is a 500; an instant refused at the door cannot reach any of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

#: The first and last instants accepted: a year inside ``datetime.min`` and ``datetime.max``.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
RANGE_TEXT = f"must lie between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"


def in_range(value: datetime, zone: tzinfo | None = None) -> datetime:
    """``value`` as a UTC instant (a naive one read as a wall time in ``zone``, else UTC), or
    ValueError saying the accepted range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or UTC)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(RANGE_TEXT) from None
    if not EARLIEST <= instant <= LATEST:
        raise ValueError(RANGE_TEXT)
    return instant


def later(instant: datetime, delay: timedelta) -> datetime:
    """``instant`` moved later by ``delay``, or ValueError if that passes ``LATEST``."""
    if delay > LATEST - instant:
        raise ValueError(f"would move the time past {LATEST.date().isoformat()} (UTC)")
    return instant + delay


def accepted(value: datetime) -> datetime:
    """A pydantic ``AfterValidator`` for aware inputs: ``value`` unchanged if in range."""
    in_range(value)
    return value
