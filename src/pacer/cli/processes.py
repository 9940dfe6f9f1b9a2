"""The long-running roles: all-in-one server, worker, scheduler. Signals end them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any

import uvicorn

from pacer.api.app import create_app
from pacer.bootstrap import Container, running
from pacer.domain.pacer import PacerConfig
from pacer.domain.tokens import Scope
from pacer.monitor.client import MonitorClient
from pacer.monitor.follower import Follower, FollowSettings
from pacer.monitor.offloop import OffLoop
from pacer.monitor.pacing import PacingLoop
from pacer.monitor.store import MonitorStore
from pacer.settings import Settings

log = logging.getLogger("pacer")

#: The embedded pacer's token lapses this long after its server stops extending it (SIGKILL).
EMBEDDED_TOKEN_TTL = timedelta(minutes=15)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's stop event governs shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


Role = Callable[[Container, asyncio.Event], Coroutine[Any, Any, None]]


async def _serve(container: Container, stop: asyncio.Event) -> None:
    s = container.settings
    config = uvicorn.Config(
        create_app(container.api_services()),
        host=s.host,
        port=s.port,
        log_level="warning",
        lifespan="off",
        # A backstop: event streams end on ``events.close()``; anything else gets the grace.
        timeout_graceful_shutdown=max(math.ceil(s.grace_s), 1),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    sampling = asyncio.create_task(container.resources.run(stop))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        # The server ended on its own (an error while binding, or a return): without this the
        # process ran on as a scheduler and worker with no API, and never exited.
        stopping.cancel()
        sampling.cancel()
        await asyncio.gather(stopping, sampling, return_exceptions=True)
        serving.result()
        raise ApiStopped("the HTTP API stopped on its own")
    await sampling
    container.events.close()
    server.should_exit = True
    await serving


class ApiStopped(RuntimeError):
    """The HTTP API's server returned while the process was meant to run."""


async def _schedule(container: Container, stop: asyncio.Event) -> None:
    """Fires schedules; also prunes the execution log (cheap, and any number may run)."""
    await asyncio.gather(container.scheduler.run(stop), container.events.prune_forever(stop))


async def _work(container: Container, stop: asyncio.Event) -> None:
    await container.worker().run(stop)


async def _listen(container: Container, stop: asyncio.Event) -> None:
    await container.listen(stop)


async def run_roles(settings: Settings, roles: list[Role], *, sync_jobs: bool) -> None:
    """Run roles until SIGTERM/SIGINT; a role that crashes stops the others."""
    stop = asyncio.Event()
    _install_signals(stop)
    async with running(settings, sync_jobs=sync_jobs) as container:
        _freeze_startup_heap()
        listener = asyncio.create_task(_listen(container, stop))
        tasks = [asyncio.create_task(role(container, stop)) for role in roles]
        log.info(
            "pacer running (%s) on %s",
            ", ".join(r.__name__.strip("_") for r in roles),
            container.store.dialect.name,
        )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


def _freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, SQLAlchemy's tables and caches, the
    actions) out of the garbage collector's sight.

    A full collection walks every tracked object; in a worker that was 50-80 ms every few
    hundred runs, and a run enqueued at that moment waited for it (the worst dispatch
    latencies of ``make bench-peers``; BENCHMARKS.md). Frozen objects are never collected,
    which is what start-up objects are for: they live as long as the process.
    """
    gc.collect()
    gc.freeze()


def pace_config(settings: Settings) -> PacerConfig:
    """The embedded pacer's configuration from the server's settings."""
    return PacerConfig(
        window_s=settings.resource_window_s,
        max_delay_s=settings.pace_max_delay_s,
        max_delay_by_query=dict(settings.pace_max_delay_by_query),
    )


async def _pace(container: Container, stop: asyncio.Event) -> None:
    """``pacer up --pace``: the monitor and its pacer, embedded, talking to this very server
    over HTTP exactly as a separate ``pacer monitor --pace`` would (so the demo runs the same
    code), with a write token made for it: extended while it runs, revoked when it stops,
    expired within ``EMBEDDED_TOKEN_TTL`` when it was killed."""
    s = container.settings
    token, secret = await container.tokens.create("embedded pacer", Scope.WRITE, EMBEDDED_TOKEN_TTL)
    store = MonitorStore(s.pace_db, consumer="embedded-pacer")
    # The pacer reads the store on its own connection, and both use the file from one thread
    # of their own, never from the server's loop (``monitor/offloop.py``).
    pacing_store = MonitorStore(s.pace_db, consumer="embedded-pacer")
    io = OffLoop()
    client = embedded_client(s, secret)
    pacing = PacingLoop(pacing_store, client, pace_config(s), io=io)
    follow = FollowSettings(name="embedded-pacer", resources_interval=s.resource_sample_s)
    try:
        follower = Follower(store, client, follow, on_commit=pacing.committed, io=io)
        await asyncio.gather(
            follower.run(stop),
            pacing.run(stop),
            container.tokens.hold(token.id, EMBEDDED_TOKEN_TTL, stop),
        )
    finally:
        await client.aclose()
        io.close()
        store.close()
        pacing_store.close()
        await container.tokens.revoke(token.id)


def embedded_client(settings: Settings, secret: str) -> MonitorClient:
    """The embedded pacer's client of this server. Its stream read timeout follows this
    server's keepalive interval: the client's default (10 s, so 20 s of silence) dropped and
    re-opened a quiet stream over and over when ``PACER_SSE_KEEPALIVE_S`` was above 20."""
    return MonitorClient(settings.base_url(), secret, keepalive=settings.sse_keepalive_s)


ALL_IN_ONE: list[Role] = [_serve, _schedule, _work]
PACED: list[Role] = [*ALL_IN_ONE, _pace]
WORKER: list[Role] = [_work]
SCHEDULER: list[Role] = [_schedule]
