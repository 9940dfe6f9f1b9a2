"""The follow loop: copy the server's execution log into the local store, forever, exactly once.

Transport: the SSE stream (``/api/v1/events/stream``) is primary, the long poll
(``/api/v1/events?wait=``) the fallback. The stream was chosen because it delivers each event
as soon as it commits, with no request per batch, and its keepalive comments give a liveness
signal: a read timeout of twice the keepalive interval turns a half-open or stalled connection
into an error within seconds, even half-way through a message (which the SSE parser never
dispatches). The long poll is as safe (a truncated JSON body fails to parse, so nothing of it is
applied) but pays a round trip per batch; it takes over when the server has no stream endpoint
or when the stream failed ``stream_failures`` times in a row without delivering anything (a
buffering proxy), and the stream is tried again ``fallback_period`` seconds later.

Correctness never rests on the transport: every read starts from the position committed in the
local store, events are keyed by their position there, and the position moves in the same
transaction as the rows. Acknowledgements to the server are sent after that commit, read back
from the store, so the server never prunes what is not on our disk; a failed ack only delays
pruning and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pacer.monitor.backoff import Backoff
from pacer.monitor.batching import batched
from pacer.monitor.client import MonitorClient, StreamUnavailable, TransientError
from pacer.monitor.events import Event, Missed, WireError
from pacer.monitor.offloop import OffLoop
from pacer.monitor.sse import Comment, Message
from pacer.monitor.store import MonitorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowSettings:
    """How the follower reads, batches, backs off and acknowledges."""

    name: str
    transport: str = "auto"  # "auto" (stream, falling back to poll), "stream" or "poll"
    batch_size: int = 500
    batch_delay: float = 0.005
    poll_limit: int = 1000
    poll_wait: float = 25.0
    backoff_base: float = 0.1
    backoff_cap: float = 5.0
    stream_failures: int = 3
    fallback_period: float = 60.0
    ack_interval: float = 0.2
    resources_interval: float = 5.0


class Follower:
    """Runs the follow, acknowledge and resources loops until ``stop`` is set."""

    def __init__(
        self,
        store: MonitorStore,
        client: MonitorClient,
        settings: FollowSettings,
        on_commit: Callable[[int], None] | None = None,
        io: OffLoop | None = None,
    ) -> None:
        self.store, self.client, self.settings = store, client, settings
        #: Where the store's calls run: never on the loop (``offloop.py``).
        self.io = io or OffLoop()
        self.on_commit = on_commit or (lambda position: None)
        self.backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        self._committed = asyncio.Event()
        self._poll_until = 0.0
        self._stream_failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until ``stop``; a ``FatalError`` from any loop ends the run and is raised."""
        self._committed.set()  # registers the consumer at once, at the stored position
        loops = [self._follow(stop), self._acknowledge()]
        if self.settings.resources_interval > 0:
            loops.append(self._sample_resources())
        tasks = [asyncio.create_task(loop) for loop in loops]
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in [*tasks, stopping]:
                task.cancel()
            await asyncio.gather(*tasks, stopping, return_exceptions=True)
            await self._final_ack()

    # -- reading ---------------------------------------------------------------------------------

    async def _follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self._use_stream():
                    await self._follow_stream()
                else:
                    await self._poll()
                    continue
            except StreamUnavailable as exc:
                log.warning("%s; long polling for %ss", exc, self.settings.fallback_period)
                self._fall_back()
            except TransientError as exc:
                log.warning("reading the event log failed: %s", exc)
                self._count_stream_failure()
            await self.backoff.pause(stop)

    def _use_stream(self) -> bool:
        if self.settings.transport != "auto":
            return self.settings.transport == "stream"
        return asyncio.get_running_loop().time() >= self._poll_until

    def _fall_back(self) -> None:
        self._poll_until = asyncio.get_running_loop().time() + self.settings.fallback_period
        self._stream_failures = 0

    def _count_stream_failure(self) -> None:
        if not self._use_stream() or self.settings.transport != "auto":
            return
        self._stream_failures += 1
        if self._stream_failures >= self.settings.stream_failures:
            log.warning("the event stream keeps failing; long polling for a while")
            self._fall_back()

    async def _poll(self) -> None:
        after = await self.io(self.store.position)
        page = await self.client.poll(after, self.settings.poll_limit, self.settings.poll_wait)
        self.backoff.reset()
        if page.events or page.missed or page.next_after > after:  # no fsync for an empty wait
            missed = [page.missed] if page.missed else []
            await self._commit(page.events, max(after, page.next_after), missed)

    async def _follow_stream(self) -> None:
        size, delay = self.settings.batch_size, self.settings.batch_delay
        after = await self.io(self.store.position)
        # aclosing: if a batch fails to parse or commit, the reader task is cancelled at once.
        async with (
            self.client.stream(after) as items,
            contextlib.aclosing(batched(items, size, delay)) as batches,
        ):
            async for batch in batches:
                self._stream_failures = 0  # bytes get through: no buffering proxy in the way
                events, missed = _parse(batch)
                if events or missed:
                    self.backoff.reset()  # only real progress resets it, not keepalives
                    position = max([e.position for e in events] + [m.end for m in missed])
                    await self._commit(events, position, missed)
        raise TransientError("the server closed the event stream")

    async def _commit(
        self, events: Sequence[Event], position: int, missed: Sequence[Missed]
    ) -> None:
        for gap in missed:
            _warn_missed(gap)
        committed = await self.io(self.store.apply, events, position, missed)
        self._committed.set()
        self.on_commit(committed)

    # -- acknowledging and sampling --------------------------------------------------------------

    async def _acknowledge(self) -> None:
        acked: int | None = None
        while True:
            await self._committed.wait()
            self._committed.clear()
            position = await self.io(self.store.position)  # on disk, never in flight
            if position == acked:
                continue
            try:
                missed = await self.client.acknowledge(self.settings.name, position)
            except TransientError as exc:
                log.info("acknowledging %s failed (will retry): %s", position, exc)
                self._committed.set()
                await asyncio.sleep(self.settings.backoff_cap)
                continue
            acked = position
            if missed is not None:
                log.warning("the server reports events pruned before we read them: %s", missed)
            await asyncio.sleep(self.settings.ack_interval)  # one ack per interval at most

    async def _final_ack(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                position = await self.io(self.store.position)
                await self.client.acknowledge(self.settings.name, position)

    async def _sample_resources(self) -> None:
        while True:
            try:
                window = await self.client.resources()
                if window is not None:
                    await self.io(self.store.record_resources, window)
            except TransientError as exc:
                log.debug("resources: %s", exc)
            await asyncio.sleep(self.settings.resources_interval)


def _parse(batch: Sequence[Message | Comment]) -> tuple[list[Event], list[Missed]]:
    events: list[Event] = []
    missed: list[Missed] = []
    for item in batch:
        if isinstance(item, Comment):
            continue
        try:
            if item.event == "run":
                events.append(Event.from_json(json.loads(item.data)))
            elif item.event == "missed" and (gap := Missed.from_json(json.loads(item.data))):
                missed.append(gap)
        except (ValueError, WireError) as exc:
            raise TransientError(f"bad stream message {item!r}: {exc}") from exc
    return events, missed


def _warn_missed(missed: Missed) -> None:
    line = (
        f"WARNING: pacer monitor MISSED {missed.count} events (positions {missed.start}.."
        f"{missed.end}): the server pruned them before this consumer read them"
    )
    print(line, file=sys.stderr, flush=True)
    log.warning(line)
