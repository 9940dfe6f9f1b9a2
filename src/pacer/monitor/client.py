"""The server's execution-log API over HTTP: the only way the monitor talks to Pacer.

Every failure is sorted into two kinds: ``TransientError`` (connection refused or reset, a read
timeout from a stall, 5xx, a garbled body: reconnect after a backoff) and ``FatalError`` (401 or
403: the token is wrong and retrying cannot fix it). Read timeouts are what turn a stalled
server into an error: the long poll allows its ``wait`` plus a margin, the stream twice the
keepalive interval, since the server writes at least a comment that often.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from pacer.monitor.events import Missed, Page, Resources, WireError
from pacer.monitor.sse import Comment, Message, messages


class TransientError(Exception):
    """Worth retrying after a pause: the server is away, restarting, stalled or garbled."""


class FatalError(Exception):
    """Retrying will not help (the token is refused)."""


class StreamUnavailable(TransientError):
    """The server has no event stream (404, 405, 406, 501 or not ``text/event-stream``)."""


NO_STREAM = {404, 405, 406, 501}


class MonitorClient:
    """Reads the event log, acknowledges positions and samples resources."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        keepalive: float = 10.0,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.keepalive, self.timeout = keepalive, timeout
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def poll(self, after: int, limit: int, wait: float) -> Page:
        """One long poll: events after ``after``, answered as soon as there is one."""
        timeout = httpx.Timeout(self.timeout, read=wait + self.timeout)
        params = {"after": after, "limit": limit, "wait": wait}
        body = await self._json("GET", "/api/v1/events", params=params, timeout=timeout)
        try:
            return Page.from_json(body)
        except WireError as exc:
            raise TransientError(str(exc)) from exc

    @asynccontextmanager
    async def stream(self, after: int) -> AsyncIterator[AsyncIterator[Message | Comment]]:
        """The event stream from ``after`` on, as parsed messages."""
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
        timeout = httpx.Timeout(self.timeout, read=2 * self.keepalive)
        request = self._http.build_request(
            "GET", "/api/v1/events/stream", params={"after": after}, headers=headers
        )
        request.extensions["timeout"] = timeout.as_dict()
        try:
            response = await self._http.send(request, stream=True)
        except httpx.RequestError as exc:
            raise TransientError(f"event stream: {exc!r}") from exc
        try:
            await _check_stream(response)
            yield _guarded(messages(response.aiter_lines()))
        finally:
            await response.aclose()

    async def acknowledge(self, name: str, position: int) -> Missed | None:
        """Tell the server that ``name`` has stored everything up to ``position``."""
        body = await self._json(
            "PUT", f"/api/v1/consumers/{name}/position", json={"position": position}
        )
        try:
            return Missed.from_json(body.get("missed") if isinstance(body, dict) else None)
        except WireError as exc:
            raise TransientError(str(exc)) from exc

    async def resources(self) -> Resources | None:
        """The current resource window, or None while the server has no such endpoint."""
        try:
            body = await self._json("GET", "/resources")
        except _NotFound:
            return None
        try:
            return Resources.from_json(body)
        except WireError as exc:
            raise TransientError(str(exc)) from exc

    async def delay(self, run_id: str, delay_ms: float) -> bool:
        """``POST /delay``; False when the execution already started or is unknown (the pacer
        was too late, which is not an error)."""
        try:
            response = await self._http.post("/delay", json={"id": run_id, "delay": delay_ms})
        except httpx.RequestError as exc:
            raise TransientError(f"POST /delay: {exc!r}") from exc
        if response.status_code in (404, 409):
            return False
        _check(response, "POST /delay")
        return True

    async def _json(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = await self._http.request(method, path, **options)
        except httpx.RequestError as exc:
            raise TransientError(f"{method} {path}: {exc!r}") from exc
        _check(response, f"{method} {path}")
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"{method} {path}: body is not JSON") from exc


class _NotFound(TransientError):
    pass


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    detail = f"{what}: HTTP {response.status_code} {response.text[:300]}"
    if response.status_code in (401, 403):
        raise FatalError(detail)
    if response.status_code == 404:
        raise _NotFound(detail)
    # 5xx while the server restarts, 429, and also other 4xx: a long-running monitor keeps
    # trying (loudly) rather than exiting on what may be a proxy's passing hiccup.
    raise TransientError(detail)


async def _check_stream(response: httpx.Response) -> None:
    if response.status_code in NO_STREAM:
        await response.aread()
        raise StreamUnavailable(f"event stream: HTTP {response.status_code}")
    if not response.is_success:
        await response.aread()
    _check(response, "event stream")
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        raise StreamUnavailable(
            f"event stream: content type {response.headers.get('content-type')}"
        )


async def _guarded(
    source: AsyncIterator[Message | Comment],
) -> AsyncIterator[Message | Comment]:
    try:
        async for item in source:
            yield item
    except httpx.RequestError as exc:
        raise TransientError(f"event stream: {exc!r}") from exc
