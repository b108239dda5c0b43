"""The one place GraphQL errors are shaped on their way out.

Every error leaves with ``extensions.code``: GatewayErrors bring their own;
parse and validation errors get Apollo's usual codes; anything else is
unexpected, so it is logged here with its traceback and masked as
INTERNAL_SERVER_ERROR with no exception text.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import GatewayError

logger = logging.getLogger("app.schema")


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    # A GraphQLError underneath is graphql-core's own (e.g. a variable that failed coercion).
    return original is not None and not isinstance(original, GatewayError | GraphQLError)


class ErrorCodes(MaskErrors):
    """MaskErrors that masks only unexpected errors and gives every error a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        logger.error("unexpected error at %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


def ensure_codes(errors: list[GraphQLError]) -> None:
    """Give every error that has none a code. Runs last, on every result (the schema's
    ``process_errors``), so it also sees parse errors raised before any extension hook."""
    for error in errors:
        extensions = error.extensions or {}
        if "code" not in extensions:
            error.extensions = {**extensions, "code": _code_for(error)}


def _code_for(error: GraphQLError) -> str:
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable '"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"
