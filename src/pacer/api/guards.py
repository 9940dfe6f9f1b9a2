"""``RequestGuard``: what every request must be before any route sees it.

Each refusal here is a value some part behind the API cannot hold, found first by a probe as
a 500 or as a silent change:

- a body over ``MAX_BODY_BYTES`` (413): at once by ``Content-Length``, else (chunked uploads,
  a lying header) as soon as the bytes received pass the limit;
- a NUL character in the path, the query or a JSON string (422): PostgreSQL cannot store NUL
  in text or JSONB, so such a value failed deep in the store on PostgreSQL and was accepted
  on SQLite;
- bytes in the path or query that are not UTF-8 once percent-decoded (422): they were read as
  U+FFFD, so two different consumer names became one;
- a lone UTF-16 surrogate in a JSON string (``"\\ud800"``, 422): Python's JSON reader accepts
  it, SQLite stored it, and every later page that held it failed to serialise, for good;
- ``NaN``, ``Infinity`` or a number too large for a double (``1e309``) in a JSON body (422):
  not JSON by RFC 8259, though Python's reader accepts them; PostgreSQL's JSONB refused them
  (a 500) and SQLite stored them as ``null``;
- JSON nested deeper than Python's reader can recurse (422).

A JSON body is parsed here once more, so that the error names the field (``parameters.x``)
in every route alike, including ``POST /result``, whose body is any JSON. Bodies are small
(a job spec is a few KiB) and the check costs one extra parse; the slower walk over the
values runs only when the parse flagged a number or the raw bytes hold an escape or an
encoded surrogate, the only ways the other refusals can arise. A body that is not JSON passes
through untouched: the route says what it expected. *Rejected:* a validator on each model
(``parameters``, ``payload`` and the results receiver take any JSON, and each new field would
need remembering), and scanning the raw bytes for escapes only (it cannot tell ``\\\\u0000``,
an escaped backslash, from ``\\u0000``, nor name the field).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacer.api import errors
from pacer.api.schemas import FieldError

#: Request bodies larger than this are refused with 413 (a job spec is a few KiB).
MAX_BODY_BYTES = 1024 * 1024


class _NotFinite:
    """A number JSON cannot carry, kept in place by the parse so the walk can name it."""

    def __init__(self, text: str) -> None:
        self.text = text


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class RequestGuard:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check_url(scope)
        if refusal is None and self._declared(scope) > self.limit:
            refusal = self._too_large(scope)
        body = b""
        if refusal is None:
            try:
                body = await self._body(receive)
            except _TooLarge:
                refusal = self._too_large(scope)
            except _Disconnected:
                return  # the client left mid-body: a partial body must not reach a route
        if refusal is None:
            refusal = self._check_json(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._replaying(body, receive), send)

    def _too_large(self, scope: Scope) -> Any:
        detail = f"the request body is larger than {self.limit} bytes"
        field = [FieldError(field="body", reason=detail)]
        return errors.problem(413, detail, field, instance=_printable(scope.get("path", "")))

    @staticmethod
    def _declared(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _replaying(body: bytes, receive: Receive) -> Receive:
        """The body read above as one message, then the client's own messages (a streaming
        response waits on them for the disconnect)."""
        sent = False

        async def replayed() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replayed

    # -- the checks ------------------------------------------------------------------------------

    @staticmethod
    def _check_url(scope: Scope) -> Any:
        raw_path: bytes = scope.get("raw_path") or scope.get("path", "").encode()
        query: bytes = scope.get("query_string", b"")
        for where, raw in (("path", raw_path), ("query", query.replace(b"+", b" "))):
            decoded = unquote_to_bytes(raw)
            reason = None
            if b"\x00" in decoded:
                reason = "contains a NUL character"
            else:
                try:
                    decoded.decode("utf-8")
                except UnicodeDecodeError:
                    reason = "is not valid UTF-8 once percent-decoded"
            if reason is not None:
                return _refusal(scope, where, reason)
        return None

    @staticmethod
    def _check_json(scope: Scope, body: bytes) -> Any:
        if not body.strip():
            return None
        flagged = False

        def number(text: str) -> float | _NotFinite:
            nonlocal flagged
            value = float(text)
            if math.isfinite(value):
                return value
            flagged = True
            return _NotFinite(text)

        def constant(text: str) -> _NotFinite:
            nonlocal flagged
            flagged = True
            return _NotFinite(text)

        try:
            value = json.loads(body, parse_float=number, parse_constant=constant)
        except RecursionError:
            return _refusal(scope, "body", "is nested too deeply")
        except ValueError:  # not JSON (or not UTF-8): the route says what it expected
            return None
        if not flagged and b"\\u" not in body and b"\xed" not in body:
            return None  # no escape, no encoded surrogate, no odd number: nothing to find
        for where, reason in _problems(value, ()):
            return _refusal(scope, ".".join(where) or "body", reason)
        return None


def _problems(value: Any, where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every value JSON or the stores cannot carry, with where it is, depth first."""
    if isinstance(value, _NotFinite):
        yield where, f"{value.text} is not a finite number"
    elif isinstance(value, str):
        reason = text_problem(value)
        if reason is not None:
            yield where, reason
    elif isinstance(value, dict):
        for key, item in value.items():
            reason = text_problem(key)
            if reason is not None:
                yield (*where, _printable(key)), f"the key {reason}"
            yield from _problems(item, (*where, _printable(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _problems(item, (*where, str(index)))


def text_problem(text: str) -> str | None:
    """Why the stores cannot hold ``text`` (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (not valid Unicode)"
    return None


def _printable(key: str) -> str:
    """A key as it can be shown in an error (the error itself must serialise)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _refusal(scope: Scope, field: str, reason: str) -> Any:
    return errors.problem(
        422,
        f"{field}: {reason}",
        [FieldError(field=field, reason=reason)],
        instance=_printable(scope.get("path", "")),
    )
