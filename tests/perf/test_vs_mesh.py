"""Issue 14's figures: the gateway beside GraphQL Mesh v1 (Hive Gateway over Twilio's OpenAPI).

Run on demand (the default test run leaves tests/perf out), from the repository root:

    python -m tests.perf.test_vs_mesh --mesh-dir DIR --spec PATH [--rounds N] [--seconds S] \
        [--access-log on|off]
    MESH_DIR=DIR TWILIO_SPEC=PATH python -m pytest tests/perf/test_vs_mesh.py -s   (a smoke run)

``DIR`` holds Mesh installed from ``tests/perf/mesh/package.json`` (``npm i`` there; its
``node_modules`` stays out of the repository) and ``PATH`` is Twilio's ``twilio_api_v2010.json``
from github.com/twilio/twilio-oai. ``wrk`` must be on the PATH. tests/perf/README.md has the
set-up, the method and the figures.

Every server is its own process on loopback: two sandboxes (no latency and 50 ms added to every
answer), gateways (``recording-gateway serve``: memory cache; ``GATEWAY_CACHE_URL=none://``
for "uncached"), and Mesh from one supergraph per sandbox (composed here from the spec), with
and without its response cache. wrk (2 threads, 32 connections) loads one target at a time:
a warm-up, then the measured run, the targets of a comparison taking turns (A/B, then B/A in
the next round), all comparisons in each round; before the first round, each target gets a
warm-up twice as long (Node's JIT). A Lua script rotates over request bodies: one
body for the cached case, otherwise one per completed Twilio recording of the sandbox, each
wrk thread starting at another offset, so concurrent requests almost never share an id (the
gateway fetches an id once for all the requests that ask for it at the same moment; Mesh does
not). Per run: requests/s, p50 and p99 (wrk's), the target's peak RSS (its process and its
children, ``psutil`` every 50 ms) and its CPU time per request; the load average beside each
round. Medians over rounds; ratios are gateway over Mesh. It asserts only correctness: every
target answers the ids with the right recording, and wrk saw no error.

Hive Gateway writes no line per request (each Mesh process's log is counted and printed when it
stops: its start-up lines only); the gateway writes one access line per request unless
``GATEWAY_ACCESS_LOG=off``. ``--access-log off`` compares like for like; the default, ``on``,
measures the gateway as shipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.sandbox import DEMO, build_dataset
from tests.perf.processes import free_port, started
from tests.support import sandbox_env

HERE = Path(__file__).resolve().parent
MESH_CONFIGS = HERE / "mesh"
RECORDINGS = 1000  # per provider: ~720 completed Twilio recordings to rotate over
LATENCY = 0.05
CONNECTIONS = 32
THREADS = 2
DEFAULT_SECONDS = 15
DEFAULT_WARMUP = 5
DEFAULT_ROUNDS = 3
RSS_EVERY = 0.05
#: The comparisons: one process each (cached; uncached, distinct ids; the same at 50 ms
#: upstream), and two workers against Mesh's ``--fork 2`` (cached and uncached).
CASES = frozenset({"cached", "uncached", "latency", "workers"})
READY_TIMEOUT = 120.0
STOP_GRACE = 10.0

#: The same recording fields asked of both: the gateway's names and Twilio's (Mesh's).
GATEWAY_QUERY = (
    "query One($id: ID!) { recording(provider: TWILIO, id: $id) "
    "{ id callId status durationSeconds startedAt channels source } }"
)
MESH_QUERY = (
    "query One($sid: queryInput_FetchRecording_Sid!) "
    f'{{ FetchRecording(AccountSid: "{DEMO.twilio_account_sid}", Sid: $sid) '
    "{ sid call_sid status duration start_time channels source } }"
)


def completed_ids() -> list[str]:
    """The sandbox's completed Twilio recordings (others have a short TTL or none at all)."""
    dataset = build_dataset(replace(DEMO, recordings_per_provider=RECORDINGS))
    return [r.id for r in dataset.listing("twilio") if r.status == "completed"]


def gateway_body(recording: str) -> str:
    return json.dumps({"query": GATEWAY_QUERY, "variables": {"id": recording}})


def mesh_body(recording: str) -> str:
    return json.dumps({"query": MESH_QUERY, "variables": {"sid": recording}})


def answered_id(kind: str, body: Mapping[str, Any]) -> str | None:
    """The recording id an answer holds, or None when it has errors or no recording."""
    if body.get("errors") or not body.get("data"):
        return None
    if kind == "gateway":
        found = body["data"]["recording"]
        return None if found is None else str(found["id"])
    found = body["data"]["FetchRecording"]
    return None if found is None else str(found["sid"])


def post(url: str, body: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def listening(url: str) -> None:
    """Wait until ``url`` takes connections: with ``--workers``, uvicorn's supervisor says it
    is running once it has bound the socket, and the workers listen when they have started."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            post(f"{url}/graphql", json.dumps({"query": "{ __typename }"}))
            return
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def lua_script(bodies: Sequence[str]) -> str:
    """wrk's script: POST the bodies in turn (each thread from its own offset); print a RESULT."""
    listed = ",\n".join(f"[==[{body}]==]" for body in bodies)
    return f"""
local bodies = {{
{listed}
}}
local count = #bodies
local threads = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  position = (offset or 0) * math.floor(count / {THREADS})
end

function request()
  position = position % count + 1
  return wrk.format(nil, nil, nil, bodies[position])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


# -- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One server under load: its GraphQL URL, process id and wrk script."""

    name: str
    kind: str  # "gateway" or "mesh"
    url: str
    pid: int
    script: Path


def workers_supported() -> bool:
    """Whether this tree's ``recording-gateway serve`` has ``--workers``."""
    out = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return "--workers" in out


@contextlib.contextmanager
def mesh_gateway(
    mesh_dir: Path, run_dir: Path, supergraph: Path, *, cache: bool, fork: int
) -> Iterator[tuple[str, int]]:
    """Hive Gateway serving ``supergraph``; yields its base URL and pid once it is ready."""
    port = free_port()
    config = "gateway-cache.config.ts" if cache else "gateway.config.ts"
    bin_js = mesh_dir / "node_modules" / "@graphql-hive" / "gateway" / "dist" / "bin.js"
    command = ["node", str(bin_js), "supergraph", str(supergraph), "-c", config]
    command += ["--host", "127.0.0.1", "--port", str(port), "--fork", str(fork)]
    env = {**os.environ, "SUPERGRAPH": str(supergraph), "NODE_ENV": "production"}
    log_path = run_dir / f"mesh-{port}.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command,
            cwd=run_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: --fork's workers are stopped with it
        ) as process,
    ):
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"Mesh exited: {log_path.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"{url}/readiness", timeout=2) as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Mesh not ready: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url, process.pid
        finally:
            # --fork 2's primary may outwait its workers' keep-alive connections: the whole
            # group gets SIGTERM, then SIGKILL after a grace period.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with log_path.open() as written:
                print(f"Mesh on port {port} wrote {sum(1 for _ in written)} log lines in all")


def compose(mesh_dir: Path, run_dir: Path, spec: Path, upstream: str, name: str) -> Path:
    """Mesh's supergraph of ``spec`` pointed at ``upstream`` (2-4 s for the full spec)."""
    out = run_dir / name
    bin_js = mesh_dir / "node_modules" / "@graphql-mesh" / "compose-cli" / "esm" / "bin.js"
    env = {
        **os.environ,
        "UPSTREAM_URL": upstream,
        "TWILIO_SPEC": str(spec.resolve()),
        "TWILIO_ACCOUNT_SID": DEMO.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": DEMO.twilio_auth_token,
    }
    subprocess.run(
        ["node", str(bin_js), "-c", "mesh.config.ts", "-o", str(out)],
        cwd=run_dir,
        env=env,
        check=True,
        capture_output=True,
    )
    return out


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one target."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_peak_mb: float  # the process and its children together
    rss_worker_mb: float  # the largest single process
    cpu_us_per_request: float
    load: float  # 1-minute load average at the end of the run


class RssSampler:
    """The peak RSS of a process and its children, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_total = 0
        self.peak_single = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def tree(self) -> list[psutil.Process]:
        return [self.process, *self.process.children(recursive=True)]

    def cpu(self) -> float:
        total = 0.0
        for member in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = member.cpu_times()
                total += times.user + times.system
        return total

    def sample(self) -> None:
        while not self.stopped.wait(RSS_EVERY):
            sizes = []
            for member in self.tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    sizes.append(member.memory_info().rss)
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes, default=0))

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def wrk(target: Target, seconds: int) -> tuple[int, float, float, float, int]:
    """Run wrk; requests, duration (s), p50 and p99 (ms), errors (socket and non-2xx)."""
    command = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s"]
    command += ["--timeout", "10s", "-s", str(target.script), f"{target.url}/graphql"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    requests, duration, p50, p99, socket_errors, status_errors = map(int, line.split()[1:])
    return requests, duration / 1e6, p50 / 1e3, p99 / 1e3, socket_errors + status_errors


def measure(target: Target, seconds: int, warmup: int) -> Run:
    if warmup > 0:
        wrk(target, warmup)
    with RssSampler(target.pid) as sampler:
        cpu_before = sampler.cpu()
        requests, duration, p50, p99, errors = wrk(target, seconds)
        cpu = sampler.cpu() - cpu_before
    mb = 1024 * 1024
    return Run(
        rps=requests / duration,
        p50_ms=p50,
        p99_ms=p99,
        errors=errors,
        rss_peak_mb=sampler.peak_total / mb,
        rss_worker_mb=sampler.peak_single / mb,
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
        load=os.getloadavg()[0],
    )


@dataclass
class Comparison:
    """The gateway against Mesh on one path, and the goal for it."""

    name: str
    gateway: Target
    mesh: Target
    p99_goal: bool  # the goal also asks for p99 <= Mesh's
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"gateway": [], "mesh": []})


def check_answers(target: Target, bodies: Sequence[str], ids: Sequence[str]) -> None:
    """The target answers a few of its bodies with the recording asked for."""
    step = max(1, len(bodies) // 5)
    for body, expected in list(zip(bodies, ids, strict=True))[::step]:
        answer = post(f"{target.url}/graphql", body)
        assert answered_id(target.kind, answer) == expected, (target.name, answer)


def median(runs: Sequence[Run], name: str) -> float:
    return float(statistics.median(getattr(run, name) for run in runs))


def report(comparisons: Sequence[Comparison], rounds: int, seconds: float) -> str:
    lines = [
        f"{rounds} rounds of {seconds:g} s, {CONNECTIONS} connections; medians; "
        "RSS peak: whole process tree (largest single process)",
        "| path | target | rps | p50 ms | p99 ms | CPU us/req | RSS peak MB | errors | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for c in comparisons:
        for side in ("gateway", "mesh"):
            runs = c.runs[side]
            target = getattr(c, side)
            lines.append(
                f"| {c.name} | {target.name} | {median(runs, 'rps'):.0f} "
                f"| {median(runs, 'p50_ms'):.1f} | {median(runs, 'p99_ms'):.1f} "
                f"| {median(runs, 'cpu_us_per_request'):.0f} "
                f"| {max(r.rss_peak_mb for r in runs):.0f} "
                f"({max(r.rss_worker_mb for r in runs):.0f}) "
                f"| {sum(r.errors for r in runs)} "
                f"| {min(r.load for r in runs):.1f}-{max(r.load for r in runs):.1f} |"
            )
        gw, mesh = c.runs["gateway"], c.runs["mesh"]
        rps_ratio = median(gw, "rps") / median(mesh, "rps")
        per_round = [g.rps / m.rps for g, m in zip(gw, mesh, strict=True)]
        p99_ratio = median(gw, "p99_ms") / median(mesh, "p99_ms")
        cpu_ratio = median(gw, "cpu_us_per_request") / median(mesh, "cpu_us_per_request")
        met = rps_ratio >= 1.0 and (not c.p99_goal or p99_ratio <= 1.0)
        worker_rss = max(r.rss_worker_mb for r in gw)
        verdicts.append(
            f"{c.name}: rps {rps_ratio:.2f}x (rounds {min(per_round):.2f}-{max(per_round):.2f}), "
            f"p50 {median(gw, 'p50_ms') / median(mesh, 'p50_ms'):.2f}x, p99 {p99_ratio:.2f}x, "
            f"CPU per request {cpu_ratio:.2f}x; goal "
            f"{'rps >= 1.0x and p99 <= 1.0x' if c.p99_goal else 'rps >= 1.0x'}: "
            f"{'met' if met else 'NOT met'}; gateway RSS per process {worker_rss:.0f} MB "
            f"(goal < 150: {'met' if worker_rss < 150 else 'NOT met'})"
        )
    return "\n".join([*lines, "", *verdicts])


@dataclass(frozen=True)
class Options:
    mesh_dir: Path
    spec: Path
    rounds: int = DEFAULT_ROUNDS
    seconds: int = DEFAULT_SECONDS  # wrk takes whole seconds
    warmup: int = DEFAULT_WARMUP
    cases: frozenset[str] = CASES
    #: The gateway's access log (``GATEWAY_ACCESS_LOG``): on as shipped; Hive Gateway writes
    #: no line per request (the run prints how many lines each Mesh process wrote).
    access_log: bool = True


def benchmark(options: Options) -> list[Comparison]:
    ids = completed_ids()
    one = ids[:1]
    gateway_uncached = {"GATEWAY_CACHE_URL": "none://", "GATEWAY_RESPONSE_CACHE": "off"}
    with contextlib.ExitStack() as stack:
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=options.mesh_dir))
        stack.callback(shutil.rmtree, run_dir, True)
        for config in MESH_CONFIGS.glob("*.ts"):
            shutil.copy(config, run_dir)
        scripts: dict[tuple[str, int], Path] = {}
        for kind, make in (("gateway", gateway_body), ("mesh", mesh_body)):
            for chosen in (one, ids):
                path = run_dir / f"{kind}-{len(chosen)}.lua"
                path.write_text(lua_script([make(i) for i in chosen]))
                scripts[kind, len(chosen)] = path

        def sandbox(latency: float) -> str:
            args = ["sandbox", "--recordings", str(RECORDINGS), "--latency", str(latency)]
            return stack.enter_context(started(args)).url

        def gateway(
            name: str, upstream: str, ids_: Sequence[str], env: Mapping[str, str], workers: int
        ) -> Target:
            args = ["serve"] + (["--workers", str(workers)] if workers > 1 else [])
            switch = {"GATEWAY_ACCESS_LOG": "on" if options.access_log else "off"}
            server = stack.enter_context(
                started(args, {**sandbox_env(DEMO, upstream), **switch, **env})
            )
            listening(server.url)
            target = Target(name, "gateway", server.url, server.pid, scripts["gateway", len(ids_)])
            check_answers(target, [gateway_body(i) for i in ids_], ids_)
            return target

        def mesh(
            name: str, supergraph: Path, ids_: Sequence[str], cache: bool, fork: int
        ) -> Target:
            url, pid = stack.enter_context(
                mesh_gateway(options.mesh_dir, run_dir, supergraph, cache=cache, fork=fork)
            )
            target = Target(name, "mesh", url, pid, scripts["mesh", len(ids_)])
            check_answers(target, [mesh_body(i) for i in ids_], ids_)
            return target

        fast = sandbox(0.0)
        graph_fast = compose(options.mesh_dir, run_dir, options.spec, fast, "fast.graphql")
        comparisons = []
        if "cached" in options.cases:
            comparisons.append(
                Comparison(
                    "cached, one id",
                    gateway("gateway, memory cache", fast, one, {}, 1),
                    mesh("Mesh, response cache", graph_fast, one, True, 1),
                    p99_goal=True,
                )
            )
        if "uncached" in options.cases:
            comparisons.append(
                Comparison(
                    "uncached, distinct ids",
                    gateway("gateway, no cache", fast, ids, gateway_uncached, 1),
                    mesh("Mesh, no cache", graph_fast, ids, False, 1),
                    p99_goal=False,
                )
            )
        if "latency" in options.cases:
            slow = sandbox(LATENCY)
            graph_slow = compose(options.mesh_dir, run_dir, options.spec, slow, "slow.graphql")
            comparisons.append(
                Comparison(
                    "uncached, distinct ids, 50 ms upstream",
                    gateway("gateway, no cache", slow, ids, gateway_uncached, 1),
                    mesh("Mesh, no cache", graph_slow, ids, False, 1),
                    p99_goal=False,
                )
            )
        if "workers" in options.cases and workers_supported():
            comparisons += [
                Comparison(
                    "cached, one id, 2 workers",
                    gateway("gateway --workers 2, memory cache", fast, one, {}, 2),
                    mesh("Mesh --fork 2, response cache", graph_fast, one, True, 2),
                    p99_goal=True,
                ),
                Comparison(
                    "uncached, distinct ids, 2 workers",
                    gateway("gateway --workers 2, no cache", fast, ids, gateway_uncached, 2),
                    mesh("Mesh --fork 2, no cache", graph_fast, ids, False, 2),
                    p99_goal=False,
                ),
            ]
        elif "workers" in options.cases:
            print("recording-gateway serve has no --workers here: 2-worker comparison skipped")

        # Once before the rounds: Node's JIT and the gateway's caches reach their steady state.
        for c in comparisons:
            for warmed in (c.gateway, c.mesh):
                wrk(warmed, 2 * options.warmup)
        print(f"gateway access log: {'on' if options.access_log else 'off'}", flush=True)
        print(f"load average before: {os.getloadavg()}", flush=True)
        for round_ in range(options.rounds):
            for c in comparisons:
                order = ("gateway", "mesh") if round_ % 2 == 0 else ("mesh", "gateway")
                for side in order:
                    target: Target = getattr(c, side)
                    result = measure(target, options.seconds, options.warmup)
                    c.runs[side].append(result)
                    print(
                        f"round {round_ + 1} {c.name} / {target.name}: {result.rps:.0f} rps, "
                        f"p50 {result.p50_ms:.1f} p99 {result.p99_ms:.1f} ms, "
                        f"{result.cpu_us_per_request:.0f} us CPU/req, "
                        f"RSS {result.rss_peak_mb:.0f} MB, errors {result.errors}, "
                        f"load {result.load:.2f}",
                        flush=True,
                    )
        print(f"load average after: {os.getloadavg()}", flush=True)
    return comparisons


def mesh_installed(mesh_dir: str | None) -> bool:
    return (
        bool(mesh_dir)
        and (Path(str(mesh_dir)) / "node_modules" / "@graphql-hive" / "gateway").is_dir()
    )


@pytest.mark.perf
def test_gateway_beside_mesh() -> None:
    """A smoke run: every target answers correctly under wrk, and the figures print."""
    mesh_dir, spec = os.environ.get("MESH_DIR"), os.environ.get("TWILIO_SPEC")
    if not mesh_installed(mesh_dir) or not spec or shutil.which("wrk") is None:
        pytest.skip("needs MESH_DIR (Mesh installed), TWILIO_SPEC and wrk; see tests/perf/README")
    assert mesh_dir is not None
    options = Options(Path(mesh_dir), Path(spec), rounds=1, seconds=2, warmup=1)
    comparisons = benchmark(options)
    print(report(comparisons, options.rounds, options.seconds))
    for c in comparisons:
        for runs in c.runs.values():
            assert [run.errors for run in runs] == [0] * len(runs), c.name
            assert all(run.rps > 0 for run in runs), c.name


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.test_vs_mesh")
    parser.add_argument("--mesh-dir", type=Path, required=True, help="Mesh installed (npm i)")
    parser.add_argument("--spec", type=Path, required=True, help="twilio_api_v2010.json")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--seconds", type=int, default=DEFAULT_SECONDS, help="measured, per run")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="0 for none")
    parser.add_argument(
        "--cases",
        default=",".join(sorted(CASES)),
        help=f"comma-separated, of {', '.join(sorted(CASES))} (default: all)",
    )
    parser.add_argument(
        "--access-log",
        choices=("on", "off"),
        default="on",
        help="the gateway's GATEWAY_ACCESS_LOG (default on, as shipped; Mesh logs no request)",
    )
    args = parser.parse_args(argv)
    cases = frozenset(args.cases.split(","))
    if not cases or not cases <= CASES:
        parser.error(f"--cases: choose from {', '.join(sorted(CASES))}")
    if not mesh_installed(str(args.mesh_dir)):
        parser.error(f"{args.mesh_dir}: no node_modules/@graphql-hive/gateway (npm i there)")
    if shutil.which("wrk") is None:
        parser.error("wrk is not on the PATH")
    options = Options(
        args.mesh_dir.resolve(),
        args.spec,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        cases=cases,
        access_log=args.access_log == "on",
    )
    comparisons = benchmark(options)
    print(report(comparisons, options.rounds, options.seconds))


if __name__ == "__main__":
    main()
