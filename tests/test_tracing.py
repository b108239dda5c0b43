"""Traces: the spans a query makes, through the real app, recorded by the SDK's in-memory
exporter; the W3C ``traceparent`` continued; the upstream span the retry layer opens; off
unless ``OTEL_*`` asks; and a real OTLP/HTTP export to a loopback collector."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import tracing
from app.errors import ConfigError
from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.schema import build_schema
from app.settings import Settings
from app.tracing import otel
from app.tracing.operations import OperationSpan
from tests.servers import serve
from tests.support import RECORDING_QUERY, gateway_client, sandbox_env, secrets_of

ROOT = Path(__file__).resolve().parent.parent

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, every span kept in memory as soon as it ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracing.installed(provider):
        yield exporter
    provider.shutdown()


@pytest.fixture
async def traced(
    spans: InMemorySpanExporter, settings: Settings, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, built while tracing is on."""
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


async def query_recording(
    client: httpx.AsyncClient, rid: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {"query": RECORDING_QUERY, "variables": {"provider": "TWILIO", "id": rid}}
    response = await client.post("/graphql", json=body, headers=headers or {})
    answer: dict[str, Any] = response.json()
    return answer


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def only(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = named(spans, name)
    return span


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    assert span.parent is not None and parent.context is not None
    return bool(span.parent.span_id == parent.context.span_id)


@pytest.mark.anyio
async def test_an_operation_span_with_its_cache_accesses_as_children(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    assert "errors" not in await query_recording(traced, rid)  # a miss, then stored
    operation = only(spans, "graphql.query")
    assert operation.kind is SpanKind.SERVER
    assert operation.status.status_code is StatusCode.UNSET
    assert dict(operation.attributes or {}) == {
        "gateway.tenant": "default",
        "graphql.operation.type": "query",
        "graphql.operation.name": "One",
    }
    get, stored = only(spans, "cache.get"), only(spans, "cache.set")
    assert (get.attributes or {})["cache.hit"] is False
    assert (stored.attributes or {})["cache.stored"] is True
    assert child_of(get, operation) and child_of(stored, operation)
    assert operation.parent is None  # no traceparent: a trace of its own

    spans.clear()
    assert "errors" not in await query_recording(traced, rid)  # the answer kept whole
    hit = only(spans, "graphql.query")
    assert dict(hit.attributes or {}) == {  # the name as the client sent it: none here
        "gateway.tenant": "default",
        "graphql.operation.type": "query",
        "gateway.response_cache": "hit",
    }
    assert named(spans, "cache.get") == [] and named(spans, "cache.set") == []


@pytest.mark.anyio
async def test_a_recording_cache_hit_is_a_child_cache_span(
    spans: InMemorySpanExporter, settings: Settings, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    off = replace(settings, response_cache=False)
    async with gateway_client(off, httpx.ASGITransport(app=sandbox_app)) as client:
        assert "errors" not in await query_recording(client, rid)
        spans.clear()
        assert "errors" not in await query_recording(client, rid)  # from the recording cache
    get = only(spans, "cache.get")
    assert (get.attributes or {})["cache.hit"] is True
    assert child_of(get, only(spans, "graphql.query"))
    assert named(spans, "cache.set") == []


@pytest.mark.anyio
async def test_the_callers_traceparent_is_continued(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, sandbox: Sandbox
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    rid = sandbox.sample_ids()["twilio"]
    await query_recording(traced, rid, {"traceparent": traceparent})
    operation = only(spans, "graphql.query")
    assert operation.context is not None and operation.parent is not None
    assert format(operation.context.trace_id, "032x") == TRACE_ID
    assert format(operation.parent.span_id, "016x") == PARENT_ID
    assert operation.parent.is_remote
    traces = {span.context.trace_id for span in spans.get_finished_spans() if span.context}
    assert traces == {operation.context.trace_id}


@pytest.mark.anyio
async def test_a_result_with_errors_is_an_error_span_naming_their_codes(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    body = await query_recording(traced, "RE" + "0" * 32)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    operation = only(spans, "graphql.query")
    assert operation.status.status_code is StatusCode.ERROR
    assert (operation.attributes or {})["graphql.error.codes"] == ("NOT_FOUND",)

    spans.clear()
    response = await traced.post("/graphql", json={"query": "{ recording("})
    assert response.json()["errors"]
    unparsed = only(spans, "graphql.operation")  # no operation type to name it by
    assert unparsed.status.status_code is StatusCode.ERROR
    assert "graphql.operation.type" not in (unparsed.attributes or {})


@pytest.mark.anyio
async def test_no_span_holds_an_id_or_a_secret(
    traced: httpx.AsyncClient,
    spans: InMemorySpanExporter,
    sandbox: Sandbox,
    sandbox_config: SandboxConfig,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    await query_recording(traced, rid)
    await query_recording(traced, "RE" + "0" * 32)
    recorded = [
        (span.name, str(value))
        for span in spans.get_finished_spans()
        for value in [*(span.attributes or {}).values(), span.status.description or ""]
    ]
    assert recorded
    for needle in [rid, "0" * 32, sandbox_config.twilio_account_sid, *secrets_of(sandbox_config)]:
        assert not [found for found in recorded if needle in found[0] or needle in found[1]]


def test_the_upstream_span_names_the_provider_status_and_retries(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.span("parent"), tracing.upstream_span(Provider.TWILIO.value, "GET") as call:
        call.set(tracing.STATUS_CODE, 200)
        call.set(tracing.RETRY_COUNT, 2)
    upstream, parent = only(spans, "GET twilio"), only(spans, "parent")
    assert upstream.kind is SpanKind.CLIENT
    assert child_of(upstream, parent)
    assert dict(upstream.attributes or {}) == {
        "gateway.provider": "twilio",
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "http.request.resend_count": 2,
    }
    assert upstream.status.status_code is StatusCode.UNSET


class ProviderDown(Exception):
    pass


def test_a_block_that_raises_is_an_error_span_without_the_message(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(ProviderDown), tracing.upstream_span("bird", "GET") as call:
        call.set(tracing.STATUS_CODE, 503)
        raise ProviderDown("https://api.example/secret-path?token=abc")
    upstream = only(spans, "GET bird")
    assert upstream.status.status_code is StatusCode.ERROR
    assert (upstream.attributes or {})["error.type"] == "ProviderDown"
    assert "secret" not in str(upstream.status.description) and not upstream.events


def test_off_every_call_is_the_same_no_op() -> None:
    with tracing.installed(None):
        assert not tracing.enabled()
        assert tracing.span("cache.get") is tracing.span("cache.set")
        assert tracing.upstream_span("twilio", "GET") is tracing.span("x")
        with tracing.span("cache.get") as span:
            span.set("cache.hit", True)
        assert span is tracing.OFF


OTEL_UNSET = [name for name in os.environ if name.startswith("OTEL_")]


def test_with_the_packages_installed_but_no_otel_variable_nothing_is_set_up(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    for name in OTEL_UNSET:
        monkeypatch.delenv(name)
    global_provider = trace.get_tracer_provider()
    with tracing.installed(None):
        create_app(settings)
        assert not tracing.enabled() and tracing.provider() is None
        assert OperationSpan not in build_schema(settings.limits).extensions
    assert trace.get_tracer_provider() is global_provider  # OpenTelemetry's own: untouched


def test_on_the_schema_gets_the_operation_span(spans: InMemorySpanExporter) -> None:
    assert OperationSpan in build_schema(Settings().limits).extensions


def test_off_the_gateway_loads_no_tracing_sdk_nor_exporter(settings: Settings) -> None:
    # redis-py imports parts of OpenTelemetry by itself when installed: not the tracing SDK.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ["PYTHONPATH"] = str(ROOT)
    check = (
        "import sys; from app.main import create_app; from app.settings import Settings; "
        f"create_app(Settings.from_env({dict(sandbox_env(SandboxConfig()))!r})); "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'app.tracing.otel', 'opentelemetry.sdk.trace', 'opentelemetry.exporter'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_otel_variables_without_the_extra_run_without_traces(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "app.tracing.otel", None)  # as if the SDK were absent
    monkeypatch.delattr(tracing, "otel", raising=False)
    with tracing.installed(None):
        assert not tracing.configure_from_environment({"OTEL_TRACES_EXPORTER": "otlp"})
        assert not tracing.enabled()
    assert "recording-gateway[otel]" in caplog.text


def test_the_sdk_reads_the_rest_of_the_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_UNSET:
        monkeypatch.delenv(name)
    default = otel.provider_from_environment(("console",))
    assert default.resource.attributes["service.name"] == "recording-gateway"
    default.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = otel.provider_from_environment(("console",))
    assert provider.resource.attributes["service.name"] == "gateway-eu"
    assert not provider.get_tracer("t").start_span("sampled out").is_recording()
    provider.shutdown()


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "gw"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, ()),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("otlp",),
        ),
    ],
)
def test_which_variables_switch_traces_on(
    environ: dict[str, str], exporters: tuple[str, ...]
) -> None:
    assert tracing.wanted_exporters(environ) == exporters


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_or_protocol_not_served_is_a_config_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="OTEL_"):
        tracing.wanted_exporters(environ)


class Collector:
    """A loopback OTLP/HTTP collector: the export requests it received."""

    def __init__(self) -> None:
        self.received: list[ExportTraceServiceRequest] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.received.append(export)
        return Response(b"", media_type="application/x-protobuf")


@pytest.mark.anyio
async def test_the_otel_variables_send_spans_over_otlp_http_when_the_app_stops(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    collector = Collector()
    for name in OTEL_UNSET:
        monkeypatch.delenv(name)
    with serve(collector.app) as url, tracing.installed(None):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # sent by the flush only
        transport = httpx.ASGITransport(app=sandbox_app)
        async with gateway_client(settings, transport) as client:
            provider = tracing.provider()
            assert provider is not None
            await query_recording(client, sandbox.sample_ids()["twilio"])
            assert collector.received == []
        provider.shutdown()  # what the SDK does at exit
    exported = [
        (resource.resource, span)
        for export in collector.received
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {span.name for _, span in exported}
    assert {"graphql.query", "cache.get", "cache.set"} <= names
    service = {
        attribute.value.string_value
        for resource, _ in exported
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert service == {"recording-gateway"}


@pytest.mark.anyio
async def test_each_provider_call_is_a_child_span_with_its_status_and_retries(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    sandbox.faults.inject("twilio", 503)  # the first attempt fails, the retry answers
    assert "errors" not in await query_recording(traced, rid)
    call = only(spans, "GET twilio")
    assert call.kind is SpanKind.CLIENT
    assert dict(call.attributes or {}) == {
        "gateway.provider": "twilio",
        "http.request.method": "GET",
        tracing.STATUS_CODE: 200,
        tracing.RETRY_COUNT: 1,
    }
    assert child_of(call, only(spans, "graphql.query"))

    spans.clear()
    other = sandbox.sample_ids()["bird"]
    sandbox.faults.inject("bird", 500)
    body = {"query": RECORDING_QUERY, "variables": {"provider": "BIRD", "id": other}}
    assert (await traced.post("/graphql", json=body)).json()["errors"]
    failed = only(spans, "GET bird")
    assert (failed.attributes or {})[tracing.STATUS_CODE] == 500
    assert (failed.attributes or {})[tracing.RETRY_COUNT] == 0
    assert failed.status.status_code is StatusCode.ERROR
