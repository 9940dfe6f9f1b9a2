"""What happens after an attempt: success, a retry with backoff, or a final failure."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from pacer.domain.models import Completion, RetryPolicy, Run, RunStatus


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> timedelta:
    """Exponential backoff with "full jitter" (AWS Architecture Blog's recommendation).

    Full jitter spreads a burst of failures over the whole window instead of re-synchronising
    them at ``base * factor**n``; plain exponential backoff was rejected for that reason.
    """
    ceiling = min(policy.max_backoff_s, policy.backoff_s * policy.factor ** max(attempt - 1, 0))
    seconds = rng.uniform(0, ceiling) if policy.jitter else ceiling
    return timedelta(seconds=seconds)


def succeeded(run: Run, now: datetime, result: Any) -> Completion:
    return Completion(run.id, run.attempt, RunStatus.SUCCEEDED, now, result=result)


def failed(
    run: Run, now: datetime, error: str, *, retryable: bool, rng: random.Random, result: Any = None
) -> Completion:
    """A failed attempt becomes ``retrying`` while attempts remain, else ``dead``;
    a non-retryable failure is ``failed`` at once."""
    if not retryable:
        return Completion(run.id, run.attempt, RunStatus.FAILED, now, result=result, error=error)
    if run.attempt >= run.max_attempts:
        return Completion(run.id, run.attempt, RunStatus.DEAD, now, result=result, error=error)
    policy = RetryPolicy.model_validate(run.retry) if run.retry else RetryPolicy()
    retry_at = now + backoff(policy, run.attempt, rng)
    return Completion(
        run.id, run.attempt, RunStatus.RETRYING, now, result=result, error=error, retry_at=retry_at
    )
