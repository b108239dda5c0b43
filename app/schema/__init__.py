"""The GraphQL schema (``strawberry export-schema app.schema:schema``)."""

from __future__ import annotations

import strawberry
from graphql.error import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.types import ExecutionContext

from app.schema.errors import ErrorCodes, ensure_codes
from app.schema.queries import Query

# Built once, so every request validates with the same rules and ValidationCache hits.
# Aliases would otherwise bypass GATEWAY_MAX_BATCH (a thousand aliased recording fields).
LIMITS: list[type[ASTValidationRule]] = [max_aliases_rule(100), max_depth_rule(10, None)]


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema; its error hook only completes codes (see ``errors``)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Unexpected errors were logged (with tracebacks) and masked by ErrorCodes;
        # expected ones are the client's business, not the operator's.
        ensure_codes(errors)


schema = GatewaySchema(
    query=Query,
    extensions=[
        ErrorCodes,
        # The same few queries arrive over and over: parse and validate each once
        # (Strawberry keeps these LRU caches at module level, shared by every request).
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: AddValidationRules(LIMITS),
    ],
)

__all__ = ["schema"]
