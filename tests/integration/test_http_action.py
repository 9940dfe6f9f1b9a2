"""The http action against a real HTTP server on 127.0.0.1: headers, retries, classification.

``Receiver`` is also used by the sql action's sink tests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pacer.actions.http import HttpActionRunner
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.ports import RunContext


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """Records every POST and answers with the statuses it was told to, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        self.response_body: bytes | None = None
        #: While cleared, requests hang: lets a test provoke a client timeout without sleeping.
        self.answering = threading.Event()
        self.answering.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.answering.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def bodies(self) -> list[Any]:
        return [request.body for request in self.requests]

    def keys(self) -> list[str]:
        return [request.headers["idempotency-key"] for request in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver.requests.append(Received(self.path, headers, json.loads(raw or b"null")))
            receiver.answering.wait(10)
            status = receiver.statuses.popleft() if receiver.statuses else 200
            body = receiver.response_body or json.dumps({"seen": len(receiver.requests)}).encode()
            if status >= 300:
                body = b"the receiver says no"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout tests): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is for the tests."""

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free port for the test's duration."""
    with Receiver() as recv:
        yield recv


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def context(key: str = "run-1:key", **parameters: Any) -> RunContext:
    return RunContext(
        run_id="run-1",
        attempt=1,
        job_id=None,
        job_name=None,
        parameters=parameters,
        idempotency_key=key,
        scheduled_at=datetime.now(UTC),
    )


@pytest.fixture
async def runner() -> AsyncIterator[HttpActionRunner]:
    """An http runner whose client is closed after the test."""
    http = HttpActionRunner()
    yield http
    await http.aclose()


async def test_posts_payload_with_idempotency_and_webhook_headers(
    runner: HttpActionRunner, receiver: Receiver
) -> None:
    """The payload is POSTed as JSON with the idempotency, webhook and job's own headers."""
    spec = {
        "kind": "http",
        "url": f"{receiver.url}/hook",
        "payload": {"a": 1},
        "headers": {"X-Team": "data"},
    }
    before = int(time.time())
    await runner.execute(spec, context("key-42"))
    [request] = receiver.requests
    assert request.body == {"a": 1}
    assert request.path == "/hook"
    assert request.headers["idempotency-key"] == "key-42"
    assert request.headers["webhook-id"] == "key-42"
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("pacer/")
    assert request.headers["x-team"] == "data"


async def test_job_headers_cannot_replace_the_idempotency_key(
    runner: HttpActionRunner, receiver: Receiver
) -> None:
    """A job's own Idempotency-Key header loses to the run's, so deduplication holds."""
    spec = {"kind": "http", "url": receiver.url, "headers": {"Idempotency-Key": "mine"}}
    await runner.execute(spec, context("run-key"))
    assert receiver.keys() == ["run-key"]


async def test_retry_of_a_run_sends_the_same_key(
    runner: HttpActionRunner, receiver: Receiver
) -> None:
    """Two attempts of one run carry the same Idempotency-Key, so the receiver can dedupe."""
    spec = {"kind": "http", "url": receiver.url, "payload": [1, 2]}
    receiver.answer(503)
    with pytest.raises(ActionFailed):
        await runner.execute(spec, context("same-run"))
    await runner.execute(spec, context("same-run"))
    assert receiver.keys() == ["same-run", "same-run"]


async def test_success_returns_status_and_parsed_body(
    runner: HttpActionRunner, receiver: Receiver
) -> None:
    """A 2xx answer is a success whose result holds the status and the JSON body."""
    result = await runner.execute({"kind": "http", "url": receiver.url}, context())
    assert result == {"status": 200, "body": {"seen": 1}}
    assert receiver.bodies() == [{}]


async def test_text_body_is_kept_as_text_up_to_10_kb(
    runner: HttpActionRunner, receiver: Receiver
) -> None:
    """A body that is not JSON is returned as text, cut at 10 KB."""
    receiver.response_body = b"x" * 20_000
    result = await runner.execute({"kind": "http", "url": receiver.url}, context())
    assert result["body"] == "x" * 10_240


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_server_errors_and_throttling_are_retryable(
    runner: HttpActionRunner, receiver: Receiver, status: int
) -> None:
    """408, 429 and 5xx fail the attempt as retryable, naming the status and the body."""
    receiver.answer(status)
    with pytest.raises(ActionFailed) as failure:
        await runner.execute({"kind": "http", "url": receiver.url}, context())
    assert failure.value.retryable
    assert str(status) in str(failure.value)
    assert "the receiver says no" in str(failure.value)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_errors_are_final(
    runner: HttpActionRunner, receiver: Receiver, status: int
) -> None:
    """Other 4xx answers fail the attempt for good: sending the same request again is futile."""
    receiver.answer(status)
    with pytest.raises(ActionFailed) as failure:
        await runner.execute({"kind": "http", "url": receiver.url}, context())
    assert not failure.value.retryable
    assert str(status) in str(failure.value)


async def test_connection_refused_is_retryable(runner: HttpActionRunner) -> None:
    """A receiver that is down fails the attempt as retryable."""
    spec = {"kind": "http", "url": f"http://127.0.0.1:{free_port()}/hook"}
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(spec, context())
    assert failure.value.retryable


async def test_timeout_is_retryable(runner: HttpActionRunner, receiver: Receiver) -> None:
    """A receiver slower than timeout_s fails the attempt as retryable."""
    receiver.answering.clear()
    spec = {"kind": "http", "url": receiver.url, "timeout_s": 0.2}
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(spec, context())
    assert failure.value.retryable
    assert "timed out after 0.2s" in str(failure.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://", "/relative/path", "not a url"])
def test_validate_refuses_urls_that_are_not_http_with_a_host(
    runner: HttpActionRunner, url: str
) -> None:
    """Only absolute http(s) URLs with a host are accepted, naming action.url otherwise."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate({"kind": "http", "url": url})
    assert refused.value.field == "action.url"


def test_validate_accepts_https_url(runner: HttpActionRunner) -> None:
    """A well-formed https URL passes validation."""
    runner.validate({"kind": "http", "url": "https://hooks.example.com/a?token=t", "timeout_s": 5})
