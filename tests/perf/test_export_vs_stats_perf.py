"""Issue 16's comparison: ``recordingStats`` against the export, over the same ~10,000
recordings, in one run: a sandbox process per provider, as real providers are separate
services, and one gateway process (``ten_thousand.serving``: 50 ms per upstream answer), this
process the client; with ``--one-sandbox``, one sandbox process serving all three providers
(the earlier rig: one provider's page-building then delays the others' answers). Rounds
alternate (export, stats, export, stats...), so both see the same machine load; each figure is
a median over the rounds.

Per operation: the wall time from the client (the export: the whole CSV streamed, as
``test_export_perf.export``; the stats: ``recordingStats(groupBy: [PROVIDER])`` over an open
period, so no cache answers, as ``test_stats_perf.ask``), the gateway's and the sandbox's CPU
time (psutil; the sandbox processes' summed), and the load average (``os.getloadavg``, what
``uptime`` shows) at each round.
The floor both are read against: the fewest sequential page round trips of the export's walk
(Bird's pages of 99 follow one another: 35 x 50 ms). Goal: the stats no slower than the export.

Asserts that both saw every recording (the stats' counts per provider equal the export's rows),
never a time. Run it with either of:

    python -m pytest tests/perf/test_export_vs_stats_perf.py -s
    python -m tests.perf.test_export_vs_stats_perf [rounds] [--one-sandbox]
"""

from __future__ import annotations

import os
import statistics
import sys
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from tests.perf.ten_thousand import cpu, serving
from tests.perf.test_export_perf import export, exported_rows, floor
from tests.perf.test_stats_perf import ask


@dataclass
class Operation:
    """One kind of operation's figures, a value per round."""

    seconds: list[float] = field(default_factory=list)
    gateway_cpu: list[float] = field(default_factory=list)
    sandbox_cpu: list[float] = field(default_factory=list)

    def line(self, name: str, floor_seconds: float) -> str:
        median = statistics.median(self.seconds)
        return (
            f"  {name:>6}: median {median:5.2f} s (min {min(self.seconds):.2f}, max "
            f"{max(self.seconds):.2f}) = {median / floor_seconds:.2f}x the floor; CPU per "
            f"operation: gateway {statistics.median(self.gateway_cpu) * 1000:.0f} ms, sandbox "
            f"{statistics.median(self.sandbox_cpu) * 1000:.0f} ms"
        )


@dataclass
class Comparison:
    export: Operation = field(default_factory=Operation)
    stats: Operation = field(default_factory=Operation)
    ratios: list[float] = field(default_factory=list)  # stats / export, per round
    loads: list[float] = field(default_factory=list)  # 1-minute load average, per round
    floor: float = 0.0
    rows: int = 0
    per_provider: bool = True  # one sandbox process per provider, else one for all three

    def report(self) -> str:
        ratios = sorted(self.ratios)
        return "\n".join(
            [
                f"export and recordingStats over the same {self.rows} recordings, "
                f"{'a sandbox process per provider' if self.per_provider else 'one sandbox'}, "
                f"{len(self.ratios)} interleaved rounds; load average "
                f"{min(self.loads):.2f}-{max(self.loads):.2f}; floor {self.floor:.2f} s",
                self.export.line("export", self.floor),
                self.stats.line("stats", self.floor),
                f"  stats / export, per round: median {statistics.median(ratios):.2f}x "
                f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})",
            ]
        )


def compare(rounds: int, *, per_provider: bool = True) -> Comparison:
    result = Comparison(per_provider=per_provider)
    with (
        serving(per_provider=per_provider) as (sandboxes, server),
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        gateway = psutil.Process(server.pid)
        export(server.url, {"providers": "BIRD", "statuses": "FAILED"})  # warm-up, both paths
        ask(client, [], {"providers": ["BIRD"], "statuses": ["FAILED"]})
        for _ in range(rounds):
            result.loads.append(os.getloadavg()[0])
            spent = (cpu(gateway), sandboxes.cpu())
            body, _, seconds = export(server.url)
            result.export.gateway_cpu.append(cpu(gateway) - spent[0])
            result.export.sandbox_cpu.append(sandboxes.cpu() - spent[1])
            result.export.seconds.append(seconds)
            exported = exported_rows(body)

            spent = (cpu(gateway), sandboxes.cpu())
            rows, stats_seconds = ask(client, ["PROVIDER"])
            result.stats.gateway_cpu.append(cpu(gateway) - spent[0])
            result.stats.sandbox_cpu.append(sandboxes.cpu() - spent[1])
            result.stats.seconds.append(stats_seconds)
            counted = {row["key"]["provider"]: row["count"] for row in rows}
            assert counted == dict(exported), (counted, exported)

            result.ratios.append(stats_seconds / seconds)
            result.floor = floor(exported)
            result.rows = sum(exported.values())
        result.loads.append(os.getloadavg()[0])
    return result


@pytest.mark.perf
def test_stats_against_the_export() -> None:
    print("\n" + compare(5).report())


if __name__ == "__main__":
    numbers = [arg for arg in sys.argv[1:] if arg != "--one-sandbox"]
    shared = "--one-sandbox" in sys.argv[1:]
    print(compare(int(numbers[0]) if numbers else 9, per_provider=not shared).report())
