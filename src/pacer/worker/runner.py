"""The run loop of one worker: claim due runs in batches, run them concurrently, report back.

A worker holds a lease on each run it executes and renews it by heartbeat; if the process dies,
the lease expires and a scheduler's reaper hands the run to another attempt. Completions are
written in batches and fenced by attempt number in the store, so a worker that lost its lease
can never overwrite the newer attempt's result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import date

from pacer.domain.errors import ActionFailed
from pacer.domain.models import Completion, Run
from pacer.domain.retries import failed, succeeded
from pacer.ports import ActionCatalog, Clock, RunContext, RunStore
from pacer.services.waiting import wait_any
from pacer.worker.wakeup import Wakeup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 50
    batch: int = 100
    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    poll_s: float = 5.0
    grace_s: float = 30.0
    #: How long the completion writer waits for more completions while runs are in flight.
    linger_s: float = 0.002
    as_of: date | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        store: RunStore,
        actions: ActionCatalog,
        clock: Clock,
        wakeup: Wakeup,
        options: WorkerOptions | None = None,
        name: str | None = None,
    ) -> None:
        self.store, self.actions, self.clock, self.wakeup = store, actions, clock, wakeup
        self.options = options or WorkerOptions()
        self.name = name or worker_name()
        self.rng = random.Random()
        self.inflight: dict[str, tuple[Run, asyncio.Task[None]]] = {}
        #: Runs finished but not yet written: their leases must still be renewed.
        self.unreported: dict[str, Completion] = {}
        self.completions: asyncio.Queue[Completion] = asyncio.Queue()
        self.slot_freed = asyncio.Event()
        self.executed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish within the grace period and give back the rest."""
        self.wakeup.bind()
        flusher = asyncio.create_task(self._flush_loop())
        heart = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._claim_loop(stop)
            await self._drain()
            await self.completions.join()
        finally:
            heart.cancel()
            flusher.cancel()
            await asyncio.gather(heart, flusher, return_exceptions=True)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            free = self.options.concurrency - len(self.inflight)
            if free <= 0:
                self.slot_freed.clear()
                await wait_any(stop, self.slot_freed, seconds=self.options.poll_s)
                continue
            self.wakeup.clear()  # before claiming: a notify from now on is not lost
            try:
                wanted = min(free, self.options.batch)
                claimed = await self.store.claim(
                    self.name, self.clock.now(), wanted, self.options.lease_s
                )
                failures = 0
            except Exception:
                failures += 1
                log.exception("claim failed (%d in a row)", failures)
                await wait_any(stop, seconds=min(0.1 * 2**failures, 5.0))
                continue
            for run in claimed:
                self._start(run)
            if claimed:
                # Let the runs just claimed begin before this loop's next store call: its
                # synchronous part (pool checkout, SQLAlchemy) would otherwise come first and
                # add half a millisecond to a dispatch.
                await asyncio.sleep(0)
            if len(claimed) < wanted:
                await self._sleep_until_due(stop)

    async def _sleep_until_due(self, stop: asyncio.Event) -> None:
        try:
            due = await self.store.next_due_at()
        except Exception:
            log.exception("next_due_at failed")
            due = None
        timeout = self.options.poll_s
        if due is not None:
            timeout = min(max((due - self.clock.now()).total_seconds(), 0.0), timeout)
        if timeout > 0:
            await wait_any(stop, self.wakeup.event, seconds=timeout)

    def _start(self, run: Run) -> None:
        task = asyncio.create_task(self._execute(run))
        self.inflight[run.id] = (run, task)

    async def _execute(self, run: Run) -> None:
        try:
            completion = await self._attempt(run)
            self.unreported[run.id] = completion
            self.completions.put_nowait(completion)
            self.executed += 1
        finally:
            self.inflight.pop(run.id, None)
            self.slot_freed.set()

    async def _attempt(self, run: Run) -> Completion:
        kind = str(run.action.get("kind", ""))
        try:
            action = self.actions.get(kind)
            # ``asyncio.timeout`` rather than ``wait_for``: on 3.11 ``wait_for`` wraps the
            # coroutine in a second task per run, a cost that showed in the drain profile.
            async with asyncio.timeout(run.timeout_s):
                result = await action.execute(run.action, self._context(run))
        except TimeoutError:
            message = f"timed out after {run.timeout_s:g}s"
            return failed(run, self.clock.now(), message, retryable=True, rng=self.rng)
        except ActionFailed as exc:
            now = self.clock.now()
            return failed(
                run, now, str(exc), retryable=exc.retryable, rng=self.rng, result=exc.result
            )
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return failed(run, self.clock.now(), message, retryable=True, rng=self.rng)
        return succeeded(run, self.clock.now(), result)

    def _context(self, run: Run) -> RunContext:
        as_of = run.parameters.get("as_of")
        return RunContext(
            run_id=run.id,
            attempt=run.attempt,
            job_id=run.job_id,
            job_name=None,
            parameters=run.parameters,
            idempotency_key=run.idempotency_key or run.id,
            scheduled_at=run.scheduled_at,
            as_of=date.fromisoformat(as_of) if isinstance(as_of, str) else self.options.as_of,
        )

    async def _flush_loop(self) -> None:
        """Write completions in batches: whatever piled up while the last write ran."""
        while True:
            batch = [await self.completions.get()]
            if self.inflight and self.completions.qsize() < self.options.batch:
                # Group commit: while runs are still finishing, linger a moment so that one
                # durable commit (one fsync) carries many completions instead of one.
                await asyncio.sleep(self.options.linger_s)
            while not self.completions.empty() and len(batch) < 1000:
                batch.append(self.completions.get_nowait())
            await self._write(batch)
            for completion in batch:
                self.unreported.pop(completion.run_id, None)
                self.completions.task_done()

    async def _write(self, batch: list[Completion]) -> None:
        failures = 0
        while True:
            try:
                accepted = set(await self.store.complete(self.name, batch))
                break
            except Exception:
                failures += 1
                log.exception("writing %d completions failed (%d in a row)", len(batch), failures)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
        for completion in batch:
            if completion.run_id not in accepted:
                log.warning(
                    "run %s attempt %d: result discarded (lease lost or run cancelled)",
                    completion.run_id,
                    completion.attempt,
                )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_s)
            held_ids = list(self.inflight) + list(self.unreported)
            try:
                kept = set(
                    await self.store.heartbeat(
                        self.name, held_ids, self.clock.now(), self.options.lease_s
                    )
                )
            except Exception:
                log.exception("heartbeat failed")
                continue
            for run_id in held_ids:
                entry = self.inflight.get(run_id)
                if run_id not in kept and entry is not None:
                    log.warning(
                        "run %s no longer ours (cancelled or lease lost); stopping it", run_id
                    )
                    entry[1].cancel()

    async def _drain(self) -> None:
        """Shutdown: let running attempts finish within the grace period, give back the rest."""
        tasks = [task for _, task in self.inflight.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.options.grace_s)
        leftover = [(run, task) for run, task in self.inflight.values() if not task.done()]
        for _, task in leftover:
            task.cancel()
        await asyncio.gather(*(task for _, task in leftover), return_exceptions=True)
        if leftover:
            held = [(run.id, run.attempt) for run, _ in leftover]
            with contextlib.suppress(Exception):
                released = await self.store.release(self.name, held, self.clock.now())
                log.info("gave back %d unfinished runs", released)
