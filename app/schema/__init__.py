"""The GraphQL schema (``strawberry export-schema app.schema:schema``).

``build_schema(limits)`` makes the schema a gateway serves, with its request limits: the
parse limits and document cache (``documents``), depth, aliases and, unless introspection is
on, no introspection and no "Did you mean ..." suggestions (they would let a caller map the
schema anyway), then the cost and rate budget (``budget``). ``schema`` is the one with the
default limits: the types are the same whatever the limits, so it is the one exported.
"""

from __future__ import annotations

import re

import strawberry
from graphql.error import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.schema.budget import RequestBudget
from app.schema.documents import CachedDocuments, DocumentCache
from app.schema.errors import ErrorCodes, ensure_codes
from app.schema.mutations import Mutation
from app.schema.queries import Query
from app.schema.scalars import SCALARS
from app.schema.subscriptions import Subscription
from app.schema.transport import OperationTransport
from app.schema.validation import bound_overlap_checks
from app.settings import RequestLimits
from app.tracing.operations import operation_extensions

# graphql-core ends a message with its suggestions: " Did you mean 'x' or 'y'?"
_SUGGESTION = re.compile(r"\s*Did you mean .*\?$")


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema; its error hook completes codes (see ``errors``) and, without
    introspection, drops suggestions from every message."""

    def __init__(self, *, suggestions: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.suggestions = suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Unexpected errors were logged (with tracebacks) and masked by ErrorCodes;
        # expected ones are the client's business, not the operator's.
        if not self.suggestions:
            for error in errors:
                error.message = _SUGGESTION.sub("", error.message)
        ensure_codes(errors)


def build_schema(limits: RequestLimits, *, budget: bool = True) -> GatewaySchema:
    """The schema with ``limits`` and, unless told otherwise, the budget (see the module
    docstring)."""
    # Built once, so every request validates with the same rules and the cache hits.
    rules: list[type[ASTValidationRule]] = [
        max_aliases_rule(limits.max_aliases),
        max_depth_rule(limits.max_depth, None),
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    documents = DocumentCache()
    bound_overlap_checks()
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        suggestions=limits.introspection,
        config=StrawberryConfig(
            disable_field_suggestions=not limits.introspection,
            scalar_map=SCALARS,  # DateTime: UTC, milliseconds (app.schema.scalars)
        ),
        extensions=[
            *operation_extensions(),  # outermost: the operation span covers the others
            ErrorCodes,
            lambda: CachedDocuments(documents, max_tokens=limits.max_tokens),
            lambda: AddValidationRules(rules),
            OperationTransport,
            *([RequestBudget] if budget else []),
        ],
    )


schema = build_schema(RequestLimits(introspection=True), budget=False)

__all__ = ["build_schema", "schema"]
