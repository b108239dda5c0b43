"""The gateway's Prometheus metrics: every metric is declared here, once, on its own registry.

One registry of the gateway's own (not prometheus-client's global one): ``GET /metrics``
serves exactly these, and a test process that builds many apps counts into the same objects
(tests read differences, never absolute values).

**Several workers** (``serve --workers N``): each worker is a process with its own memory, so
the counts are kept in prometheus-client's multiprocess mode. The supervisor makes a fresh
directory for the run and names it in ``PROMETHEUS_MULTIPROC_DIR`` before it spawns any worker
(``app.cli``); prometheus-client reads the variable when it is first imported, and each worker
then keeps its values in files there. A scrape (``exposition``) merges every worker's files
into a fresh registry, whichever worker takes it: counters and histograms are summed over
every worker that ran in the run (a worker restarted by the supervisor leaves its counts, so
a counter never goes down), without ``_created`` samples (prometheus-client has none in this
mode). Each gauge says how its workers' values combine (``multiprocess_mode``); the ``live``
modes count only workers still running: a worker's lifespan ends with ``process_exited``. A
worker killed outright (SIGKILL, or the supervisor killing a hung one) cannot say so: its
last gauge values stay until the run ends. With one process (the default, and every app
built in a test's own process) the variable is unset and the plain registry is served.

Label values are bounded and never carry an id, a token or a secret: providers are
``Provider`` names, tenants are names from the configuration, statuses are HTTP status
codes, operations are GraphQL operation names through ``operation_label`` (bounded); with
workers, ``gateway_breaker_state`` adds prometheus-client's ``pid``, a running worker's.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REGISTRY = CollectorRegistry(auto_describe=True)
#: prometheus-client's variable: the directory of the workers' metric files, or None in one
#: process. Read once, at import, as prometheus-client itself does.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_multiproc_dir = os.environ.get(MULTIPROC_DIR)

#: Seconds: from 5 ms (a cache hit) to the request deadline.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

GRAPHQL_REQUESTS = Counter(
    "gateway_graphql_requests",
    "GraphQL requests answered, by operation name and outcome "
    "(ok, partial: data with errors, error: no data, refused: before GraphQL ran)",
    ["operation", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_DURATION = Histogram(
    "gateway_graphql_request_duration_seconds",
    "Time to answer a GraphQL request, by operation name",
    ["operation"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests",
    "HTTP exchanges with a provider (each attempt and redirect hop), by provider, outcome "
    "(ok, error: an HTTP error status, timeout, network) and HTTP status (empty when none came)",
    ["provider", "outcome", "status"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Time of one provider call, every attempt and the waits between them included",
    ["provider"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries",
    "Provider calls retried, by provider and reason (network, timeout, or the HTTP status)",
    ["provider", "reason"],
    registry=REGISTRY,
)
RETRY_BUDGET_EXHAUSTED = Counter(
    "gateway_upstream_retry_budget_exhausted",
    "Retries not made because the account's retry budget was spent",
    ["provider"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "gateway_breaker_state",
    "Circuit breaker of a provider account: 0 closed, 1 open, 2 half-open (probing)",
    ["tenant", "provider"],
    registry=REGISTRY,
    # Each worker has its own breaker per account: one series per running worker (a ``pid``
    # label), as no merge of 0/1/2 keeps the truth (the max of open and half-open says
    # half-open). ``max by (tenant, provider)`` or ``count(... == 1)`` answer "open anywhere".
    multiprocess_mode="liveall",
)
BREAKER_REJECTED = Counter(
    "gateway_breaker_rejected_calls",
    "Provider calls failed at once because the account's breaker was open",
    ["tenant", "provider"],
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups",
    "Recording cache lookups: hit, miss, stale (served past its TTL because the provider "
    "failed), bypassed (the cache backend is down or cooling down)",
    ["result"],
    registry=REGISTRY,
)
CACHE_AVAILABLE = Gauge(
    "gateway_cache_available",
    "1 while the cache backend answers, 0 during an outage (the cache is then bypassed)",
    registry=REGISTRY,
    # 0 as soon as one running worker bypasses the one backend they share: an outage
    # seen by any worker is an outage.
    multiprocess_mode="livemin",
)
CACHE_OUTAGES = Counter(
    "gateway_cache_outages",
    "Cache backend outages begun (each logged once)",
    registry=REGISTRY,
)
MEDIA_BYTES = Counter(
    "gateway_media_bytes_relayed",
    "Media bytes relayed to clients, by provider",
    ["provider"],
    registry=REGISTRY,
)
MEDIA_ACTIVE = Gauge(
    "gateway_media_active_streams",
    "Media downloads being relayed now",
    registry=REGISTRY,
    # The gateway's streams now: the running workers' added up (a gone worker's are gone).
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "gateway_subscriptions_active",
    "GraphQL subscriptions (recordingEvents) open now, by tenant",
    ["tenant"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "gateway_rate_limit_refusals",
    "Requests refused by a tenant's rate limit",
    ["tenant"],
    registry=REGISTRY,
)

CACHE_AVAILABLE.set(1)


def exposition() -> bytes:
    """The scrape's body: this process's registry, or every worker's files merged."""
    if _multiproc_dir is None:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=_multiproc_dir)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def process_exited() -> None:
    """At a worker's end (its lifespan's shutdown): its ``live`` gauges leave the scrape (its
    counters stay). Nothing with one process."""
    if _multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), path=_multiproc_dir)  # type: ignore[no-untyped-call]
