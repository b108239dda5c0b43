"""Which operations each transport runs: queries and mutations over HTTP, subscriptions over
WebSocket (``graphql-transport-ws``), nothing else.

A subscription over HTTP would hold a request open for as long as events come, past the
request's deadline and outside the gate's accounting. A query or mutation over a WebSocket
would skip the gate (persisted queries, the response cache, HTTP caching headers) and share
one context for the connection's whole life. Each is refused with BAD_REQUEST, saying which
transport to use. The check runs when execution starts (the document is valid by then), by
setting the operation's result: Strawberry then executes nothing.

A subscription, which skips the gate, meets its persisted-query rule here instead: with
``GATEWAY_PERSISTED_QUERIES=allowlist`` only the manifest's operations run
(PERSISTED_QUERY_NOT_ALLOWED otherwise). Strawberry does not read a result set for a
subscription, so that refusal is raised; it reaches the client as the operation's error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.errors import BadRequestError
from app.persisted import PersistedQueries

if TYPE_CHECKING:
    from app.schema.context import Context


class OperationTransport(SchemaExtension):
    """Refuses an operation sent over the other transport (see the module docstring)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context: Context | None = execution.context
        # A schema executed without the gateway's context (a test's) runs as over HTTP.
        streaming = context is not None and context.streaming
        subscription = execution.operation_type is OperationType.SUBSCRIPTION
        if subscription and not streaming:
            _refuse(execution, "subscriptions are served over WebSocket at /graphql")
        elif streaming and not subscription:
            _refuse(
                execution,
                "only subscriptions are served over WebSocket: send queries and mutations "
                "over HTTP (POST /graphql)",
            )
        elif context is not None and streaming:
            persisted: PersistedQueries = context.request.state.persisted
            await persisted.resolve({"query": execution.query}, context.tenant.name)
        yield


def _refuse(execution: ExecutionContext, message: str) -> None:
    """Set the operation's result to BAD_REQUEST: Strawberry then executes nothing."""
    refused = BadRequestError(message)
    error = GraphQLError(refused.message, original_error=refused)
    execution.result = ExecutionResult(data=None, errors=[error])
