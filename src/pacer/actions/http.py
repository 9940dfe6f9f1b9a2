"""The ``http`` action: POST JSON to a URL, and the poster that ``sql`` sinks share.

Every attempt of one run sends the same ``Idempotency-Key`` (and Standard Webhooks
``webhook-id``), so a receiver can drop the duplicate that a retry after a lost answer causes.
That is how at-least-once execution becomes effectively-once delivery.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import work_id
from pacer.domain.models import HttpAction
from pacer.ports import RunContext

__all__ = ["HttpActionRunner", "HttpPoster", "check_url", "response_body"]

_BODY_LIMIT = 10_240
_EXCERPT = 200
#: Worth another attempt: the server asked us to wait (429), gave up waiting (408) or failed.
_RETRYABLE_STATUSES = frozenset({408, 429})


def _user_agent() -> str:
    try:
        return f"pacer/{importlib.metadata.version('pacer')}"
    except importlib.metadata.PackageNotFoundError:
        return "pacer/0.1"


def check_url(url: str, field: str, *, allow_path: bool = False) -> None:
    """Refuse anything but an absolute http(s) URL before a job is stored, not at 3 a.m.

    Sinks (``allow_path``) may also name a path of this server's own API (``/result``),
    resolved against its base URL when the run posts; ``//host`` is a URL, not a path.
    """
    if allow_path and url.startswith("/") and not url.startswith("//"):
        return
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(field, f"{url!r} is not an http(s) URL with a host")


class HttpPoster:
    """POSTs JSON with idempotency headers and turns each failure into a classified
    ``ActionFailed``; one pooled client serves every request of the process."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._user_agent = _user_agent()

    async def post(
        self,
        url: str,
        payload: Any,
        *,
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
    ) -> httpx.Response:
        """The 2xx response, or ``ActionFailed`` saying whether a retry may help."""
        request_headers = self._headers(idempotency_key, headers or {})
        host = _host(url)
        try:
            response = await self._get_client().post(
                url, json=payload, headers=request_headers, timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            message = f"POST to {host} timed out after {timeout_s:g}s"
            raise ActionFailed(message, retryable=True) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ActionFailed(f"POST to {host}: {exc}", retryable=False) from exc
        except httpx.TransportError as exc:
            message = f"POST to {host} failed: {type(exc).__name__}: {exc}"
            raise ActionFailed(message, retryable=True) from exc
        _raise_for_status(response, host)
        return response

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def _headers(self, idempotency_key: str, extra: Mapping[str, str]) -> httpx.Headers:
        headers = httpx.Headers(
            {"Content-Type": "application/json", "User-Agent": self._user_agent}
        )
        headers.update(extra)
        # Set last: a job's own headers must not break deduplication at the receiver.
        headers["Idempotency-Key"] = idempotency_key
        headers["webhook-id"] = idempotency_key
        headers["webhook-timestamp"] = str(int(time.time()))
        return headers


def _host(url: str) -> str:
    """Messages name the host only: a webhook's path or query often is its secret."""
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


def _raise_for_status(response: httpx.Response, host: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    excerpt = " ".join(response.text[:_EXCERPT].split())
    message = f"POST to {host} answered {status}: {excerpt}".rstrip(": ")
    raise ActionFailed(message, retryable=retryable, result={"status": status, "body": excerpt})


def response_body(response: httpx.Response) -> Any:
    """The parsed JSON body, else the text, cut at 10 KB so results stay small."""
    if len(response.content) <= _BODY_LIMIT:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return response.text[:_BODY_LIMIT]


class HttpActionRunner:
    """Executes ``http`` actions: one POST of the action's payload per attempt."""

    kind = "http"

    def __init__(self, poster: HttpPoster | None = None) -> None:
        self.poster = poster or HttpPoster()

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = HttpAction.model_validate(spec)
        check_url(action.url, "action.url")

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        """Executions of one http url group together, as one statement's do."""
        target = spec.get("url")
        return work_id("http", target) if isinstance(target, str) else None

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any:
        action = HttpAction.model_validate(spec)
        response = await self.poster.post(
            action.url,
            action.payload if action.payload is not None else {},
            idempotency_key=ctx.idempotency_key,
            headers=action.headers,
            timeout_s=action.timeout_s,
        )
        return {"status": response.status_code, "body": response_body(response)}

    async def aclose(self) -> None:
        await self.poster.aclose()
