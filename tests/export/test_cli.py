"""``recording-gateway export`` end to end, and the export's failure trailers on real sockets.

The gateway runs as an operator runs it (``python -m app serve``, its own logging), over a
sandbox served on a socket in this process; ``FailPage`` fails one provider's second page (the
first rows are out by then). The client is httpx, and the ``export`` command in its own
process: stdout, stderr and its exit status are what is checked.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.export.cli import instant
from app.export.rows import COLUMNS
from app.sandbox import SandboxConfig, create_sandbox_app
from tests.export.support import ENV, FailPage, csv_rows, ndjson_rows
from tests.servers import serve
from tests.support import sandbox_env
from tests.test_cli import ROOT, STARTUP_TIMEOUT, Server, environment, server

CONFIG = SandboxConfig()


@dataclass
class Done:
    """A finished ``export`` command: its status, and its output as bytes (text mode would
    turn the CSV's CRLF and the progress line's CR into LF)."""

    returncode: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode()

    @property
    def stderr(self) -> str:
        return self.err.decode()


def cli(*args: str) -> Done:
    """``python -m app ARGS`` to its end."""
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def gateway(fail: str = "none") -> Iterator[tuple[Server, FailPage]]:
    """A gateway process over a sandbox on a socket; ``fail``: that provider's second page
    (and those after it) answer 503, for one export (``FailPage.reset`` before the next)."""
    front = FailPage(create_sandbox_app(CONFIG), fail, page=2)
    with serve(front) as sandbox_url:
        with server("serve", env=sandbox_env(CONFIG, sandbox_url) | ENV) as running:
            yield running, front


@pytest.fixture(scope="module")
def healthy() -> Iterator[Server]:
    with gateway() as (running, _):
        yield running


def test_the_command_writes_the_export_and_shows_progress(healthy: Server) -> None:
    expected = httpx.get(f"{healthy.url}/export/recordings.csv").content
    done = cli("export", "--url", healthy.url, "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.out == expected
    rows = len(csv_rows(expected.decode()))
    assert rows > 40
    # The progress line, redrawn with \r, ends on the totals.
    final = done.stderr.rstrip("\n").split("\r")[-1]
    assert final.startswith(f"{rows:,} rows · {-(-rows // 10)} pages · ")


def test_the_command_passes_the_filter(healthy: Server, tmp_path: Path) -> None:
    everything = ndjson_rows(httpx.get(f"{healthy.url}/export/recordings.ndjson").text)
    since = sorted(row["created_at"] for row in everything)[len(everything) // 2]
    output = tmp_path / "out.ndjson"
    done = cli(
        "export", "--url", healthy.url, "--format", "ndjson", "--since", since,
        "--providers", "TWILIO,BIRD", "--output", str(output), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    wanted = [
        row for row in everything if row["created_at"] >= since and row["provider"] != "SIGNALWIRE"
    ]
    assert wanted and ndjson_rows(output.read_text()) == wanted
    assert not (tmp_path / "out.ndjson.part").exists()


def test_a_refused_export_exits_1_with_the_gateways_reason(healthy: Server) -> None:
    done = cli("export", "--url", healthy.url, "--providers", "ACME")
    assert done.returncode == 1
    assert "HTTP 400 BAD_USER_INPUT" in done.stderr and "'ACME'" in done.stderr
    assert done.stdout == ""


def test_a_bad_since_is_a_usage_error() -> None:
    done = cli("export", "--since", "last week")
    assert done.returncode == 2 and "--since" in done.stderr


def test_ages_count_back_from_now() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert instant("30d", now=lambda: now) == datetime(2026, 10, 28, 10, 0, tzinfo=UTC)
    assert instant("12h", now=lambda: now) == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    assert instant("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)


def test_ndjson_failing_midway_ends_with_an_error_line(tmp_path: Path) -> None:
    output = tmp_path / "out.ndjson"
    with gateway(fail="twilio") as (running, front):
        with httpx.stream("GET", f"{running.url}/export/recordings.ndjson") as answer:
            assert answer.status_code == 200
            text = answer.read().decode()  # a complete transfer: the error is in the body
        front.reset()
        done = cli("export", "--url", running.url, "--format", "ndjson")
        front.reset()
        to_file = cli("export", "--url", running.url, "-f", "ndjson", "-o", str(output))
    *rows, last = ndjson_rows(text)
    assert rows and all(tuple(row) == COLUMNS for row in rows)
    assert last == {
        "error": {
            "message": last["error"]["message"],
            "code": "PROVIDER_UNAVAILABLE",
            "provider": "TWILIO",
        }
    }
    assert done.returncode == 1
    assert "TWILIO PROVIDER_UNAVAILABLE" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["error"]["provider"] == "TWILIO"
    assert to_file.returncode == 1 and not output.exists()
    assert not (tmp_path / "out.ndjson.part").exists()


def test_csv_failing_midway_is_a_cut_transfer_and_one_warning(tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    with gateway(fail="twilio") as (running, front):
        with httpx.stream("GET", f"{running.url}/export/recordings.csv") as answer:
            assert answer.status_code == 200
            received = b""
            with pytest.raises(httpx.RemoteProtocolError):  # no last chunk: incomplete
                for chunk in answer.iter_raw():
                    received += chunk
        front.reset()
        done = cli("export", "--url", running.url, "--since", "2000-01-01")
        front.reset()
        to_file = cli("export", "--url", running.url, "--output", str(output))
    rows = csv_rows(received.decode())
    assert rows and {row["provider"] for row in rows} <= {"TWILIO", "SIGNALWIRE", "BIRD"}
    assert done.returncode == 1
    assert "the export was cut after" in done.stderr
    assert done.stdout.startswith(",".join(COLUMNS))  # what came is written through
    assert to_file.returncode == 1 and not output.exists()
    assert not (tmp_path / "out.csv.part").exists()
    # The gateway logged each cut as one WARNING line, with no traceback and no ERROR.
    cuts = [line for line in running.lines if "export cut" in line]
    assert len(cuts) == 3 and all(line.startswith("WARNING") for line in cuts)  # 3 exports
    assert "TWILIO failed after" in cuts[0] and "PROVIDER_UNAVAILABLE" in cuts[0]
    assert "Traceback" not in running.output
    assert not [line for line in running.lines if line.startswith("ERROR")]
    assert "without completing response" not in running.output
