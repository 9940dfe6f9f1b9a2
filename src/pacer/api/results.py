"""The results receiver. ``POST /result`` and ``GET /result`` are a contract existing clients
use, kept exactly: any JSON body is stored and answered 201; the GET returns every stored body,
oldest first, as a bare list. ``/api/v1/results`` is the paged, authenticated view with ids
and arrival times.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import AwareDatetime, BaseModel

from pacer.api.app import ApiServices, services
from pacer.api.auth import READ
from pacer.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode, encode, split
from pacer.domain.errors import InvalidInput

contract = APIRouter(tags=["results"])
router = APIRouter(prefix="/results", tags=["results"], dependencies=READ)
Services = Annotated[ApiServices, Depends(services)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="A retried delivery with the same key is stored once.",
    ),
]


class ResultOut(BaseModel):
    id: int
    received_at: AwareDatetime
    body: Any


@contract.post(
    "/result",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {}}},
        }
    },
)
async def post_result(
    request: Request, api: Services, response: Response, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Store any JSON body; 201 with its id (also for a repeated ``Idempotency-Key``)."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("body", f"not JSON: {exc}") from None
    stored, _ = await api.results.receive(body, idempotency_key)
    response.headers["Location"] = f"/api/v1/results/{stored.id}"
    return {"id": stored.id}


@contract.get("/result")
async def get_results(api: Services) -> list[Any]:
    """Every stored result body, oldest first."""
    return [stored.body for stored in await api.results.all()]


@router.get("")
async def list_results(
    api: Services, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[ResultOut]:
    """Stored results with their ids and arrival times, oldest first."""
    after = _after(cursor)
    fetched = await api.results.page(limit + 1, after)
    page, more = split(fetched, limit)
    items = [ResultOut(id=r.id, received_at=r.received_at, body=r.body) for r in page]
    return Page[ResultOut](items=items, next_cursor=encode(str(page[-1].id)) if more else None)


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    key = decode(cursor, 1)[0]
    if not (key.isascii() and key.isdigit() and len(key) <= 18):
        raise InvalidInput("cursor", "not a cursor issued by this API")
    return int(key)
