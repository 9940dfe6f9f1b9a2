"""``HostSampler``: CPU, disk IO and memory of this machine, or of the database's processes.

IO has no natural 100 %: it is reported as the bytes read and written per second as a share of
a configured throughput (``PACER_HOST_DISK_MB_S``), which is what the operator knows the disk
sustains. With ``processes`` set (names such as ``postgres``), CPU and memory are those
processes' share of the machine, so another program on the host does not count against the
database.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psutil

from pacer.domain.resources import Sample


class HostSampler:
    def __init__(self, disk_mb_s: float = 200.0, processes: Sequence[str] = ()) -> None:
        self.disk_bytes_s = disk_mb_s * 1_000_000
        self.processes = tuple(processes)
        self._last_io = self._io_bytes()
        self._last_at = time.monotonic()
        self._cpu_count = psutil.cpu_count() or 1
        self._tracked: dict[int, psutil.Process] = {}
        psutil.cpu_percent(None)  # the first call only starts psutil's interval

    def sample(self, at: float) -> Sample:
        """Utilization since the previous call, stamped ``at``."""
        now = time.monotonic()
        io_bytes = self._io_bytes()
        elapsed = max(now - self._last_at, 1e-6)
        io = 100.0 * (io_bytes - self._last_io) / elapsed / self.disk_bytes_s
        self._last_io, self._last_at = io_bytes, now
        cpu, memory = self._cpu_and_memory()
        return Sample(at=at, cpu=_cap(cpu), io=_cap(io), memory=_cap(memory))

    def _cpu_and_memory(self) -> tuple[float, float]:
        if not self.processes:
            return psutil.cpu_percent(None), psutil.virtual_memory().percent
        cpu = memory = 0.0
        for process in self._matching():
            try:
                cpu += process.cpu_percent(None) / self._cpu_count
                memory += process.memory_percent()
            except psutil.Error:
                self._tracked.pop(process.pid, None)
        return cpu, memory

    def _matching(self) -> list[psutil.Process]:
        """The named processes; each is kept, since psutil measures CPU between calls."""
        for process in psutil.process_iter(["name"]):
            if process.info["name"] in self.processes and process.pid not in self._tracked:
                self._tracked[process.pid] = process
                process.cpu_percent(None)
        return list(self._tracked.values())

    @staticmethod
    def _io_bytes() -> int:
        counters = psutil.disk_io_counters()
        return 0 if counters is None else counters.read_bytes + counters.write_bytes


def _cap(value: float) -> float:
    return min(100.0, max(0.0, value))
