"""The one place GraphQL errors are shaped on their way out.

Every error leaves with ``extensions.code``: GatewayErrors bring their own;
parse and validation errors get Apollo's usual codes; anything else is
unexpected, so it is logged here with its traceback and masked as
INTERNAL_SERVER_ERROR with no exception text.

A field can also succeed *and* carry errors (a listing that lost one provider keeps
the others' recordings): its resolver calls ``report``, and ``ErrorCodes`` adds those
errors to the response before shaping every error the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import GatewayError

if TYPE_CHECKING:
    import strawberry

    from app.schema.context import Context

logger = logging.getLogger("app.schema")


def report(info: strawberry.Info[Context, None], error: GatewayError) -> None:
    """Add ``error`` to the response at the resolving field's path, without nulling the field."""
    located = GraphQLError(error.message, path=info.path.as_list(), original_error=error)
    info.context.reported_errors.append(located)


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    # A GraphQLError underneath is graphql-core's own (e.g. a variable that failed coercion).
    return original is not None and not isinstance(original, GatewayError | GraphQLError)


class ErrorCodes(MaskErrors):
    """MaskErrors that masks only unexpected errors and gives every error a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error.")

    def on_operation(self) -> Iterator[None]:
        masking = super().on_operation()
        next(masking)
        yield
        self._add_reported_errors()
        next(masking, None)  # MaskErrors now shapes every error, the reported ones included

    def _add_reported_errors(self) -> None:
        reported = getattr(self.execution_context.context, "reported_errors", None)
        result = self.execution_context.result
        if reported and result is not None and hasattr(result, "errors"):
            result.errors = [*(result.errors or []), *reported]

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
