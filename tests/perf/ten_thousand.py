"""Issue 16's data set and processes, shared by its benchmarks (``test_export_perf``,
``test_stats_perf`` and ``test_export_vs_stats_perf``): ~10,000 recordings over the three
sandbox providers, 50 ms added to every upstream answer, the sandbox and the gateway each in
its own process on loopback, so the gateway's CPU time and RSS are read apart from the
sandbox's. One place, so that the export and the stats are measured over the same data by
the same set-up."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psutil

from app.sandbox import DEMO
from tests.perf.processes import Server, started
from tests.support import sandbox_env

LATENCY = 0.05
#: Recordings per sandbox provider: 10,003 listed (Twilio does not list its soft-deleted ones).
PER_PROVIDER = 3390
#: The export's page size (GATEWAY_MAX_PAGE_SIZE's default); Bird's adapter caps it at 99.
PAGE_SIZE = 100


@contextlib.contextmanager
def serving(latency: float = LATENCY) -> Iterator[tuple[Server, Server]]:
    """The sandbox (``latency`` per answer, ``PER_PROVIDER`` recordings each) and a gateway
    (``serve``, its default memory cache) pointed at it: ``(sandbox, gateway)``."""
    sandbox_args = ["sandbox", "--latency", str(latency), "--recordings", str(PER_PROVIDER)]
    with started(sandbox_args) as sandbox:
        env = sandbox_env(DEMO, sandbox.url) | {"GATEWAY_MAX_PAGE_SIZE": str(PAGE_SIZE)}
        with started(["serve"], env) as gateway:
            yield sandbox, gateway


def cpu(process: psutil.Process) -> float:
    """The process's CPU seconds so far (user + system)."""
    times = process.cpu_times()
    return float(times.user + times.system)


class PeakRss:
    """The peak RSS of a process while the block runs, sampled every 5 ms in a thread."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
