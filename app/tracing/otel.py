"""Tracing switched on: OpenTelemetry's SDK behind the facade (``app.tracing``).

Imported only when traces are wanted, so a gateway without the ``otel`` extra never loads it.
The provider is built the way the SDK documents, and every setting is read by the SDK itself
from the ``OTEL_*`` environment: ``TracerProvider()`` (sampler), ``Resource.create()``
(service name, resource attributes), ``BatchSpanProcessor`` (queue, delays) and
``OTLPSpanExporter()`` (endpoint, headers, timeout, compression, certificates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from app.tracing import PROVIDER, AttributeValue

#: The service name when ``OTEL_SERVICE_NAME`` (or ``service.name`` in
#: ``OTEL_RESOURCE_ATTRIBUTES``) does not give one.
DEFAULT_SERVICE_NAME = "recording-gateway"
#: The instrumentation scope every span of the gateway is recorded under.
SCOPE = "recording-gateway"


def provider_from_environment(exporters: tuple[str, ...]) -> TracerProvider:
    """A provider sending through ``exporters`` (``otlp``, ``console``), each behind a batch
    processor, everything else as the ``OTEL_*`` environment says."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for name in exporters:
        exporter: SpanExporter = OTLPSpanExporter() if name == "otlp" else ConsoleSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Recorded:
    """An OpenTelemetry span seen through the facade's ``Span``."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def set(self, key: str, value: AttributeValue) -> None:
        self.span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, description))

    def rename(self, name: str) -> None:
        self.span.update_name(name)


class Recorder:
    """Spans from one tracer provider, made current in the block so that the spans opened
    inside (in the same task or in tasks it starts) are its children."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)

    def span(self, name: str) -> contextlib.AbstractContextManager[Recorded]:
        return self._block(name, SpanKind.INTERNAL, {})

    def client_span(
        self, name: str, provider: str, method: str
    ) -> contextlib.AbstractContextManager[Recorded]:
        attributes = {PROVIDER: provider, "http.request.method": method}
        return self._block(name, SpanKind.CLIENT, attributes)

    def server_span(
        self, name: str, headers: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[Recorded]:
        return self._block(name, SpanKind.SERVER, {}, propagate.extract(headers))

    @contextlib.contextmanager
    def _block(
        self,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        parent: Context | None = None,
    ) -> Iterator[Recorded]:
        # The exception's message is not recorded: it may quote what a provider said.
        with self.tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield Recorded(span)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                raise

    def flush(self, timeout_seconds: float) -> None:
        self.provider.force_flush(int(timeout_seconds * 1000))
