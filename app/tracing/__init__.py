"""Traces (OpenTelemetry): the one facade the gateway calls, a no-op unless switched on.

The gateway opens spans in three places: one per GraphQL operation (``app.tracing.operations``,
a Strawberry extension on the whole operation, never per field), one per provider call
(``upstream_span``, for the retry layer) and one per cache access (``app.cache``).

**Off** (the default): ``span`` and ``upstream_span`` return one shared, stateless context
manager whose span ignores everything, and the operation extension is not even added to the
schema. That is a flag test and a constant per call: the gateway pays nothing measurable for
traces it does not send (issue 14 measures CPU per request).

**On from the environment** (``configure_from_environment``, called by ``create_app``) when
the extra is installed (``pip install 'recording-gateway[otel]'``), ``OTEL_SDK_DISABLED`` is
not ``true``, and either

- ``OTEL_TRACES_EXPORTER`` names exporters (``otlp``, ``console``, comma-separated; ``none``
  turns traces off), or
- it is unset and ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
  set (then ``otlp``).

Unlike the SDK's auto-configuration, the gateway does not send to ``localhost:4318`` merely
because nothing said otherwise: a replica without any ``OTEL_*`` set sets nothing up. Everything
else is read by the SDK itself, as documented for OpenTelemetry: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (the service name defaults to ``recording-gateway``),
``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,
HEADERS,TIMEOUT,COMPRESSION,CERTIFICATE}``, ``OTEL_PROPAGATORS``. The exporter is OTLP over
HTTP (protobuf), the protocol OpenTelemetry recommends by default; ``OTEL_EXPORTER_OTLP_
[TRACES_]PROTOCOL=grpc`` is refused (ConfigError) rather than silently ignored. With
``OTEL_*`` set but the extra not installed, the gateway says so once and runs without traces.

The incoming W3C ``traceparent`` (and ``tracestate``) header becomes the operation span's
parent, through the configured propagator (``OTEL_PROPAGATORS``, W3C trace context by default).

The facade keeps its own tracer provider instead of OpenTelemetry's process-wide one (which
can be set only once per process): tests install one with the SDK's in-memory exporter
(``installed``) and take it away again. ``flush`` is called when the app stops, so the spans
of the last requests are sent; the SDK shuts the provider down at process exit.

Attribute values name the provider, the HTTP method, the tenant, the operation: never a
credential, a token, a query string or a recording id (they travel in provider URL paths, so
no URL is recorded). A block that raises marks its span as an error with the exception's
type (``error.type``), not its message.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from app.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from app.tracing.otel import Recorder

logger = logging.getLogger("app.tracing")

#: What a span attribute may hold (OpenTelemetry's primitive values and lists of them).
AttributeValue = str | bool | int | float | list[str] | list[int]

#: Attribute names the upstream span's caller sets (OpenTelemetry's HTTP conventions).
STATUS_CODE = "http.response.status_code"
RETRY_COUNT = "http.request.resend_count"
#: The provider a span is about (``twilio``, ``signalwire``, ``bird``).
PROVIDER = "gateway.provider"

EXPORTERS = ("otlp", "console")
_TRUE = ("true", "1", "yes", "on")


class Span(Protocol):
    """What a block learns as it goes; every method is a no-op when tracing is off."""

    def set(self, key: str, value: AttributeValue) -> None:
        """Set attribute ``key`` (a name from OpenTelemetry's conventions where one fits)."""

    def fail(self, description: str) -> None:
        """Mark the span as an error without an exception (e.g. a result with errors)."""

    def rename(self, name: str) -> None:
        """Name the span by what the block turned out to be."""


class _Off:
    __slots__ = ()

    def set(self, key: str, value: AttributeValue) -> None:
        pass

    def fail(self, description: str) -> None:
        pass

    def rename(self, name: str) -> None:
        pass


#: The span of every block while tracing is off, and its (reusable, stateless) context manager.
OFF = _Off()
_OFF_BLOCK = contextlib.nullcontext(OFF)

#: The recorder while tracing is on; ``None`` is off (the flag every call tests first).
_recorder: Recorder | None = None


def enabled() -> bool:
    """Whether spans are recorded."""
    return _recorder is not None


def span(name: str) -> AbstractContextManager[Span]:
    """A span named ``name`` around the block, child of the current one."""
    if _recorder is None:
        return _OFF_BLOCK
    return _recorder.span(name)


def upstream_span(provider: str, method: str) -> AbstractContextManager[Span]:
    """The span of one provider call, retries included: the caller sets ``STATUS_CODE`` (the
    last answer's) and ``RETRY_COUNT`` (0 when the first attempt answered). Named
    ``"{method} {provider}"``; no URL (recording ids travel in its path)."""
    if _recorder is None:
        return _OFF_BLOCK
    return _recorder.client_span(f"{method} {provider}", provider, method)


def operation_span(headers: Mapping[str, str]) -> AbstractContextManager[Span]:
    """The span of one GraphQL operation, continuing the trace the request's ``traceparent``
    header names (``app.tracing.operations`` names and fills it)."""
    if _recorder is None:
        return _OFF_BLOCK
    return _recorder.server_span("graphql.operation", headers)


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Switch tracing on if the environment asks for it (see the module docstring) and it is
    not on already; whether it is on. ConfigError for an exporter or protocol not served."""
    if _recorder is not None:
        return True
    exporters = wanted_exporters(os.environ if environ is None else environ)
    if not exporters:
        return False
    try:
        from app.tracing import otel
    except ImportError:
        logger.warning(
            "OTEL_* asks for traces, but OpenTelemetry is not installed "
            "(pip install 'recording-gateway[otel]'): running without traces"
        )
        return False
    _install(otel.Recorder(otel.provider_from_environment(exporters)))
    return True


def wanted_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters the environment asks for; empty when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return ()
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    wanted = tuple(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))
    if not wanted:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        wanted = ("otlp",) if any(environ.get(name, "").strip() for name in endpoints) else ()
    if wanted == ("none",):
        return ()
    unknown = [name for name in wanted if name not in EXPORTERS]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not served "
            f"(use {', '.join(EXPORTERS)} or none)"
        )
    if "otlp" in wanted:
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = environ.get(variable, "").strip()
            if protocol:
                if protocol != "http/protobuf":
                    raise ConfigError(f"{variable}: only http/protobuf is served, not {protocol}")
                break
    return wanted


def provider() -> TracerProvider | None:
    """The tracer provider recording spans; None while tracing is off."""
    return None if _recorder is None else _recorder.provider


@contextlib.contextmanager
def installed(provider: TracerProvider | None) -> Iterator[None]:
    """Record spans with ``provider`` inside the block (tests: the SDK's in-memory exporter;
    None: tracing off), then put back what was there. Apps built inside the block trace
    their operations."""
    previous = _recorder
    if provider is None:
        _install(None)
    else:
        from app.tracing.otel import Recorder

        _install(Recorder(provider))
    try:
        yield
    finally:
        _install(previous)


def flush(timeout_seconds: float = 5.0) -> None:
    """Send the spans still queued (the app's lifespan calls it as the app stops)."""
    if _recorder is not None:
        _recorder.flush(timeout_seconds)


def _install(recorder: Recorder | None) -> None:
    global _recorder
    _recorder = recorder
