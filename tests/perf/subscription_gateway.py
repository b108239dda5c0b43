"""A gateway process for the subscription benchmark: ``create_app`` from the environment, with
the tests' publishing hook (``tests.events.support.with_publisher``), under uvicorn with
uvloop and httptools as ``serve`` runs it. Never part of the product: the hook stands in for
the webhook receivers, which publish inside a replica.

    python -m tests.perf.subscription_gateway PORT
"""

from __future__ import annotations

import sys

import uvicorn

from app.main import create_app
from app.settings import Settings
from tests.events.support import with_publisher


def main() -> None:
    port = int(sys.argv[1])
    app = with_publisher(create_app(Settings.from_env()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
