"""Schedules: cron, interval and one-off, in an IANA time zone. (Being completed: fire times.)"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ScheduleSpec(BaseModel):
    """Exactly one of ``cron``, ``interval_s`` or ``at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = None
    interval_s: float | None = Field(default=None, gt=0)
    at: datetime | None = None
    tz: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    jitter_s: float = Field(default=0.0, ge=0, le=86_400)
