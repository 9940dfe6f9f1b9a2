"""``create_app``: the ASGI application over the services it is given.

The API may import only the domain, the ports and the services (import-linter), so it gets
its collaborators as an ``ApiServices`` value built by the caller, never from bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import pacer
from pacer.api import errors
from pacer.api.schemas import FieldError
from pacer.ports import ActionCatalog, Clock, RunStore, SchemaCatalog
from pacer.services.events import EventService
from pacer.services.jobs import JobService
from pacer.services.resources import ResourceService
from pacer.services.results import ResultService
from pacer.services.tasks import TaskService
from pacer.services.tokens import TokenService

#: Request bodies larger than this are refused with 413 (a job spec is a few KiB).
MAX_BODY_BYTES = 1024 * 1024


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


class BodyLimit:
    """Refuses bodies over ``limit`` bytes: at once by ``Content-Length``, else (chunked
    uploads, a lying header) as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.limit:
            response = errors.problem(413, self._detail(), instance=scope.get("path"))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _declared(self, scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise StarletteHTTPException(413, self._detail())
            return message

        return counted

    def _detail(self) -> str:
        return f"the request body is larger than {self.limit} bytes"


class NulGuard:
    """Refuses NUL characters anywhere in a request (path, query, JSON body) with a 422.

    PostgreSQL cannot store NUL in text or JSONB, so such a value would fail deep in the
    store as a 500; refusing it at the door keeps the two backends alike and the error clear.
    A JSON body is scanned for the ``\\u0000`` escape as it streams in (raw NUL bytes are
    not valid JSON and fail parsing anyway).
    """

    _ESCAPE = b"\\u0000"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = self._in_url(scope)
        if where is not None:
            response = errors.problem(
                422,
                f"{where}: contains a NUL character",
                [FieldError(field=where, reason="contains a NUL character")],
                instance=scope.get("path"),
            )
            await response(scope, receive, send)
            return
        await self.app(scope, self._scanning(receive), send)

    @staticmethod
    def _in_url(scope: Scope) -> str | None:
        if "\x00" in scope.get("path", ""):
            return "path"
        query: bytes = scope.get("query_string", b"")
        return "query" if b"%00" in query.lower() or b"\x00" in query else None

    def _scanning(self, receive: Receive) -> Receive:
        tail = b""

        async def scanned() -> Message:
            nonlocal tail
            message = await receive()
            window = tail + message.get("body", b"")
            if self._ESCAPE in window.lower():
                raise RequestValidationError(
                    [{"type": "nul", "loc": ("body",), "msg": "contains a NUL character"}]
                )
            tail = window[-(len(self._ESCAPE) - 1) :]
            return message

        return scanned


def create_app(api: ApiServices) -> FastAPI:
    # Imported here: the routers import ``ApiServices`` and ``services`` from this module.
    from pacer.api import events, jobs, queue, resources, results, runs, targets, tasks
    from pacer.api.auth import READ

    app = FastAPI(title="Pacer", version=pacer.__version__)
    app.state.services = api
    errors.install(app)
    app.add_middleware(NulGuard)
    app.add_middleware(BodyLimit)
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
