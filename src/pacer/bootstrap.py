"""The one place that knows every concrete class and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pacer.actions.registry import ActionRegistry
from pacer.actions.targets import Targets
from pacer.api.app import ApiServices
from pacer.definitions import DECLARED, FUNCTIONS, load_jobs_dir
from pacer.ports import Clock
from pacer.services.clock import SystemClock
from pacer.services.jobs import JobService
from pacer.services.scheduler import Scheduler
from pacer.services.tasks import TaskService
from pacer.settings import Settings
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.dialects import NOTIFY_CHANNEL
from pacer.stores.sqlalchemy.migrate import upgrade
from pacer.worker.runner import Worker, WorkerOptions
from pacer.worker.wakeup import Wakeup, listen_postgresql

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Everything a process needs, built once from ``Settings``."""

    settings: Settings
    store: SqlStore
    targets: Targets
    actions: ActionRegistry
    clock: Clock
    jobs: JobService
    scheduler: Scheduler
    tasks: TaskService
    wakeup: Wakeup = field(default_factory=Wakeup)

    def worker(self, name: str | None = None) -> Worker:
        s = self.settings
        options = WorkerOptions(
            concurrency=s.concurrency,
            batch=s.batch,
            lease_s=s.lease_s,
            heartbeat_s=s.heartbeat_s,
            poll_s=s.poll_s,
            grace_s=s.grace_s,
            as_of=s.as_of,
        )
        return Worker(self.store, self.actions, self.clock, self.wakeup, options, name=name)

    def api_services(self) -> ApiServices:
        """What the HTTP API is given: it never sees this container or a concrete class."""
        return ApiServices(self.store, self.jobs, self.tasks, self.actions, self.clock)

    async def listen(self, stop: asyncio.Event) -> None:
        """Relay cross-process wake-ups (PostgreSQL only; SQLite is one process)."""
        if self.store.dialect.notify:
            await listen_postgresql(self.store.url, NOTIFY_CHANNEL, self.wakeup, stop)

    async def aclose(self) -> None:
        await self.actions.aclose()
        self.targets.dispose()
        await self.store.close()


async def build(
    settings: Settings, clock: Clock | None = None, *, migrate: bool = True, sync_jobs: bool = True
) -> Container:
    """Migrate the store, load job definitions, and (scheduler roles) write them to the store.

    Workers load the definitions too, for the python functions, but leave the writing to
    the scheduler so that many processes starting at once do not race to create a job.
    """
    if migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    clock = clock or SystemClock()
    store = SqlStore(settings.database_url)
    targets = Targets(settings.targets)
    specs = load_jobs_dir(settings.jobs_dir) if settings.jobs_dir is not None else []
    names = {spec.name for spec in specs}
    specs += [spec for name, spec in DECLARED.items() if name not in names]
    actions = ActionRegistry.default(targets, FUNCTIONS)
    scheduler = Scheduler(store, actions, clock)
    jobs = JobService(store, actions, clock, on_change=scheduler.changed.set)
    tasks = TaskService(store, actions, clock)
    container = Container(settings, store, targets, actions, clock, jobs, scheduler, tasks)
    store.on_enqueued.append(container.wakeup.notify)
    try:
        if sync_jobs:
            await jobs.sync(specs, source="definitions")
    except BaseException:
        await container.aclose()
        raise
    return container


@contextlib.asynccontextmanager
async def running(
    settings: Settings, clock: Clock | None = None, *, sync_jobs: bool = True
) -> AsyncIterator[Container]:
    container = await build(settings, clock, sync_jobs=sync_jobs)
    try:
        yield container
    finally:
        await container.aclose()
