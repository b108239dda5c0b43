"""``recording-gateway serve [--demo]`` runs the gateway; ``sandbox`` runs the stand-ins;
``keys new`` makes an API key; ``export`` writes a running gateway's recordings as CSV or NDJSON
(``app.export.cli``).

Without client auth configured (no API keys, no JWT), ``serve`` only listens on a loopback
address, unless told ``--insecure-no-auth``: it then says so at start and every minute.
``serve --demo`` is open on loopback; bound beyond it, it makes a key for the run and
requires it. Its sandbox's recordings change state every ``--lifecycle-interval`` seconds
and each change is pushed, signed, to the gateway's own ``/webhooks/<provider>/default``
(at ``GATEWAY_PUBLIC_URL`` when set), whose signing keys the demo configures to match.

**Shutdown.** On SIGTERM (or Ctrl-C) ``serve`` drains: uvicorn's own graceful shutdown, with
``timeout_graceful_shutdown`` set to ``GATEWAY_SHUTDOWN_GRACE``. What uvicorn 0.54 does, found
by experiment and checked by tests/test_shutdown.py on a real process:

- It closes its listening sockets first: a new connection is refused at once.
- It asks every open connection to close once its response is sent: an idle keep-alive
  connection is closed at once (it does not hold the shutdown), a busy one after its
  response (the client may not reuse it).
- It waits for those connections, up to the grace: a media stream or a GraphQL request in
  flight completes. Then it cancels what is left (a cut stream: the client gets fewer bytes
  than the Content-Length; uvicorn logs each cancellation with a traceback, which
  ``app.logs.QuietCut`` turns into one WARNING line).
- Only then does it run the lifespan's shutdown, which closes the upstream transport and the
  cache: a stream that finishes within the grace never reads from a closed transport. After a
  cut, the lifespan's shutdown starts while the cancelled tasks unwind (uvicorn does not wait
  for them); they only tear down.
- It then re-raises the signal with the handler found before it started. Python's default for
  SIGTERM would end the process as killed (status 143) after a clean drain, so ``_run``
  installs one that exits 0; it also makes a SIGTERM before uvicorn serves a clean stop.

uvicorn types the grace as whole seconds but uses it as ``asyncio.wait_for``'s timeout, so a
fraction works (the tests use 0.5 s). An orchestrator must wait longer than the grace before
it kills: Docker's ``docker stop`` waits 10 s unless given ``-t``; Kubernetes waits 30 s.

**Workers.** ``serve --workers N`` (default 1) runs N processes on one listening socket,
through uvicorn's own supervisor: uvicorn can only fork workers from an import string, so each
worker calls the factory ``worker_app``. A worker is a fresh interpreter (uvicorn spawns, it
does not fork): it reads the settings from the environment itself, as the first process did,
and what the command line decided (host, port, demo, the open warning, the demo key's hash)
from ``WORKER_PLAN``, a JSON variable with no secret in it. The first process builds the app
once before it starts any worker, so a bad configuration stops it with one clear message
rather than N failing workers; it then only supervises (uvicorn restarts a worker that dies).
On SIGTERM it sends SIGTERM to every worker (uvicorn's supervisor looks at its signals every
0.5 s: give an orchestrator the grace plus a second), and each drains as above, with the same
grace; it exits 0 once they all have. A worker that fails to start stops the supervisor too
(uvicorn's rule: it would fail again), but its exit status is then 0 as well: the log says
why. Each log line then names its worker's pid (``[pid=…]``, a ``pid`` field in JSON).

What is per worker, and why that is correct or refused:

- **Shared through the environment**: every setting, and the signing keys, so a media link
  or a cursor minted by one worker is honoured by another. The demo has no configured key:
  the first process makes one for the run and hands it to the workers as
  ``GATEWAY_SIGNING_KEYS`` (a key per worker would make half the links fail). The demo's API
  key (beyond loopback) travels as its hash.
- **The demo's sandbox**: each worker mounts its own at ``/sandbox``; the demo data is
  deterministic for its anchor (the start of the UTC day, which the first process reads and
  hands on in ``WORKER_PLAN``), so every worker serves the same recordings under the same ids
  (a worker's provider call may land on another worker's sandbox, which answers the same).
  For that reason its recordings' clock (``--lifecycle-interval``) is off with several
  workers: a recording one worker's sandbox created would be missing from the others'.
- **Per worker, correct**: the memory recording cache (each caches what it fetched, bounded
  by the same TTLs; N workers mean up to N upstream fetches of a key, and N copies in
  memory: use Redis to share one), the memory persisted-query store (a client told
  ``PersistedQueryNotFound`` by another worker sends the document again, as APQ expects),
  the upstream connection pool, each account's breaker (a failing account opens each
  worker's breaker after the same count of that worker's failures) and retry budget (a
  ratio of retries to calls, which holds in each worker as overall).
- **Metrics, merged**: ``/metrics`` answers for the whole gateway, whichever worker takes the
  scrape: prometheus-client's multiprocess mode (``app.metrics`` says how each metric
  merges). The supervisor makes a fresh directory for the run's metric files (a temporary
  directory, removed when it exits, SIGTERM included) and hands it to the workers as
  ``PROMETHEUS_MULTIPROC_DIR``; its own metrics are never served.
- **Refused**: rate limits with a memory store. Each worker would count in its own memory,
  and a tenant would get N times its limit; with a rate limit configured, ``--workers`` above
  1 needs ``GATEWAY_CACHE_URL=redis://…`` (one budget in Redis for every worker and replica).
  If Redis fails, the limiter fails open in every worker, as with one."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Secret

from app import logs
from app.access.keys import key_hash, new_key
from app.errors import ConfigError
from app.export import cli as export_cli
from app.metrics import MULTIPROC_DIR
from app.settings import DEFAULT_TENANT, TENANT_NAME, Settings, is_loopback

if TYPE_CHECKING:
    from app.sandbox import Sandbox, SandboxConfig

OPEN_WARNING = (
    "serving on {host} WITHOUT client auth (--insecure-no-auth): anyone who reaches the port "
    "reads every recording"
)
#: Seconds between two steps of the demo sandbox's recordings, unless told otherwise.
DEMO_LIFECYCLE_INTERVAL = 10.0
#: The environment variable that carries the command line's decisions to each worker.
WORKER_PLAN = "RECORDING_GATEWAY_WORKER_PLAN"


@dataclass(frozen=True)
class Plan:
    """What ``serve`` decided beyond the settings: where it listens, demo or not, the open
    warning to repeat, the demo key's hash. Each worker rebuilds the same app from it."""

    host: str
    port: int
    demo: bool = False
    open_warning: str | None = None
    demo_key_hash: str | None = None
    #: Seconds between two ticks of the demo sandbox's recordings (0: they never change).
    lifecycle_interval: float = 0.0
    #: The demo data's anchor (ISO 8601), read once by the first process: every worker then
    #: serves the same recordings, even one started after midnight UTC.
    demo_anchor: str | None = None

    @property
    def base_url(self) -> str:
        """Where the process itself is reached (the demo's sandbox is under it)."""
        local = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{local}:{self.port}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m app``."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _new_key(args.tenant)
    if args.command == "export":  # a client of a running gateway: no settings of its own
        return export_cli.run(args)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"recording-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    workers = getattr(args, "workers", 1)
    _configure_logging(settings, pid=workers > 1)
    host = args.host or settings.host
    if args.command == "sandbox":
        return _sandbox(
            host,
            args.port or 9000,
            latency=args.latency,
            count=args.recordings,
            failure_rate=args.failure_rate,
            callbacks=args.callback_url,
            lifecycle_interval=args.lifecycle_interval,
        )
    return _serve(
        settings,
        host,
        args.port or settings.port,
        demo=args.demo,
        insecure=args.insecure_no_auth,
        workers=workers,
        lifecycle_interval=args.lifecycle_interval,
    )


def _configure_logging(settings: Settings, *, pid: bool) -> None:
    logs.configure(settings.log_format, pid=pid)
    # httpx logs every upstream request at INFO: one line per provider call is noise (and CPU)
    # in the gateway's log; the access log already has one line per client request.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _workers(value: str) -> int:
    """``--workers``: a whole number from 1."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of processes, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least 1 process, got {count}")
    return count


def _interval(value: str) -> float:
    """``--lifecycle-interval``: seconds, 0 for none."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, got {value!r}") from None
    if not seconds >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"0 (off) or more seconds, got {value!r}")
    return seconds


def _callback_url(value: str) -> tuple[str | None, str]:
    """``--callback-url``: ``URL`` (a gateway's base) or ``NAME=URL`` (a provider or an
    account id), as (name or None, URL)."""
    name: str | None = None
    url = value
    if not value.startswith(("http://", "https://")):
        name, _, url = value.partition("=")
    if not url.startswith(("http://", "https://")) or name == "":
        raise argparse.ArgumentTypeError(
            f"URL or PROVIDER=URL (twilio, signalwire, bird, or an account id) with an http(s) "
            f"URL, got {value!r}"
        )
    return name, url


def callback_urls(given: Sequence[tuple[str | None, str]]) -> dict[str, str]:
    """The sandbox's callback URLs from ``--callback-url`` values, in order (later wins): a bare
    URL is a gateway's base, to which each provider's ``/webhooks/<provider>/default`` is
    appended; ``NAME=URL`` is one provider's account 0 (or the account of that id)."""
    from app.sandbox.config import PROVIDERS

    urls: dict[str, str] = {}
    for name, url in given:
        if name is None:
            urls |= {p: f"{url.rstrip('/')}/webhooks/{p}/default" for p in PROVIDERS}
        else:
            urls[name] = url
    return urls


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recording-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (default GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default GATEWAY_PORT or 8000)")
    serve.add_argument(
        "--demo", action="store_true", help="serve the built-in sandbox providers; no credentials"
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve beyond loopback although no API key or JWT is configured (anyone reads all)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes on the one port (default 1; see the module's doc for what each "
        "holds)",
    )
    serve.add_argument(
        "--lifecycle-interval",
        type=_interval,
        default=DEMO_LIFECYCLE_INTERVAL,
        metavar="SECONDS",
        help="with --demo: seconds between two steps of the sandbox's recordings, each change "
        f"pushed to the gateway's webhooks (default {DEMO_LIFECYCLE_INTERVAL:g}; 0: off; off "
        "with --workers above 1)",
    )
    keys = commands.add_parser("keys", help="API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="print a new API key and the line for the config")
    new.add_argument("--tenant", default=DEFAULT_TENANT, help="the tenant it is for")
    export_cli.add_arguments(
        commands.add_parser("export", help="export recordings as CSV or NDJSON from a gateway")
    )
    sandbox = commands.add_parser("sandbox", help="run only the sandbox providers")
    sandbox.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, help="port (default 9000)")
    sandbox.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer (benchmarks)"
    )
    sandbox.add_argument(
        "--recordings", type=int, default=None, help="recordings seeded per provider (default 36)"
    )
    sandbox.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        help="share of provider requests failed at random with 503/502/504, seeded (soak tests)",
    )
    sandbox.add_argument(
        "--callback-url",
        type=_callback_url,
        action="append",
        default=[],
        metavar="[PROVIDER=]URL",
        help="where status callbacks go, signed as the provider signs them: PROVIDER=URL (twilio, "
        "signalwire, bird, or an account id) for one account; a bare URL is a gateway, each "
        "provider's callbacks going to URL/webhooks/<provider>/default. Repeatable",
    )
    sandbox.add_argument(
        "--lifecycle-interval",
        type=_interval,
        default=None,
        metavar="SECONDS",
        help="seconds between two steps of the recordings' lifecycle (default "
        f"{DEMO_LIFECYCLE_INTERVAL:g} with a --callback-url, else 0: off)",
    )
    return parser


def _new_key(tenant: str) -> int:
    if not TENANT_NAME.fullmatch(tenant):
        print(
            f"recording-gateway: {tenant!r} cannot name a tenant: use letters, digits, "
            "'.', '_' or '-' (at most 64)",
            file=sys.stderr,
        )
        return 2
    key = new_key()
    print(f"API key for tenant {tenant!r} (shown once; give it to the client):\n  {key}\n")
    if tenant == DEFAULT_TENANT:
        print(f"Add its hash to GATEWAY_API_KEYS (comma-separated):\n  sha256:{key_hash(key)}")
    else:
        print(
            f"Add its hash to the config, in [tenants.{tenant}]:\n"
            f'  api_keys = ["sha256:{key_hash(key)}"]'
        )
    return 0


def _serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool,
    insecure: bool,
    workers: int = 1,
    lifecycle_interval: float = 0.0,
) -> int:
    from app.providers import REGISTRY, configured

    # Each worker has a sandbox of its own: a recording one of them created would be missing
    # from the others, so with several workers the demo's recordings stay as seeded.
    lively = demo and workers == 1
    plan = Plan(host, port, demo=demo, lifecycle_interval=lifecycle_interval if lively else 0.0)
    if not demo:
        if not settings.client_auth and not is_loopback(host) and not insecure:
            print(
                f"recording-gateway: refusing to serve on {host} without client auth: anyone "
                "reaching the port would read every recording. Set GATEWAY_API_KEYS (see "
                "'recording-gateway keys new'), or a config with api_keys or [auth.jwt]; bind "
                "to 127.0.0.1; or pass --insecure-no-auth.",
                file=sys.stderr,
            )
            return 2
        if not configured(settings):
            *others, last = [f"{name.name}_*" for name in REGISTRY]
            print(
                f"recording-gateway: no provider is configured. Set {', '.join(others)} or "
                f"{last} credentials (see README), or run 'recording-gateway serve --demo'.",
                file=sys.stderr,
            )
            return 2
        if not (settings.client_auth or is_loopback(host)):
            plan = replace(plan, open_warning=OPEN_WARNING.replace("{host}", host))
        api_key = None
    else:
        from app.sandbox import DEMO

        plan = replace(plan, demo_anchor=DEMO.anchor_at(datetime.now(UTC)).isoformat())
        api_key = None if is_loopback(host) else new_key()
        if api_key is not None:
            plan = replace(plan, demo_key_hash=key_hash(api_key))
        if not settings.signing_keys:
            # One key for the run, the same in every worker: a link minted by one is served
            # by any (never in argv: workers read it from their environment).
            key = secrets.token_urlsafe(32)
            settings = replace(settings, signing_keys=(Secret(key),))
            if workers > 1:
                os.environ["GATEWAY_SIGNING_KEYS"] = key
    if workers > 1 and _limited_in_memory(_effective(settings, plan)):
        print(
            f"recording-gateway: --workers {workers} with a rate limit needs a shared store: "
            "each worker would count in its own memory, and a tenant would get "
            f"{workers} times its limit. Set GATEWAY_CACHE_URL=redis://host:port/db, or "
            "serve with one worker.",
            file=sys.stderr,
        )
        return 2
    try:
        app, sandbox = _build(settings, plan)
    except ConfigError as exc:  # e.g. GATEWAY_PERSISTED_QUERIES_FILE
        print(f"recording-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    if sandbox is not None:
        from app.demo import banner

        print(banner(plan.base_url, sandbox.sample_ids(), api_key), flush=True)
        print(_lifecycle_note(plan, demo_callback_base(settings, plan), workers), flush=True)
    if workers == 1:
        _run(app, host, port, settings)
    else:
        # Built to check the configuration only: each worker builds its own.
        del app, sandbox
        os.environ[WORKER_PLAN] = json.dumps(asdict(plan))
        _run_workers(workers, host, port, settings)
    return 0


def _effective(settings: Settings, plan: Plan) -> Settings:
    """The settings the app is built with: the demo's, pointed at its own sandbox."""
    if not plan.demo:
        return settings
    from app.demo import demo_settings
    from app.sandbox import DEMO

    demo = demo_settings(settings, f"{plan.base_url}/sandbox", DEMO)
    if plan.demo_key_hash is None:
        return demo
    return replace(demo, api_keys=(plan.demo_key_hash,))


def demo_callback_base(settings: Settings, plan: Plan) -> str:
    """Where the demo's sandbox sends its callbacks: the gateway, at the URL it verifies
    signatures over (``GATEWAY_PUBLIC_URL`` when set, as a provider would call it)."""
    return (settings.public_url or plan.base_url).rstrip("/")


def demo_sandbox_config(settings: Settings, plan: Plan) -> SandboxConfig:
    """The demo's sandbox: the demo credentials, its recordings stepping every
    ``plan.lifecycle_interval`` seconds with each change called back to the gateway's
    ``/webhooks/<provider>/default``, signed with the keys ``demo_settings`` hands the gateway."""
    from app.sandbox import DEMO

    urls = callback_urls([(None, demo_callback_base(settings, plan))])
    anchor = datetime.fromisoformat(plan.demo_anchor) if plan.demo_anchor else None
    return replace(
        DEMO,
        anchor=anchor,
        callback_urls=urls,
        lifecycle_interval=plan.lifecycle_interval,
        public_url=f"{plan.base_url}/sandbox",
    )


def _lifecycle_note(plan: Plan, base: str, workers: int) -> str:
    if plan.lifecycle_interval > 0:
        return (
            f"The demo's recordings change state every {plan.lifecycle_interval:g} s and push "
            f"signed callbacks to {base}/webhooks/<provider>/default."
        )
    if workers > 1:
        return "The demo's recordings stay as seeded: with --workers above 1 there is no clock."
    return "The demo's recordings stay as seeded (--lifecycle-interval 0)."


def _limited_in_memory(settings: Settings) -> bool:
    """Whether some tenant has a rate limit that would be counted in each process's memory."""
    limited = any(tenant.rate_limit for tenant in settings.tenant_settings().values())
    return limited and settings.cache.kind != "redis"


def _build(settings: Settings, plan: Plan) -> tuple[Starlette, Sandbox | None]:
    """The app ``plan`` asks for (and the demo's sandbox); ConfigError if it cannot be."""
    from app.main import create_app

    if not plan.demo:
        return create_app(settings, open_warning=plan.open_warning), None
    from app.demo import demo_query
    from app.sandbox import create_sandbox_app
    from app.sandbox.lifecycle import LifecycleMiddleware

    sandbox_app = create_sandbox_app(demo_sandbox_config(settings, plan))
    sandbox: Sandbox = sandbox_app.state.sandbox
    app = create_app(
        _effective(settings, plan),
        sandbox=sandbox_app,
        graphiql_default=demo_query(sandbox.sample_ids()),
    )
    # Mounted, the sandbox gets no lifespan of its own: its clock runs in the gateway's.
    app.add_middleware(LifecycleMiddleware, lifecycle=sandbox.lifecycle)
    return app, sandbox


def worker_app() -> Starlette:
    """uvicorn's app factory, called in each worker of ``serve --workers N``: the same app
    as the first process built, from the same environment and its ``WORKER_PLAN``."""
    plan = Plan(**json.loads(os.environ[WORKER_PLAN]))
    settings = Settings.from_env()
    _configure_logging(settings, pid=True)
    app, _ = _build(settings, plan)
    tune_gc()
    return app


def _run(app: Starlette, host: str, port: int, settings: Settings) -> None:
    tune_gc()
    # uvicorn re-raises the SIGTERM it drained on once it is done: exit 0 then, as drained.
    signal.signal(signal.SIGTERM, _drained)
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,  # not uvicorn's WEB_CONCURRENCY: an app object runs in this process only
        log_config=logs.uvicorn_config(settings.log_format),
        access_log=settings.access_log,
        # Typed int, used as asyncio.wait_for's timeout: a fraction works (tests/test_shutdown.py).
        timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
    )


def _run_workers(workers: int, host: str, port: int, settings: Settings) -> None:
    """uvicorn's supervisor over ``workers`` processes, each running ``worker_app``. It
    handles SIGTERM itself (it stops every worker, waits for them, and returns).

    The workers' metric files go to a directory of this run's own, made before any worker
    starts (each worker's prometheus-client reads the variable at its import) and removed
    once they have all stopped."""
    signal.signal(signal.SIGTERM, _drained)  # until uvicorn's supervisor takes it over
    with tempfile.TemporaryDirectory(prefix="recording-gateway-metrics-") as metrics_dir:
        os.environ[MULTIPROC_DIR] = metrics_dir
        uvicorn.run(
            "app.cli:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=logs.uvicorn_config(settings.log_format, pid=True),
            access_log=settings.access_log,
            timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
        )


def _drained(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: before it serves, or re-raised after it shut
    down. Either way nothing is in flight: the process ends as a clean stop, status 0."""
    raise SystemExit(0)


def tune_gc() -> None:
    """Freeze what is built before serving, once the app is built; CPython's own thresholds.

    Everything built so far (modules, schema, app) lives as long as the process: frozen, it
    is never scanned again. Under a cached-``recording`` load (32 clients, 4,800 requests),
    the longest full collection took 64 ms instead of 176 ms, collections 0.52 s instead of
    1.84 s in all, a request 0.65 ms of CPU instead of 0.77 ms; p99 88 ms instead of 193 ms.

    The thresholds stay Python's: a request leaves no garbage of its own in reference
    cycles (tests/test_no_cycles.py), only graphql-core's execution context and tenacity's
    retrying object, each holding nothing of the request. Raising the first threshold to
    2,000 halved the number of full collections but made no difference measurable in CPU
    per request or p99, for a cached ``recording`` or a 100-ref batch (tests/perf/README.md).
    """
    gc.collect()
    gc.freeze()


def _sandbox(
    host: str,
    port: int,
    *,
    latency: float,
    count: int | None,
    failure_rate: float,
    callbacks: Sequence[tuple[str | None, str]] = (),
    lifecycle_interval: float | None = None,
) -> int:
    from app.sandbox import DEMO, create_sandbox_app

    urls = callback_urls(callbacks)
    if lifecycle_interval is None:
        lifecycle_interval = DEMO_LIFECYCLE_INTERVAL if urls else 0.0
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        config = replace(
            DEMO,
            latency=latency,
            failure_rate=failure_rate,
            callback_urls=urls,
            lifecycle_interval=lifecycle_interval,
            public_url=f"http://{local}:{port}",
        )
        if count is not None:
            config = replace(config, recordings_per_provider=count)
        sandbox = create_sandbox_app(config)
    except ValueError as exc:  # e.g. a failure rate above 1, a callback for no account
        print(f"recording-gateway: {exc}", file=sys.stderr)
        return 2
    print(f"Sandbox providers at http://{host}:{port} (Twilio, SignalWire and Bird paths)")
    print(f"Sample ids: {sandbox.state.sandbox.sample_ids()}", flush=True)
    if lifecycle_interval > 0:
        where = ", ".join(f"{name} -> {url}" for name, url in urls.items()) or "nowhere"
        print(
            f"Recordings change state every {lifecycle_interval:g} s; callbacks: {where}",
            flush=True,
        )
    uvicorn.run(sandbox, host=host, port=port)
    return 0
