"""Running the monitor as a process: wiring, signals, and a clean stop.

SIGTERM and SIGINT set one stop event: the loops are cancelled between batches (a batch in the
middle of its SQLite transaction is never interrupted, since the commit does not yield to the
event loop), the last committed position is acknowledged, and the file is closed. SIGKILL needs
no handler: the store is only ever changed by whole transactions.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from pacer.domain.pacer import PacerConfig
from pacer.monitor.client import MonitorClient
from pacer.monitor.follower import Follower, FollowSettings
from pacer.monitor.offloop import OffLoop
from pacer.monitor.pacing import PacingLoop
from pacer.monitor.store import MonitorStore


async def follow(
    url: str,
    token: str,
    db: Path,
    settings: FollowSettings,
    *,
    keepalive: float = 10.0,
    pace: PacerConfig | None = None,
) -> None:
    """Follow the server at ``url`` into ``db`` until SIGTERM or SIGINT; with ``pace``, also
    run the pacer on every committed batch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = MonitorStore(db, consumer=settings.name)
    # The pacer reads the store on its own connection; both use the file from one thread of
    # their own, never from the loop (``offloop.py``).
    pacer_store = MonitorStore(db, consumer=settings.name) if pace is not None else None
    io = OffLoop()
    client = MonitorClient(url, token, keepalive=keepalive)
    try:
        if pace is None or pacer_store is None:
            await Follower(store, client, settings, io=io).run(stop)
        else:
            pacing = PacingLoop(pacer_store, client, pace, io=io)
            follower = Follower(store, client, settings, on_commit=pacing.committed, io=io)
            await asyncio.gather(follower.run(stop), pacing.run(stop))
    finally:
        await client.aclose()
        io.close()
        store.close()
        if pacer_store is not None:
            pacer_store.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def run(
    url: str,
    token: str,
    db: Path,
    settings: FollowSettings,
    keepalive: float = 10.0,
    pace: PacerConfig | None = None,
) -> None:
    asyncio.run(follow(url, token, db, settings, keepalive=keepalive, pace=pace))
