"""``create_app``: the ASGI application over a built container."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

import pacer
from pacer.ports import RunStore


def create_app(store: RunStore) -> FastAPI:
    app = FastAPI(title="Pacer", version=pacer.__version__)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness and store reachability: 200 when the store answers a query."""
        due = await store.next_due_at()
        return {"status": "ok", "next_due_at": due.isoformat() if due else None}

    return app
