"""The one place that knows every concrete class and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from pacer.actions.discovery import SchemaCatalog
from pacer.actions.registry import ActionRegistry
from pacer.actions.targets import Targets
from pacer.api.app import ApiLimits, ApiServices
from pacer.definitions import DECLARED, FUNCTIONS, load_jobs_dir
from pacer.domain.tokens import Scope
from pacer.ports import Clock, ResourceSampler
from pacer.samplers.host import HostSampler
from pacer.samplers.sim import SimSampler
from pacer.services.clock import SystemClock
from pacer.services.events import EventService, Retention
from pacer.services.jobs import DEFINITIONS, JobService
from pacer.services.resources import ResourceService
from pacer.services.results import ResultService
from pacer.services.scheduler import Scheduler
from pacer.services.tasks import TaskService
from pacer.services.tokens import TokenService
from pacer.settings import Settings
from pacer.sim.live import LiveSim
from pacer.sim.scenarios import scenario
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.dialects import NOTIFY_CHANNEL
from pacer.stores.sqlalchemy.events import SqlEventLog
from pacer.stores.sqlalchemy.migrate import check_url, unusable, upgrade
from pacer.stores.sqlalchemy.resources import SqlWindowStore
from pacer.stores.sqlalchemy.results import SqlResultStore
from pacer.stores.sqlalchemy.store import transient
from pacer.stores.sqlalchemy.tokens import SqlTokenStore
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
    tokens: TokenService
    results: ResultService
    events: EventService
    resources: ResourceService
    catalog: SchemaCatalog
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
        return ApiServices(
            self.store,
            self.jobs,
            self.tasks,
            self.actions,
            self.clock,
            tokens=self.tokens,
            results=self.results,
            catalog=self.catalog,
            events=self.events,
            resources=self.resources,
            limits=ApiLimits(
                max_delay_ms=self.settings.max_delay_ms,
                sse_keepalive_s=self.settings.sse_keepalive_s,
            ),
        )

    async def listen(self, stop: asyncio.Event) -> None:
        """Relay cross-process wake-ups (PostgreSQL only; SQLite is one process)."""
        if self.store.dialect.notify:
            await listen_postgresql(self.store.url, NOTIFY_CHANNEL, self.wakeup, stop)

    async def aclose(self) -> None:
        await self.actions.aclose()
        self.targets.dispose()
        await self.store.close()


@transient
async def _upgrade(url: str) -> None:
    """The start-up migration, retried like every store call: a process started while its
    database restarts (a deploy, a failover) waits for it instead of exiting, which left a
    worker that came up during a PostgreSQL restart dead and its runs undone."""
    await asyncio.to_thread(upgrade, url)


async def migrate_store(url: str) -> None:
    """Bring the store to the newest schema, through a short outage. A store that cannot be
    used (``unusable``) is a ``StoreUnavailable`` naming it with its password masked, so the
    CLI prints one line instead of a driver's traceback."""
    check_url(url)
    try:
        await _upgrade(url)
    except Exception as exc:
        error = unusable(url, exc)
        if error is None:
            raise
        raise error from exc


async def build(
    settings: Settings, clock: Clock | None = None, *, migrate: bool = True, sync_jobs: bool = True
) -> Container:
    """Migrate the store, load job definitions, and (scheduler roles) write them to the store,
    stopping the jobs that left the jobs folder.

    Workers load the definitions too, for the python functions, but leave the writing to
    the scheduler so that many processes starting at once do not race to create a job.
    """
    if migrate:
        await migrate_store(settings.database_url)
    clock = clock or SystemClock()
    store = SqlStore(settings.database_url)
    targets = Targets(settings.targets)
    specs = load_jobs_dir(settings.jobs_dir) if settings.jobs_dir is not None else []
    names = {spec.name for spec in specs}
    specs += [spec for name, spec in DECLARED.items() if name not in names]
    catalog = SchemaCatalog(targets)
    live = LiveSim(scenario(settings.sim_scenario)) if settings.resource_sampler == "sim" else None
    actions = ActionRegistry.default(targets, FUNCTIONS, settings.base_url(), catalog, live)
    scheduler = Scheduler(store, actions, clock)
    jobs = JobService(store, actions, clock, on_change=scheduler.changed.set)
    adhoc_delay = timedelta(milliseconds=settings.adhoc_delay_ms)
    tasks = TaskService(store, actions, clock, adhoc_delay)
    retention = Retention(settings.event_keep_s, settings.event_hard_s)
    events = EventService(SqlEventLog(store.engine, store.dialect), clock, retention)
    resources = ResourceService(
        _sampler(settings, live),
        SqlWindowStore(store.engine, store.dialect),
        clock,
        settings.resource_window_s,
        settings.resource_sample_s,
    )
    store.on_events.append(events.notify)
    tokens = TokenService(SqlTokenStore(store.engine), clock)
    results = ResultService(SqlResultStore(store.engine, store.dialect), clock)
    container = Container(
        settings,
        store,
        targets,
        actions,
        clock,
        jobs,
        scheduler,
        tasks,
        tokens,
        results,
        catalog=catalog,
        events=events,
        resources=resources,
    )
    store.on_enqueued.append(container.wakeup.notify)
    try:
        if sync_jobs:  # server roles; one-shot CLI commands leave definitions and tokens be
            # Only a start that read a jobs folder stops the folder's jobs missing from it: one
            # without has nothing to compare with (say, a scheduler started without
            # --jobs-dir beside others started with it).
            await jobs.sync(specs, DEFINITIONS, stop_missing=settings.jobs_dir is not None)
            await _first_tokens(settings, tokens)
    except BaseException:
        await container.aclose()
        raise
    return container


def _sampler(settings: Settings, live: LiveSim | None) -> ResourceSampler | None:
    if settings.resource_sampler == "host":
        return HostSampler(settings.host_disk_mb_s, settings.host_processes)
    if live is not None:
        return SimSampler(live)
    return None


async def _first_tokens(settings: Settings, tokens: TokenService) -> None:
    """``PACER_ADMIN_TOKEN`` becomes a live admin token; with no token at all and an
    ``admin_token_file`` configured, one is made and written there for the user to read."""
    if settings.admin_token:
        await tokens.ensure("admin (PACER_ADMIN_TOKEN)", Scope.ADMIN, settings.admin_token)
    path = settings.admin_token_file
    if path is None or await tokens.list():
        return
    _, secret = await tokens.create("admin (first start)", Scope.ADMIN)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    log.warning("created an admin API token; it is in %s", path.resolve())


@contextlib.asynccontextmanager
async def running(
    settings: Settings, clock: Clock | None = None, *, sync_jobs: bool = True
) -> AsyncIterator[Container]:
    container = await build(settings, clock, sync_jobs=sync_jobs)
    try:
        yield container
    finally:
        await container.aclose()
