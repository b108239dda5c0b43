"""Which operations each transport runs: queries and mutations over HTTP, subscriptions over
WebSocket (``graphql-transport-ws``), nothing else.

A subscription over HTTP would hold a request open for as long as events come, past the
request's deadline and outside the gate's accounting. A query or mutation over a WebSocket
would skip the gate (persisted queries, the response cache, HTTP caching headers) and share
one context for the connection's whole life. Each is refused with BAD_REQUEST, saying which
transport to use. The check runs when execution starts (the document is valid by then), by
setting the operation's result: Strawberry then executes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.errors import BadRequestError

if TYPE_CHECKING:
    from app.schema.context import Context


class OperationTransport(SchemaExtension):
    """Refuses an operation sent over the other transport (see the module docstring)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context: Context | None = execution.context
        # A schema executed without the gateway's context (a test's) runs as over HTTP.
        streaming = context is not None and context.streaming
        subscription = execution.operation_type is OperationType.SUBSCRIPTION
        if subscription and not streaming:
            refused = BadRequestError(
                "subscriptions are served over WebSocket at /graphql (graphql-transport-ws)"
            )
        elif streaming and not subscription:
            refused = BadRequestError(
                "only subscriptions are served over WebSocket: send queries and mutations "
                "over HTTP (POST /graphql)"
            )
        else:
            yield
            return
        error = GraphQLError(refused.message, original_error=refused)
        execution.result = ExecutionResult(data=None, errors=[error])
        yield
