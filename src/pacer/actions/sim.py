"""The ``sim`` action: run one query of the simulated database's scenario, in real time.

The query's duration is drawn from its type's distribution; while it runs, the simulated
database counts its hidden true costs. ``query_id`` is the query type's id, so the monitor,
the estimator and the pacer see the same ids the scenario defines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.models import SimAction
from pacer.ports import RunContext
from pacer.sim.live import LiveSim

__all__ = ["SimActionRunner"]


class SimActionRunner:
    kind = "sim"

    def __init__(self, live: LiveSim | None) -> None:
        self.live = live

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = SimAction.model_validate(spec)
        if self.live is None:
            reason = "no simulated database here (set PACER_RESOURCE_SAMPLER=sim)"
            raise InvalidInput("action.kind", reason)
        try:
            self.live.query(action.query)
        except KeyError:
            known = ", ".join(q.query_id for q in self.live.scenario.queries)
            raise InvalidInput("action.query", f"unknown query; known: {known}") from None

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        query = spec.get("query")
        return query if isinstance(query, str) else None

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any:
        if self.live is None:
            raise ActionFailed("no simulated database here", retryable=False)
        try:
            query = self.live.query(str(spec.get("query")))
        except KeyError:
            raise ActionFailed(
                f"unknown sim query {spec.get('query')!r}", retryable=False
            ) from None
        duration = self.live.duration(query)
        start = time.time()
        self.live.started(query, start, start + duration)
        await asyncio.sleep(duration)
        return {"query": query.query_id, "duration_s": duration}

    async def aclose(self) -> None:
        return None
