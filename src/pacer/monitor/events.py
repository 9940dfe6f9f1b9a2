"""The wire shapes of the execution log: events and missed ranges, parsed from JSON.

Parsing is strict about the fields the store keys on (position, run id, attempt, kind) and lenient
about the rest, so a server that adds fields later does not stop the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = frozenset(
    {"queued", "delayed", "started", "succeeded", "failed", "retrying", "cancelled", "skipped"}
)
# The fields of an event after its keys, in the order the store's columns hold them.
DETAIL_FIELDS = (
    "query_id",
    "job_id",
    "status",
    "at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "worker",
    "error",
)


class WireError(ValueError):
    """The server sent something that does not follow the contract."""


@dataclass(frozen=True)
class Event:
    """One state change of one run, at a position of the server's execution log."""

    position: int
    kind: str
    run_id: str
    attempt: int
    query_id: str | None = None
    job_id: str | None = None
    status: str | None = None
    at: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    worker: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Event:
        """Validate one event object from the server."""
        try:
            position, run_id, attempt = data["position"], data["run_id"], data["attempt"]
            kind = data["kind"]
        except (KeyError, TypeError) as exc:
            raise WireError(f"event without {exc}: {data!r}") from exc
        if not isinstance(position, int) or not isinstance(attempt, int):
            raise WireError(f"event position and attempt must be integers: {data!r}")
        duration = data.get("duration_ms")
        return cls(
            position=position,
            kind=str(kind),
            run_id=str(run_id),
            attempt=attempt,
            **{name: _text(data.get(name)) for name in DETAIL_FIELDS if name != "duration_ms"},
            duration_ms=float(duration) if duration is not None else None,
        )

    def details(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in DETAIL_FIELDS)


@dataclass(frozen=True)
class Missed:
    """Events the server pruned before this consumer read them: positions ``start``..``end``."""

    start: int
    end: int
    count: int

    @classmethod
    def from_json(cls, data: Any) -> Missed | None:
        if data is None:
            return None
        try:
            return cls(start=int(data["from"]), end=int(data["to"]), count=int(data["count"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"bad missed range: {data!r}") from exc


@dataclass(frozen=True)
class Page:
    """What one read brought: events in position order, where to carry on, and any gap."""

    events: tuple[Event, ...]
    next_after: int
    missed: Missed | None = None

    @classmethod
    def from_json(cls, data: Any) -> Page:
        try:
            items, next_after = data["items"], int(data["next_after"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"bad events page: {exc}") from exc
        events = tuple(Event.from_json(item) for item in items)
        return cls(events, next_after, Missed.from_json(data.get("missed")))


@dataclass(frozen=True)
class Resources:
    """One window of the server's resource figures, keyed by its timestamp (epoch ms)."""

    timestamp: int
    figures: tuple[float | None, ...]

    @classmethod
    def from_json(cls, data: Any) -> Resources:
        try:
            figures = tuple(
                _number(data[group].get(stat))
                for group in RESOURCE_GROUPS
                for stat in RESOURCE_STATS
            )
            return cls(int(data["timestamp"]), figures)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WireError(f"bad resources window: {data!r}") from exc


RESOURCE_GROUPS = ("cpu", "io", "memory")
RESOURCE_STATS = ("average", "min", "max")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
