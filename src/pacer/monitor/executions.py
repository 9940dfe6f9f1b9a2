"""Folding the events of one attempt into one execution row, and the duration percentiles.

Pure functions: the store recomputes an attempt's row from all of that attempt's events, in
position order, every time one of them arrives. That makes the row a function of the *set* of
events, so replays, overlapping batches and attempts seen out of order all give the same table.
(An incremental upsert that merges one event into the old row was rejected: with nullable fields
its result depends on arrival order.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pacer.monitor.events import Event

# Kinds that settle how an attempt ended. ``retrying`` is the event of an attempt that failed
# with another attempt to come, so the attempt itself failed.
SETTLING = {"succeeded": "succeeded", "failed": "failed", "retrying": "failed"}
# Kinds that end an attempt unless it already settled: a run cancelled while it waits for its
# next attempt keeps the failure of the attempt it had.
ENDING = {"cancelled": "cancelled", "skipped": "skipped"}


@dataclass(frozen=True)
class Execution:
    """What is known of one attempt of one run."""

    run_id: str
    attempt: int
    query_id: str | None
    job_id: str | None
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None
    status: str | None
    outcome: str | None
    worker: str | None
    error: str | None
    last_kind: str
    last_position: int


def fold(events: Iterable[Event]) -> Execution:
    """The execution an attempt's events describe (all events share run id and attempt)."""
    ordered = sorted(events, key=lambda event: event.position)
    last = ordered[-1]
    ending: Event | None = None
    for event in ordered:
        if event.kind in SETTLING or (event.kind in ENDING and _unsettled(ending)):
            ending = event
    return Execution(
        run_id=last.run_id,
        attempt=last.attempt,
        query_id=_latest(ordered, "query_id"),
        job_id=_latest(ordered, "job_id"),
        scheduled_at=_latest(ordered, "scheduled_at"),
        started_at=_latest(ordered, "started_at"),
        finished_at=ending.finished_at if ending else None,
        duration_ms=ending.duration_ms if ending else None,
        status=last.status,
        outcome=_outcome(ending),
        worker=_latest(ordered, "worker"),
        error=ending.error if ending else None,
        last_kind=last.kind,
        last_position=last.position,
    )


def percentile(sorted_values: Sequence[float], percent: float) -> float | None:
    """Nearest-rank percentile: always a duration that was really observed (None if no data)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _unsettled(ending: Event | None) -> bool:
    return ending is None or ending.kind not in SETTLING


def _outcome(ending: Event | None) -> str | None:
    if ending is None:
        return None
    return SETTLING.get(ending.kind) or ENDING[ending.kind]


def _latest(ordered: Sequence[Event], name: str) -> str | None:
    for event in reversed(ordered):
        value: str | None = getattr(event, name)
        if value is not None:
            return value
    return None
