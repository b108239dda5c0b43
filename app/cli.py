"""``recording-gateway serve [--demo]`` runs the gateway; ``sandbox`` runs the stand-ins;
``keys new`` makes an API key.

Without client auth configured (no API keys, no JWT), ``serve`` only listens on a loopback
address, unless told ``--insecure-no-auth``: it then says so at start and every minute.
``serve --demo`` is open on loopback; bound beyond it, it makes a key for the run and
requires it.

**Shutdown.** On SIGTERM (or Ctrl-C) ``serve`` drains: uvicorn's own graceful shutdown, with
``timeout_graceful_shutdown`` set to ``GATEWAY_SHUTDOWN_GRACE``. What uvicorn 0.54 does, found
by experiment and checked by tests/test_shutdown.py on a real process:

- It closes its listening sockets first: a new connection is refused at once.
- It asks every open connection to close once its response is sent: an idle keep-alive
  connection is closed at once (it does not hold the shutdown), a busy one after its
  response (the client may not reuse it).
- It waits for those connections, up to the grace: a media stream or a GraphQL request in
  flight completes. Then it cancels what is left (a cut stream: the client gets fewer bytes
  than the Content-Length; uvicorn logs the cancellation, with a traceback per task).
- Only then does it run the lifespan's shutdown, which closes the upstream transport and the
  cache: a stream that finishes within the grace never reads from a closed transport. After a
  cut, the lifespan's shutdown starts while the cancelled tasks unwind (uvicorn does not wait
  for them); they only tear down.
- It then re-raises the signal with the handler found before it started. Python's default for
  SIGTERM would end the process as killed (status 143) after a clean drain, so ``_run``
  installs one that exits 0; it also makes a SIGTERM before uvicorn serves a clean stop.

uvicorn types the grace as whole seconds but uses it as ``asyncio.wait_for``'s timeout, so a
fraction works (the tests use 0.5 s). An orchestrator must wait longer than the grace before
it kills: Docker's ``docker stop`` waits 10 s unless given ``-t``; Kubernetes waits 30 s."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from app import logs
from app.access.keys import key_hash, new_key
from app.errors import ConfigError
from app.settings import DEFAULT_TENANT, TENANT_NAME, Settings, is_loopback

OPEN_WARNING = (
    "serving on {host} WITHOUT client auth (--insecure-no-auth): anyone who reaches the port "
    "reads every recording"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m app``."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _new_key(args.tenant)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"recording-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    # httpx logs every upstream request at INFO: one line per provider call is noise (and CPU)
    # in the gateway's log; the access log already has one line per client request.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    host = args.host or settings.host
    if args.command == "sandbox":
        return _sandbox(
            host,
            args.port or 9000,
            latency=args.latency,
            count=args.recordings,
            failure_rate=args.failure_rate,
        )
    return _serve(
        settings, host, args.port or settings.port, demo=args.demo, insecure=args.insecure_no_auth
    )


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
    keys = commands.add_parser("keys", help="API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="print a new API key and the line for the config")
    new.add_argument("--tenant", default=DEFAULT_TENANT, help="the tenant it is for")
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


def _serve(settings: Settings, host: str, port: int, *, demo: bool, insecure: bool) -> int:
    from app.main import create_app
    from app.providers import REGISTRY, configured

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
        warn = None if settings.client_auth or is_loopback(host) else OPEN_WARNING
        try:
            app = create_app(settings, open_warning=warn and warn.replace("{host}", host))
        except ConfigError as exc:
            print(f"recording-gateway: configuration error: {exc}", file=sys.stderr)
            return 2
        _run(app, host, port, settings)
        return 0

    from app.demo import banner, demo_query, demo_settings
    from app.sandbox import DEMO, create_sandbox_app

    sandbox = create_sandbox_app(DEMO)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{local}:{port}"
    api_key = None if is_loopback(host) else new_key()
    sample_ids = sandbox.state.sandbox.sample_ids()
    try:
        app = create_app(
            demo_settings(settings, f"{base}/sandbox", DEMO, api_key=api_key),
            sandbox=sandbox,
            graphiql_default=demo_query(sample_ids),
        )
    except ConfigError as exc:  # e.g. GATEWAY_PERSISTED_QUERIES_FILE
        print(f"recording-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    print(banner(base, sample_ids, api_key), flush=True)
    _run(app, host, port, settings)
    return 0


def _run(app: Starlette, host: str, port: int, settings: Settings) -> None:
    tune_gc()
    # uvicorn re-raises the SIGTERM it drained on once it is done: exit 0 then, as drained.
    signal.signal(signal.SIGTERM, _drained)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=logs.uvicorn_config(settings.log_format),
        # Typed int, used as asyncio.wait_for's timeout: a fraction works (tests/test_shutdown.py).
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
    host: str, port: int, *, latency: float, count: int | None, failure_rate: float
) -> int:
    from dataclasses import replace

    from app.sandbox import DEMO, create_sandbox_app

    try:
        config = replace(DEMO, latency=latency, failure_rate=failure_rate)
        if count is not None:
            config = replace(config, recordings_per_provider=count)
    except ValueError as exc:  # e.g. a failure rate above 1
        print(f"recording-gateway: {exc}", file=sys.stderr)
        return 2
    sandbox = create_sandbox_app(config)
    print(f"Sandbox providers at http://{host}:{port} (Twilio, SignalWire and Bird paths)")
    print(f"Sample ids: {sandbox.state.sandbox.sample_ids()}", flush=True)
    uvicorn.run(sandbox, host=host, port=port)
    return 0
