"""``serve``'s garbage collector settings (``app.cli.tune_gc``): the start-up heap frozen,
CPython's own thresholds, and past requests' cycles collected promptly.

Frozen, what the process built before serving is never scanned again (under load, the
longest full collection took 64 ms instead of 176 ms). The thresholds are Python's: a
request leaves no cycles of its own (tests/test_no_cycles.py) and raising them measured no
gain. What cycles remain (graphql-core's execution context, one per operation) must still
be collected soon after their request. This runs in a child process (the settings are
process-wide): requests of 5,000 objects in a cycle, three in flight at a time, and counts
how many finished ones wait uncollected at once: 19 with Python's thresholds, 45 with
(2000, 10, 10), 235 with (20000, 50, 100) (tests/perf/README.md: 313 MB of RSS after 1,000
queries of 500 recordings).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import gc, weakref
from collections import deque
from app.cli import tune_gc

tune_gc()


class Request:
    def __init__(self):
        self.cycle = self
        self.results = [[n] for n in range(5_000)]


uncollected = set()
in_flight = deque(maxlen=3)
waiting = 0
for n in range(2_000):
    request = Request()
    uncollected.add(n)
    weakref.finalize(request, uncollected.discard, n)
    in_flight.append(request)
    del request
    waiting = max(waiting, len(uncollected) - len(in_flight))
print(gc.get_freeze_count() > 0, waiting, *gc.get_threshold())
"""


def run(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_the_start_up_heap_is_frozen_and_the_thresholds_are_pythons() -> None:
    frozen, waiting, *thresholds = run(CHILD)
    assert frozen == "True"  # what the process built before serving is never scanned again
    assert thresholds == run("import gc; print(*gc.get_threshold())")  # a fresh interpreter's
    assert int(waiting) < 100, f"{waiting} finished requests uncollected at once"
