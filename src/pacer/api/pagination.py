"""Keyset pagination: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out; never OFFSET.

A cursor is the sort key of the last item served, as URL-safe base64 of a JSON list. It is
opaque to clients so the key can change without breaking them; a cursor that does not decode
is an ``InvalidInput`` naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from pacer.api.guards import text_problem
from pacer.api.queries import QueryInteger
from pacer.domain.errors import InvalidInput
from pacer.domain.moments import in_range

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[QueryInteger, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 500).")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; absent for the first.")
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode(*keys: str) -> str:
    raw = json.dumps(list(keys), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, size: int) -> list[str]:
    """The keys of a cursor this API issued, or ``InvalidInput`` naming ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        keys = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        keys = None
    if not (isinstance(keys, list) and len(keys) == size and all(map(_plain_text, keys))):
        raise InvalidInput("cursor", "not a cursor issued by this API")
    return keys


def _plain_text(key: object) -> bool:
    """A key this API could have issued: text the stores can compare (no NUL, which
    PostgreSQL refuses as a 500, nor a lone surrogate)."""
    return isinstance(key, str) and text_problem(key) is None


def encode_time_key(at: datetime, key: str) -> str:
    return encode(at.isoformat(), key)


def decode_time_key(cursor: str | None) -> tuple[datetime, str] | None:
    """``(created_at, id)`` of the last run served, for ``RunStore.list_runs(after=...)``."""
    if cursor is None:
        return None
    at, key = decode(cursor, 2)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor issued by this API") from None
    if moment.tzinfo is None:
        raise InvalidInput("cursor", "not a cursor issued by this API")
    try:
        in_range(moment)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor issued by this API") from None
    return moment, key


def split(fetched: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """Callers fetch ``limit + 1``: the extra item only says whether a next page exists."""
    return list(fetched[:limit]), len(fetched) > limit
