"""The GraphQL schema (``strawberry export-schema app.schema:schema``)."""

from __future__ import annotations

import strawberry
from graphql.error import GraphQLError
from strawberry.types import ExecutionContext

from app.schema.errors import ErrorCodes
from app.schema.queries import Query


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging: ``ErrorCodes`` logs the
    unexpected errors with their tracebacks, and expected ones are not the operator's."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


schema = GatewaySchema(query=Query, extensions=[ErrorCodes])

__all__ = ["schema"]
