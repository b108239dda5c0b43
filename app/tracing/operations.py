"""The span of each GraphQL operation: a Strawberry extension around the whole operation.

It wraps parsing, validation and execution (``on_operation``), not each field: one span per
request, whatever the query's size. The spans opened while it runs (cache accesses, provider
calls) are its children; its parent is the trace the request's ``traceparent`` names.

Named ``graphql.query`` (``graphql.mutation``; ``graphql.operation`` when the document did
not parse), with OpenTelemetry's ``graphql.operation.type`` and ``graphql.operation.name``
(the client's name for it, if any), the tenant, and, when the result has errors, an error
status and their codes (``graphql.error.codes``). The document itself is not recorded: its
literals may be recording ids.

``operation_extensions()`` is what ``build_schema`` adds: nothing while tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from app import tracing

if TYPE_CHECKING:
    from app.schema.context import Context


class OperationSpan(SchemaExtension):
    """One span per operation (see the module docstring)."""

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        with tracing.operation_span(context.request.headers) as span:
            span.set("gateway.tenant", context.tenant.name)
            yield
            kind = _operation_type(execution)
            if kind is not None:
                span.rename(f"graphql.{kind}")
                span.set("graphql.operation.type", kind)
            if execution.operation_name:
                span.set("graphql.operation.name", execution.operation_name)
            errors = execution.result.errors if execution.result else None
            errors = errors or execution.pre_execution_errors
            if errors:
                codes = {str((error.extensions or {}).get("code", "")) for error in errors}
                span.set("graphql.error.codes", sorted(codes - {""}))
                span.fail(f"{len(errors)} error(s) in the result")


def operation_extensions() -> list[type[SchemaExtension]]:
    """The extensions ``build_schema`` adds for traces: none while tracing is off."""
    return [OperationSpan] if tracing.enabled() else []


def _operation_type(execution: ExecutionContext) -> str | None:
    """``query`` or ``mutation``; None when the document did not parse or names no such
    operation."""
    if execution.graphql_document is None:
        return None
    try:
        return execution.operation_type.value
    except RuntimeError:
        return None
