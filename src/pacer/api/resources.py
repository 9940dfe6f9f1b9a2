"""``GET /resources`` (a contract kept exactly: the last closed window) and its history at
``GET /api/v1/resources?since=``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from pacer.api.app import ApiServices, services
from pacer.api.auth import READ
from pacer.api.queries import QueryInteger
from pacer.domain.errors import NotFound

contract = APIRouter(tags=["resources"])
router = APIRouter(prefix="/resources", tags=["resources"])
Services = Annotated[ApiServices, Depends(services)]
MAX_MS = 2**62


@contract.get("/resources", dependencies=READ)
async def latest(api: Services) -> dict[str, Any]:
    """``{"cpu": {"average","min","max"}, "io": …, "memory": …, "timestamp": <epoch ms>}`` of
    the last closed window; 404 until the first window closes."""
    window = await api.resources.latest()
    if window is None:
        raise NotFound("resource window", "latest")
    return window.to_contract()


@router.get("")
async def history(
    api: Services,
    since: Annotated[
        QueryInteger, Query(ge=0, le=MAX_MS, description="Epoch ms; windows closed after.")
    ] = 0,
    limit: Annotated[QueryInteger, Query(ge=1, le=10_000)] = 1_000,
) -> list[dict[str, Any]]:
    """Closed windows after ``since``, oldest first, each in the ``GET /resources`` shape."""
    return [window.to_contract() for window in await api.resources.since(since, limit)]
