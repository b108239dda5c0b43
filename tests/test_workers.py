"""``recording-gateway serve --workers N``, run as an operator runs it: real processes, real
sockets.

uvicorn's supervisor (the process started) spawns N workers that share its listening socket;
the kernel hands each new connection to one of them. Which worker answered a response is read
from the log: with several workers every line names its pid, and the access line names the
request id that the response carries (``X-Request-Id``). Each helper below asks on fresh
connections until both workers have answered (a bounded number of tries), never sleeps.

What must hold across workers (``app/cli.py`` says why): every worker answers; a media link
minted by one is served by the other (one signing key, the demo's too); the demo's sandboxes
hold the same recordings; a rate limit is one budget (Redis), and is refused with memory;
SIGTERM drains every worker and ends them all within the grace; ``/metrics`` answers for the
whole gateway, whichever worker takes the scrape, and its files go with the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pydoc
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor

from app.logs import uvicorn_config
from app.models import Provider
from app.sandbox import DEMO
from tests.access.support import bearer
from tests.media.support import MEDIA_QUERY, media_variables
from tests.metrics.support import Scrape
from tests.support import RECORDING_QUERY, sandbox_env
from tests.test_cli import PROVIDERS, STARTUP_TIMEOUT, cli, server
from tests.test_shutdown import CUT, LIFESPAN_DONE, MARGIN, WAITING, Gateway, Upstream
from tests.test_shutdown import upstream as upstream  # the fixture: the sandbox behind a gate

#: Fresh connections tried before concluding that a worker never answers: the kernel wakes
#: both workers for each one, so the first few reach both.
TRIES = 200
ACCESS = re.compile(r"\[pid=(\d+)\] \[tenant=[^\]]*\] \[request=([^\]\s]+)\]")
STARTED = re.compile(r"Started server process \[(\d+)\]")
STARTUP_DONE = "Application startup complete"

#: The demo's own providers, as the sandbox knows them (their account and token).
PROVIDERS_DEMO = sandbox_env(DEMO)

workers_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]  # None: any free port


class Workers(Gateway):
    """``serve --workers 2 ARGS``: the supervisor's process, its output, its workers' pids."""

    def close(self) -> None:
        """SIGTERM, as the supervisor must be stopped for it to stop its workers (killed, it
        would leave them running, holding the output pipe open); then what is left is killed."""
        if self.process.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        super().close()

    def wait_until(self, done: Callable[[], bool], timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                assert not self._ended and left > 0, f"gave up waiting in:\n{''.join(self.lines)}"
                self._changed.wait(left)

    def pids(self) -> set[int]:
        """The workers' pids, as each logged its start."""
        return {int(found[1]) for line in self.lines if (found := STARTED.search(line))}

    def pid_of(self, response: httpx.Response) -> int:
        """The pid of the worker that answered ``response``: its access line names it."""
        marker = f"[request={response.headers['x-request-id']}]"

        def logged() -> str | None:
            return next(
                (line for line in self.lines if marker in line and "HTTP/1.1" in line), None
            )

        self.wait_until(lambda: logged() is not None)
        found = ACCESS.search(logged() or "")
        assert found is not None, logged()
        return int(found[1])

    def by_worker(self, ask: Callable[[], httpx.Response]) -> dict[int, httpx.Response]:
        """The first answer of each worker to ``ask`` (which opens a fresh connection)."""
        answers: dict[int, httpx.Response] = {}
        for _ in range(TRIES):
            response = ask()
            answers.setdefault(self.pid_of(response), response)
            if len(answers) == 2:
                return answers
        raise AssertionError(f"{TRIES} connections reached only {set(answers)}:\n{self.output}")


@contextlib.contextmanager
def workers(env: Mapping[str, str], *args: str) -> Iterator[Workers]:
    """``serve --workers 2``, yielded once both workers have started their app."""
    running = Workers(env, "--workers", "2", *args)
    try:
        running.wait_until(lambda: running.output.count(STARTUP_DONE) == 2)
        assert len(running.pids()) == 2 and running.process.pid not in running.pids()
        yield running
    finally:
        running.close()


def post(
    url: str, query: str, variables: Mapping[str, Any], key: str | None = None
) -> httpx.Response:
    headers = bearer(key) if key else {}
    body = {"query": query, "variables": dict(variables)}
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- the flag -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"), [("0", "at least 1"), ("-2", "at least 1"), ("two", "whole number")]
)
def test_workers_must_be_a_whole_number_from_one(value: str, says: str) -> None:
    done = cli("serve", "--workers", value, env=PROVIDERS)
    assert done.returncode == 2
    assert "--workers" in done.stderr and says in done.stderr, done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr


def test_one_worker_by_default_serves_in_the_process_itself() -> None:
    # uvicorn's own variable for its default worker count is not ours: one worker still.
    with server("serve", env=PROVIDERS | {"WEB_CONCURRENCY": "2"}) as gateway:
        assert httpx.get(f"{gateway.url}/livez").status_code == 200
    assert gateway.output.count("Started server process") == 1
    assert "Started parent process" not in gateway.output and "[pid=" not in gateway.output


def test_a_rate_limit_in_memory_is_refused_with_several_workers() -> None:
    env = PROVIDERS | {"GATEWAY_RATE_LIMIT": "10/minute"}
    done = cli("serve", "--workers", "2", env=env)
    assert done.returncode == 2
    assert "10/minute" not in done.stderr  # says why, not what
    for reason in ("--workers 2 with a rate limit", "2 times its limit", "GATEWAY_CACHE_URL=redis"):
        assert reason in done.stderr, done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr


# --- two workers, one gateway ---------------------------------------------------------------


def test_both_workers_answer_and_a_link_minted_by_one_is_served_by_the_other(
    upstream: Upstream,
) -> None:
    rid = upstream.sandbox.sample_ids()["twilio"]
    variables = media_variables(Provider.TWILIO, rid)
    with workers(sandbox_env(DEMO, upstream.url)) as gateway:
        recordings = gateway.by_worker(
            lambda: post(gateway.url, RECORDING_QUERY, {"provider": "TWILIO", "id": rid})
        )
        minted = gateway.by_worker(lambda: post(gateway.url, MEDIA_QUERY, variables))
        links = {
            pid: answer.json()["data"]["recording"]["media"]["url"]
            for pid, answer in minted.items()
        }
        # Each worker's link, fetched until each worker has served it.
        served = {
            (minter, server): response
            for minter, link in links.items()
            for server, response in gateway.by_worker(lambda link=link: httpx.get(link)).items()  # type: ignore[misc]
        }
        pids = gateway.pids()
    assert set(recordings) == pids
    [one, two] = [answer.json() for answer in recordings.values()]
    assert one == two and one["data"]["recording"]["id"] == rid
    assert set(served) == {(a, b) for a in pids for b in pids}  # across workers too
    assert {response.status_code for response in served.values()} == {200}
    assert len({response.content for response in served.values()}) == 1


def test_sigterm_drains_every_worker_then_ends_them_all(upstream: Upstream) -> None:
    rid = upstream.sandbox.sample_ids()["twilio"]
    query = {"provider": "TWILIO", "id": rid}
    with workers(sandbox_env(DEMO, upstream.url)) as gateway, contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1))
        pids = gateway.pids()
        upstream.gate.opened.clear()
        answer = pool.submit(post, gateway.url, RECORDING_QUERY, query)
        assert upstream.gate.arrived.wait(timeout=30)  # one worker waits on the provider
        sent = gateway.terminate()
        gateway.wait_for(WAITING)  # that worker drains; the other has nothing to wait for
        assert gateway.process.poll() is None
        upstream.gate.opened.set()
        response = answer.result(timeout=30)
        code = gateway.exit_code(timeout=MARGIN)
        exited = time.monotonic()
    assert response.json()["data"]["recording"]["id"] == rid
    assert code == 0, gateway.output
    assert gateway.output.count(LIFESPAN_DONE) == 2 and CUT not in gateway.output
    assert all(gone(pid) for pid in pids)
    print(f"\n2 workers, one request held: exit {exited - sent:.2f} s after SIGTERM")


def test_sigterm_ends_every_worker_within_the_grace(upstream: Upstream) -> None:
    grace = 0.5
    rid = upstream.sandbox.sample_ids()["twilio"]
    env = sandbox_env(DEMO, upstream.url) | {"GATEWAY_SHUTDOWN_GRACE": str(grace)}
    with workers(env) as gateway, contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1))
        pids = gateway.pids()
        upstream.gate.opened.clear()
        answer = pool.submit(post, gateway.url, RECORDING_QUERY, {"provider": "TWILIO", "id": rid})
        assert upstream.gate.arrived.wait(timeout=30)
        sent = gateway.terminate()
        code = gateway.exit_code(timeout=grace + MARGIN)  # the provider never answers meanwhile
        exited = time.monotonic()
        upstream.gate.opened.set()
        # Cut before its response began: uvicorn answers a plain 500, as with one worker.
        assert answer.result(timeout=30).status_code == 500
    assert grace <= exited - sent < grace + MARGIN
    assert code == 0, gateway.output
    assert CUT in gateway.output and gateway.output.count(LIFESPAN_DONE) == 2
    assert all(gone(pid) for pid in pids)
    print(f"\n2 workers, grace {grace} s: exited {exited - sent:.2f} s after SIGTERM")


# --- the demo -------------------------------------------------------------------------------


def test_the_demo_with_two_workers_serves_one_dataset_one_key_and_one_signing_key() -> None:
    """Beyond loopback, so that the printed key (its hash handed to each worker) is needed."""
    config = PROVIDERS_DEMO
    with workers({}, "--demo", "--host", "0.0.0.0") as demo:
        demo.wait_for("Paste this query")
        [key] = re.findall(r"Authorization: Bearer (rgk_\S+)", demo.output)
        ids = dict(re.findall(r"(\w+): recording\(provider: \w+, id: \"([^\"]+)\"\)", demo.output))
        listing = f"/sandbox/2010-04-01/Accounts/{config['TWILIO_ACCOUNT_SID']}/Recordings.json"
        auth = (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])
        sandboxes = demo.by_worker(lambda: httpx.get(f"{demo.url}{listing}", auth=auth))
        anonymous = post(demo.url, RECORDING_QUERY, {"provider": "BIRD", "id": ids["bird"]})
        answers = demo.by_worker(
            lambda: post(demo.url, RECORDING_QUERY, {"provider": "BIRD", "id": ids["bird"]}, key)
        )
        minted = demo.by_worker(
            lambda: post(
                demo.url, MEDIA_QUERY, media_variables(Provider.TWILIO, ids["twilio"]), key
            )
        )
        links = [answer.json()["data"]["recording"]["media"]["url"] for answer in minted.values()]
        served = [demo.by_worker(lambda link=link: httpx.get(link)) for link in links]  # type: ignore[misc]
    # Each worker's sandbox lists the same recordings.
    [first, second] = [response.json() for response in sandboxes.values()]
    assert first["recordings"] and first["recordings"] == second["recordings"]
    assert ids["twilio"] in {r["sid"] for r in first["recordings"]}
    assert anonymous.status_code == 401
    [one, two] = [answer.json() for answer in answers.values()]
    assert "errors" not in one and one == two and one["data"]["recording"]["id"] == ids["bird"]
    # A link minted by either worker is served by both: one signing key for the run.
    assert all(set(each) == demo.pids() for each in served)
    assert {r.status_code for each in served for r in each.values()} == {200}


# --- one rate budget in Redis ---------------------------------------------------------------


def test_with_redis_a_rate_limit_is_one_budget_for_both_workers(
    workers_redis: RedisExecutor, upstream: Upstream
) -> None:
    limit = 4
    rid = upstream.sandbox.sample_ids()["bird"]
    env = sandbox_env(DEMO, upstream.url) | {
        "GATEWAY_RATE_LIMIT": f"{limit}/minute",
        "GATEWAY_CACHE_URL": f"redis://{workers_redis.host}:{workers_redis.port}/0",
    }
    statuses: dict[int, list[int]] = {}
    with workers(env) as gateway:

        def ask() -> httpx.Response:
            response = post(gateway.url, RECORDING_QUERY, {"provider": "BIRD", "id": rid})
            statuses.setdefault(gateway.pid_of(response), []).append(response.status_code)
            return response

        gateway.by_worker(ask)
        while sum(len(each) for each in statuses.values()) < 3 * limit:
            ask()
    answered = [status for each in statuses.values() for status in each]
    assert answered.count(200) == limit and set(answered) == {200, 429}, statuses
    assert len(statuses) == 2


# --- one /metrics for the gateway -----------------------------------------------------------

#: Where the supervisor makes its directory for the workers' metric files (tempfile's TMPDIR).
METRICS_DIRS = "recording-gateway-metrics-*"
#: Scrapes taken at least, and until both workers have taken one.
SCRAPES = 6


def requests_total(scrape: Scrape) -> float:
    """GraphQL requests counted, over every operation and outcome."""
    return sum(
        value
        for (name, _), value in scrape.samples.items()
        if name == "gateway_graphql_requests_total"
    )


def breaker_pids(scrape: Scrape) -> set[int]:
    """The workers whose breakers the scrape shows (``liveall``: one series per worker)."""
    return {int(pid) for pid in scrape.label_values("gateway_breaker_state", "pid")}


def test_every_scrape_counts_every_workers_requests_and_never_goes_down(
    upstream: Upstream, tmp_path: Path
) -> None:
    rid = upstream.sandbox.sample_ids()["twilio"]
    env = sandbox_env(DEMO, upstream.url) | {"TMPDIR": str(tmp_path)}
    secrets = [value for name, value in env.items() if name.endswith(("TOKEN", "KEY", "KEYS"))]
    assert secrets
    sent = 0
    with workers(env) as gateway:

        def ask() -> httpx.Response:
            nonlocal sent
            sent += 1
            return post(gateway.url, RECORDING_QUERY, {"provider": "TWILIO", "id": rid})

        answered = gateway.by_worker(ask)  # both workers have counted some
        scrapes: list[tuple[int, int, Scrape]] = []  # (requests sent, worker, its scrape)
        for _ in range(TRIES):
            ask()
            response = httpx.get(f"{gateway.url}/metrics", timeout=30)
            assert response.status_code == 200
            scrapes.append((sent, gateway.pid_of(response), Scrape.parse(response.text)))
            if len(scrapes) >= SCRAPES and {pid for _, pid, _ in scrapes} == gateway.pids():
                break
        [metrics_dir] = tmp_path.glob(METRICS_DIRS)
        files = {path.name for path in metrics_dir.iterdir()}
    assert set(answered) == gateway.pids()
    assert {pid for _, pid, _ in scrapes} == gateway.pids(), "both workers took a scrape"
    totals = [requests_total(scrape) for _, _, scrape in scrapes]
    # Each scrape: every request of both workers, and no scrape itself (not GraphQL).
    assert totals == [float(count) for count, _, _ in scrapes]
    assert totals == sorted(totals) and totals[0] > len(answered)
    for _, _, scrape in scrapes:
        assert scrape.value(
            "gateway_graphql_request_duration_seconds_count", operation="anonymous"
        ) == (requests_total(scrape))
        # Gauges merged as app.metrics says: one series for the gateway, or one per worker.
        assert scrape.value("gateway_cache_available") == 1.0
        assert scrape.value("gateway_media_active_streams") == 0.0
        assert breaker_pids(scrape) == gateway.pids()
        assert rid not in scrape.text
        assert not [value for value in secrets if value in scrape.text]
    # Each worker kept its values in the run's directory; gone with the run.
    assert {f"counter_{pid}.db" for pid in gateway.pids()} <= files
    assert not list(tmp_path.glob(METRICS_DIRS))


def test_a_restarted_worker_keeps_its_counts_and_drops_its_gauges_and_sigterm_removes_the_files(
    upstream: Upstream, tmp_path: Path
) -> None:
    rid = upstream.sandbox.sample_ids()["twilio"]
    env = sandbox_env(DEMO, upstream.url) | {"TMPDIR": str(tmp_path)}
    sent = 0
    with workers(env) as gateway:

        def ask() -> httpx.Response:
            nonlocal sent
            sent += 1
            return post(gateway.url, RECORDING_QUERY, {"provider": "TWILIO", "id": rid})

        first = set(gateway.by_worker(ask))
        ended = min(first)
        os.kill(ended, signal.SIGTERM)  # it drains and ends; the supervisor starts another
        gateway.wait_until(lambda: gateway.output.count(STARTUP_DONE) == 3)
        running = gateway.pids() - {ended}
        # Fresh connections, whichever worker takes them.
        scrapes = [
            Scrape.parse(httpx.get(f"{gateway.url}/metrics", timeout=30).text)
            for _ in range(SCRAPES)
        ]
        assert len(list(tmp_path.glob(METRICS_DIRS))) == 1
        gateway.terminate()
        code = gateway.exit_code(timeout=MARGIN + 1)
    assert len(running) == 2 and first <= gateway.pids() and gone(ended)
    for scrape in scrapes:
        assert requests_total(scrape) == sent  # the ended worker's requests still count
        assert breaker_pids(scrape) == running  # its gauges went with it
    assert code == 0, gateway.output
    assert not list(tmp_path.glob(METRICS_DIRS)), "the run's metric files are removed"


# --- the pid in each line -------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_with_workers_each_line_names_its_pid(log_format: str) -> None:
    """What ``serve --workers N`` configures: uvicorn's lines (access log included) carry the
    pid of the worker that logs, as text or as a JSON field."""
    spec = dict(uvicorn_config(log_format, pid=True)["formatters"]["default"])
    factory = spec.pop("()")
    built = pydoc.locate(factory) if isinstance(factory, str) else factory
    assert isinstance(built, type) and issubclass(built, logging.Formatter)
    formatter = built(**spec)
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "%s", ("hi",), None)
    record.tenant, record.request_id = "-", "r-1"
    line = formatter.format(record)
    if log_format == "json":
        assert json.loads(line)["pid"] == os.getpid()
    else:
        assert f"[pid={os.getpid()}] [tenant=-] [request=r-1]" in line
