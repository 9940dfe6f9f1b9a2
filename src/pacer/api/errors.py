"""Every error the API sends is RFC 9457 problem+json; this is the one place that maps them.

Domain errors map by type (``InvalidInput`` 422, ``NotFound`` 404, ``Conflict`` 409); request
validation lists each field; Starlette's own 404/405 and our 413 become problems too; anything
unexpected is a bare 500 that shows no internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pacer.api.schemas import FieldError, Problem
from pacer.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PacerError,
    Unauthorized,
)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
_TYPES = {
    422: "urn:pacer:problem:invalid-input",
    404: "urn:pacer:problem:not-found",
    409: "urn:pacer:problem:conflict",
    401: "urn:pacer:problem:unauthorized",
    403: "urn:pacer:problem:forbidden",
}

#: Discriminator tags of ``ActionSpec``, which pydantic puts into error locations.
_KINDS = frozenset(("sql", "http", "python", "metric", "sim"))

#: For the OpenAPI schema: the problems any resource route may answer.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {MEDIA_TYPE: {}},
        "description": HTTPStatus(status).phrase,
    }
    for status in (401, 403, 404, 409, 413, 422)
}


def problem(
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=_TYPES.get(status, "about:blank"),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors),
    )
    content = body.model_dump(mode="json", exclude_none=True)
    return JSONResponse(
        content, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {})
    )


def _status_of(exc: PacerError) -> int:
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    return 400


async def _pacer_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PacerError)
    errors = []
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidInput | Conflict):
        errors = [FieldError(field=exc.field, reason=exc.reason)]
    elif isinstance(exc, NotFound):
        errors = [FieldError(field=exc.kind, reason=f"no {exc.kind} {exc.key!r}")]
    elif isinstance(exc, Unauthorized | Forbidden):
        errors = [FieldError(field="Authorization", reason=str(exc))]
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="pacer"'
    status = _status_of(exc)
    return problem(status, str(exc), errors, instance=request.url.path, headers=headers)


def _field(loc: Sequence[int | str]) -> str:
    """``("body", "action", "sql", "target")`` is ``action.target``: the location without its
    source, and without the tag pydantic inserts after a discriminated union (the action kind)."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    parts = [p for i, p in enumerate(parts) if not (i and parts[i - 1] == "action" and p in _KINDS)]
    return ".".join(str(part) for part in parts) or str(loc[0] if loc else "body")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field="body" if e["type"] == "json_invalid" else _field(e["loc"]), reason=e["msg"]
        )
        for e in exc.errors()
    ]
    detail = f"{len(errors)} invalid field(s): " + ", ".join(e.field for e in errors)
    return problem(422, detail, errors, instance=request.url.path)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): the same 422
        # naming ``body`` as JSON that does not parse, so clients handle one status.
        reason = "not valid JSON (or not UTF-8)"
        field = [FieldError(field="body", reason=reason)]
        return problem(422, f"body: {reason}", field, instance=request.url.path)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    errors: list[FieldError] = []
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route for {request.url.path}"
        errors = [FieldError(field="path", reason=detail)]
    elif exc.status_code == 405:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
        reason = f"{request.method} is not allowed here" + (
            f" (allowed: {allowed})" if allowed else ""
        )
        errors = [FieldError(field="method", reason=reason)]
    return problem(exc.status_code, detail, errors, instance=request.url.path, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(PacerError, _pacer_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
