"""``serve``'s garbage collector settings (``app.cli.tune_gc``) let go of past requests' garbage.

A request's garbage is a cycle holding everything it resolved (graphql-core's execution
context), alive across a few collections while the request runs, so it reaches the oldest
generation. This runs in a child process (the settings are process-wide): requests of
5,000 objects, three in flight at a time, and how many finished ones wait uncollected.
With the thresholds (20000, 50, 100) it was 235 (tests/perf/README.md: 313 MB of RSS after
1,000 queries of 500 recordings); with (2000, 10, 10), 45.
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
print(gc.get_freeze_count() > 0, waiting)
"""


def test_finished_requests_wait_for_a_full_collection_only_briefly() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    frozen, waiting = out.stdout.split()
    assert frozen == "True"  # what the process built before serving is never scanned again
    assert int(waiting) < 100, f"{waiting} finished requests uncollected at once"
