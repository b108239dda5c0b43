"""Random upstream failures: a seeded share of provider requests fails, for the soak benchmark.

Injected faults (`app.sandbox.faults`) fail the next *n* requests, for tests that need one
particular failure. A soak needs the other kind: every request to a provider fails with
probability `rate`, at random, the way a provider's fleet fails while it deploys or sheds
load. The draws come from a `random.Random(seed)`, so the *n*-th provider request of a run
fails or not the same way on every run with the same seed (which request is the *n*-th
depends on timing under concurrency; the share and the mix do not).

The mix (`FAILURE_MIX`) is what real providers answer when they fail transiently: mostly
503 (overloaded, or a deploy draining the instance: what Twilio's and SignalWire's edges and
most cloud load balancers send), then 502 (the load balancer lost the instance behind it),
then 504 (it timed out waiting for one). Each with the provider's own JSON error body. It
leaves out 500, a provider's bug for that request and not transient (the gateway does not
retry it, and neither should it: the same request fails again), 429 (rate limiting is a
policy with its own `Retry-After`, not random failure), and connection resets (an ASGI app
cannot reset its own connection: resets need a server of their own).

``GET /_sandbox/chaos`` answers the counts (requests per provider, failures per status), so a
benchmark in another process can count the upstream requests the gateway made.
"""

from __future__ import annotations

import random
from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.sandbox.errors import fault_body
from app.sandbox.faults import Fault

#: Status of a random failure and its weight (see the module docstring for why these).
FAILURE_MIX: tuple[tuple[int, int], ...] = ((503, 60), (502, 30), (504, 10))

#: Where the counts are served (no provider's path begins like this).
STATS_PATH = "/_sandbox/chaos"


class Chaos:
    """Decides, per provider request, whether it fails at random; counts what it saw.

    `rate` 0 (the default) fails nothing, but the requests are still counted.
    """

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("failure rate must be between 0 and 1")
        self.rate = rate
        self.seed = seed
        self._random = random.Random(seed)
        self._statuses = [status for status, _ in FAILURE_MIX]
        self._weights = [weight for _, weight in FAILURE_MIX]
        #: Requests drawn for, per provider ("twilio", "signalwire", "bird", "s3").
        self.requests: Counter[str] = Counter()
        #: Random failures answered, per HTTP status.
        self.failures: Counter[int] = Counter()

    def draw(self, provider: str | None) -> Fault | None:
        """The failure to answer this request with, or None to serve it.

        The middleware asks for every provider request that no injected fault answered:
        those are the ones counted. Requests not to a provider (`provider` None) are neither
        counted nor failed."""
        if provider is None:
            return None
        self.requests[provider] += 1
        if self.rate == 0.0 or self._random.random() >= self.rate:
            return None
        status = self._random.choices(self._statuses, self._weights)[0]
        self.failures[status] += 1
        body, content_type = fault_body(provider, status)
        return Fault(provider, status, remaining=1, body=body, content_type=content_type)

    def stats(self) -> dict[str, object]:
        """The counts so far, as ``GET /_sandbox/chaos`` answers them."""
        return {
            "rate": self.rate,
            "seed": self.seed,
            "requests": dict(self.requests),
            "failures": {str(status): count for status, count in self.failures.items()},
        }

    def route(self) -> Route:
        """``GET /_sandbox/chaos``: the counts as JSON."""

        async def answer(request: Request) -> JSONResponse:
            return JSONResponse(self.stats())

        return Route(STATS_PATH, answer, methods=["GET"])
