"""``python -m tests.perf.pinned_sandbox --port N --latency S --recordings N --anchor ISO``: the
sandbox as ``python -m app sandbox`` serves it (no callbacks, no lifecycle clock, no failures),
with the anchor of its data given rather than read from the clock.

Why: issue 16's benchmarks run one sandbox process per provider (``ten_thousand.serving``), as
real providers are separate services; each process seeds the same deterministic data set from
the same seed, and only a shared anchor makes it the same data set in all of them, even when
the processes start on either side of midnight UTC. ``app sandbox`` has no option for the
anchor (the demo's data is meant to follow the clock), so the benchmarks start this instead.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime

import uvicorn

from app.sandbox import DEMO, create_sandbox_app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.pinned_sandbox")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--recordings", type=int, default=DEMO.recordings_per_provider)
    parser.add_argument("--anchor", type=datetime.fromisoformat, required=True)
    args = parser.parse_args(argv)
    config = replace(
        DEMO,
        latency=args.latency,
        recordings_per_provider=args.recordings,
        anchor=args.anchor,
        public_url=f"http://127.0.0.1:{args.port}",
    )
    uvicorn.run(create_sandbox_app(config), host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
