"""Issue 16's data set and processes, shared by its benchmarks (``test_export_perf``,
``test_stats_perf`` and ``test_export_vs_stats_perf``): ~10,000 recordings over the three
sandbox providers, 50 ms added to every upstream answer, the sandbox and the gateway each in
its own process on loopback, so the gateway's CPU time and RSS are read apart from the
sandbox's. One place, so that the export and the stats are measured over the same data by
the same set-up.

By default each provider has a sandbox process of its own (the gateway's TWILIO_BASE_URL,
SIGNALWIRE_SPACE_URL and BIRD_BASE_URL each point at one), as real providers are separate
services: Twilio building a page of 1000 does not delay Bird's answers. With
``per_provider=False`` one process serves all three, as before (the CPU of one provider's page
then holds up the others'). Every process seeds the same deterministic data from the same seed
and the same anchor, pinned here once (``tests.perf.pinned_sandbox``), so both rigs serve the
same 10,003 listed recordings."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from app.models import Provider
from app.providers import REGISTRY
from app.sandbox import DEMO
from tests.perf.processes import Server, started
from tests.support import sandbox_env

LATENCY = 0.05
#: Recordings per sandbox provider: 10,003 listed (Twilio does not list its soft-deleted ones).
PER_PROVIDER = 3390
#: The export's page size (GATEWAY_MAX_PAGE_SIZE's default); Bird's adapter caps it at 99.
PAGE_SIZE = 100


@dataclass(frozen=True)
class Sandboxes:
    """The sandbox processes behind the gateway, by the provider each serves it."""

    by_provider: Mapping[Provider, Server]

    def env(self) -> dict[str, str]:
        """The environment that points each provider at its own process."""
        first = next(iter(self.by_provider.values()))
        env = sandbox_env(DEMO, first.url)
        for provider, server in self.by_provider.items():
            env |= REGISTRY[provider].sandbox(DEMO, server.url)
        return env

    def processes(self) -> list[psutil.Process]:
        """Each sandbox process once."""
        pids = sorted({server.pid for server in self.by_provider.values()})
        return [psutil.Process(pid) for pid in pids]

    def cpu(self) -> float:
        """The CPU seconds of all the sandbox processes so far (user + system)."""
        return sum(cpu(process) for process in self.processes())


@contextlib.contextmanager
def serving(
    latency: float = LATENCY, *, per_provider: bool = True
) -> Iterator[tuple[Sandboxes, Server]]:
    """The sandbox, one process per provider unless ``per_provider`` is False (``latency`` per
    answer, ``PER_PROVIDER`` recordings each), and a gateway (``serve``, its default memory
    cache) pointed at it: ``(sandboxes, gateway)``."""
    anchor = DEMO.anchor_at(datetime.now(UTC)).isoformat()
    args = ["--latency", str(latency), "--recordings", str(PER_PROVIDER), "--anchor", anchor]
    with contextlib.ExitStack() as stack:

        def sandbox() -> Server:
            return stack.enter_context(started(args, module="tests.perf.pinned_sandbox"))

        if per_provider:
            sandboxes = Sandboxes({provider: sandbox() for provider in REGISTRY})
        else:
            shared = sandbox()
            sandboxes = Sandboxes({provider: shared for provider in REGISTRY})
        env = sandboxes.env() | {"GATEWAY_MAX_PAGE_SIZE": str(PAGE_SIZE)}
        gateway = stack.enter_context(started(["serve"], env))
        yield sandboxes, gateway


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
