"""A fake Pacer event-log server for the monitor's tests (no tests of its own here).

It speaks the wire contract of ``/api/v1/events``, ``/api/v1/events/stream``,
``/api/v1/consumers/{name}/position`` and ``/resources`` over an in-memory list of events, on a
real loopback port, with fault switches taken one per read request: ``"500"``, ``"reset"`` (a TCP
reset half-way through the body), ``"stall"`` (half the body, then silence) and ``"end"`` (a
stream closed cleanly after a few events). ``stop()`` and ``start()`` refuse connections for a
while on the same port. Each acknowledgement is checked against the monitor's SQLite file: an
ack beyond what is committed there is recorded as a violation.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import struct
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "monitor-secret"
FAULT_AFTER = 3  # stream faults strike after this many events of the connection


def make_event(position: int, run: int, kind: str, attempt: int) -> dict[str, Any]:
    """One event as the server sends it, every field present."""
    finished = kind in ("succeeded", "failed", "retrying")
    return {
        "position": position,
        "kind": kind,
        "run_id": f"run-{run}",
        "query_id": f"q{run % 3}",
        "job_id": f"job-{run % 2}",
        "attempt": attempt,
        "status": {"started": "running"}.get(kind, kind),
        "at": f"2025-01-01T00:{position // 60 % 60:02}:{position % 60:02}+00:00",
        "scheduled_at": "2025-01-01T00:00:00+00:00",
        "started_at": "2025-01-01T00:00:01+00:00" if attempt else None,
        "finished_at": "2025-01-01T00:00:02+00:00" if finished else None,
        "duration_ms": float(run % 7 * 10 + attempt) if finished else None,
        "worker": "w1" if attempt else None,
        "error": "boom" if kind in ("failed", "retrying") else None,
    }


class FakeServer:
    """The fake's state; its HTTP handler runs in the server's threads."""

    def __init__(self, keepalive: float = 0.3) -> None:
        self.keepalive = keepalive
        self.events: list[dict[str, Any]] = []
        self.pruned: list[int] = []
        self.faults: deque[str] = deque()
        self.acks: list[int] = []
        self.violations: list[str] = []
        self.db_path: Path | None = None
        self.resources: deque[int | dict[str, Any]] = deque()
        self.resource_requests = 0
        self.streamed = 0  # events sent on stream connections, all together
        self.stream_enabled = True
        self.pace = 0.0  # seconds between streamed events: a steady flow instead of one burst
        self.changed = threading.Condition()
        self.closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self._runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.closing.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self._server, self.port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port (connections are refused) and end every open stream."""
        self.closing.set()
        with self.changed:
            self.changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def add_runs(self, count: int) -> None:
        """Append ``count`` runs' histories: queued, started, one retry for every fourth."""
        with self.changed:
            for _ in range(count):
                run, self._runs = self._runs, self._runs + 1
                kinds = [("queued", 0), ("started", 1)]
                kinds += [("retrying", 1), ("started", 2)] if run % 4 == 0 else []
                kinds += [("failed" if run % 5 == 0 else "succeeded", kinds[-1][1])]
                for kind, attempt in kinds:
                    # Positions only grow but skip some (a rolled-back writer's positions).
                    position = (self.events[-1]["position"] if self.events else 0) + 1 + run % 2
                    self.events.append(make_event(position, run, kind, attempt))
            self.changed.notify_all()

    def prune(self, up_to: int) -> None:
        with self.changed:
            self.pruned += [e["position"] for e in self.events if e["position"] <= up_to]
            self.events = [e for e in self.events if e["position"] > up_to]

    def after(self, position: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["position"] > position]

    def missed(self, position: int) -> dict[str, int] | None:
        gone = [p for p in self.pruned if p > position]
        return {"from": min(gone), "to": max(gone), "count": len(gone)} if gone else None

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60) -> bool:
        with self.changed:
            return bool(self.changed.wait_for(predicate, timeout))

    def acknowledge(self, position: int) -> None:
        committed = self._committed()
        with self.changed:
            if committed is not None and position > committed:
                self.violations.append(f"ack {position} beyond committed {committed}")
            self.acks.append(position)
            self.changed.notify_all()

    def _committed(self) -> int | None:
        if self.db_path is None or not self.db_path.exists():
            return None
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            row = db.execute("SELECT position FROM stream").fetchone()
            return int(row[0]) if row else None
        except sqlite3.OperationalError:  # no tables yet: nothing to check against
            return None
        finally:
            db.close()


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if not self._authorized():
                return
            if url.path == "/api/v1/events":
                self._poll(int(query.get("after", 0)), int(query.get("limit", 100)), query)
            elif url.path == "/api/v1/events/stream" and fake.stream_enabled:
                after = int(self.headers.get("Last-Event-ID") or query.get("after") or 0)
                self._stream(after)
            elif url.path == "/resources":
                self._resources()
            else:
                self._send(404, {"title": "Not Found"})

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self._authorized():
                return
            fake.acknowledge(int(body["position"]))
            name = self.path.split("/")[4]
            self._send(200, {"name": name, "position": body["position"], "missed": None})

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self._send(401, {"title": "Unauthorized", "status": 401})
            return False

        def _poll(self, after: int, limit: int, query: dict[str, str]) -> None:
            fault = _take(fake)
            if fault == "500":
                return self._send(500, {"title": "restarting", "status": 500})
            fake.wait_for(lambda: fake.after(after) or fake.closing.is_set(), float(query["wait"]))
            with fake.changed:
                items = fake.after(after)[:limit]
                next_after = items[-1]["position"] if items else after
                page = {"items": items, "next_after": next_after, "missed": fake.missed(after)}
            raw = json.dumps(page).encode()
            self._headers(200, "application/json", len(raw))
            if fault in ("reset", "stall"):
                return self._break(raw[: len(raw) // 2], fault)
            self.wfile.write(raw)

        def _stream(self, position: int) -> None:
            fault = _take(fake)
            if fault == "500":
                return self._send(500, {"title": "restarting", "status": 500})
            self._headers(200, "text/event-stream", None)
            if gap := fake.missed(position):
                self.wfile.write(f"event: missed\ndata: {json.dumps(gap)}\n\n".encode())
            sent = 0
            while not fake.closing.is_set():
                with fake.changed:
                    fake.changed.wait_for(partial(fake.after, position), fake.keepalive)
                    pending = fake.after(position)
                if not pending:
                    self.wfile.write(b": keepalive\n\n")
                for event in pending:
                    text = f"id: {event['position']}\nevent: run\ndata: {json.dumps(event)}\n\n"
                    if fault == "end" and sent == FAULT_AFTER:
                        return  # a clean close, as on a graceful server restart
                    if fault and sent == FAULT_AFTER:
                        return self._break(text.encode()[: len(text) // 2], fault)
                    self.wfile.write(text.encode())
                    position, sent = event["position"], sent + 1
                    if fake.pace:
                        fake.closing.wait(fake.pace)
                    with fake.changed:
                        fake.streamed += 1
                        fake.changed.notify_all()

        def _resources(self) -> None:
            with fake.changed:
                fake.resource_requests += 1
                fake.changed.notify_all()
                answer = fake.resources.popleft() if fake.resources else 404
            if isinstance(answer, int):
                return self._send(answer, {"title": "Not Found", "status": answer})
            self._send(200, answer)

        def _break(self, partial: bytes, fault: str) -> None:
            self.wfile.write(partial)
            if fault == "stall":
                fake.closing.wait(30)
            elif fault == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True
            self.connection.close()

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self._headers(
                status,
                "application/problem+json" if status >= 400 else "application/json",
                len(raw),
            )
            self.wfile.write(raw)

        def _headers(self, status: int, content_type: str, length: int | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

        def handle(self) -> None:
            # The client went away, or a fault closed the socket under us.
            with contextlib.suppress(OSError):
                super().handle()

    return Handler


def _take(fake: FakeServer) -> str | None:
    with fake.changed:
        return fake.faults.popleft() if fake.faults else None
