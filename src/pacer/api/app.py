"""``create_app``: the ASGI application over the services it is given.

The API may import only the domain, the ports and the services (import-linter), so it gets
its collaborators as an ``ApiServices`` value built by the caller, never from bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

import pacer
from pacer.api import errors
from pacer.api.guards import RequestGuard
from pacer.ports import ActionCatalog, Clock, RunStore, SchemaCatalog
from pacer.services.events import EventService
from pacer.services.jobs import JobService
from pacer.services.resources import ResourceService
from pacer.services.results import ResultService
from pacer.services.tasks import TaskService
from pacer.services.tokens import TokenService


@dataclass(frozen=True)
class ApiLimits:
    """Bounds the API enforces that come from configuration."""

    #: The longest ``POST /delay`` accepted, in milliseconds.
    max_delay_ms: float = 3_600_000.0
    #: Seconds between SSE keepalive comments.
    sse_keepalive_s: float = 10.0


@dataclass(frozen=True)
class ApiServices:
    """What the routers need; built from the container by ``pacer.cli``."""

    store: RunStore
    jobs: JobService
    tasks: TaskService
    actions: ActionCatalog
    clock: Clock
    tokens: TokenService
    results: ResultService
    catalog: SchemaCatalog
    events: EventService
    resources: ResourceService
    limits: ApiLimits = field(default_factory=lambda: ApiLimits())


def services(request: Request) -> ApiServices:
    """FastAPI dependency: the ``ApiServices`` this app was created with."""
    found: ApiServices = request.app.state.services
    return found


def create_app(api: ApiServices) -> FastAPI:
    # Imported here: the routers import ``ApiServices`` and ``services`` from this module.
    from pacer.api import events, jobs, queue, resources, results, runs, targets, tasks
    from pacer.api.auth import READ

    app = FastAPI(title="Pacer", version=pacer.__version__)
    app.state.services = api
    errors.install(app)
    app.add_middleware(RequestGuard)
    for module in (jobs, runs, tasks, results, targets, events, resources):
        app.include_router(
            module.router,
            prefix="/api/v1",
            responses=errors.PROBLEM_RESPONSES,
            dependencies=READ,
        )
    app.include_router(results.contract, responses=errors.PROBLEM_RESPONSES)
    app.include_router(queue.router, responses=errors.PROBLEM_RESPONSES)
    app.include_router(resources.contract, responses=errors.PROBLEM_RESPONSES)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness and store reachability: 200 when the store answers a query."""
        due = await api.store.next_due_at()
        return {"status": "ok", "next_due_at": due.isoformat() if due else None}

    return app
