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

from collections.abc import Iterator
from typing import TYPE_CHECKING

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.errors import BadRequestError, PersistedQueryNotAllowedError
from app.persisted import PersistedQueries

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
            _refuse(execution, "subscriptions are served over WebSocket at /graphql")
        elif streaming and not subscription:
            _refuse(
                execution,
                "only subscriptions are served over WebSocket: send queries and mutations "
                "over HTTP (POST /graphql)",
            )
        elif context is not None and streaming:
            _allowed(context.request.state.persisted, execution.query)
        yield


def _allowed(persisted: PersistedQueries, query: str | None) -> None:
    """The allowlist's verdict on a subscription's document (the only persisted-query rule
    a WebSocket meets: Strawberry's handler takes full documents only, no hashes)."""
    if persisted.manifest is not None and not persisted.manifest.allows(query or ""):
        raise PersistedQueryNotAllowedError(
            "this subscription is not in the gateway's allowlist of operations"
        )


def _refuse(execution: ExecutionContext, message: str) -> None:
    """Set the operation's result to BAD_REQUEST: Strawberry then executes nothing."""
    refused = BadRequestError(message)
    error = GraphQLError(refused.message, original_error=refused)
    execution.result = ExecutionResult(data=None, errors=[error])
