"""The one place GraphQL errors are shaped on their way out.

Every error leaves with ``extensions.code``: GatewayErrors bring their own;
parse and validation errors get Apollo's usual codes; anything else is
unexpected, so it is logged here with its traceback and masked as
INTERNAL_SERVER_ERROR with no exception text.

Codes follow the phase an error comes from where the libraries say which: a parse error
is graphql-core's ``GraphQLSyntaxError``, and whatever validation reports is tagged in the
``on_validate`` hook. Only variable coercion, which runs inside graphql-core's execute, is
known by its message ("Variable '$x' has invalid value ...").

A field can also succeed *and* carry errors (a listing that lost one provider keeps
the others' recordings): its resolver calls ``report``, and ``ErrorCodes`` adds those
errors to the response (``on_execute``) before MaskErrors shapes every error the same way
(when ``on_operation``, which wraps the other hooks, ends).

That message prefix and that order of hooks are library behaviour the gateway relies on:
tests/test_library_contracts.py names each and fails if a new version changes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from graphql.error import GraphQLError, GraphQLSyntaxError
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

    def on_validate(self) -> Iterator[None]:
        yield
        # Whatever validation found is a validation failure, however it is worded (graphql-core
        # words some as "Variable '$x' is never used", like coercion errors).
        for error in self.execution_context.pre_execution_errors or ():
            _give_code(error, "GRAPHQL_VALIDATION_FAILED")

    def on_execute(self) -> Iterator[None]:
        yield
        # Execution is over and the operation is not: MaskErrors (on_operation, which wraps
        # on_execute) then shapes every error, the reported ones included.
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
        _give_code(error, _code_for(error))


def _give_code(error: GraphQLError, code: str) -> None:
    extensions = error.extensions or {}
    if "code" not in extensions:
        error.extensions = {**extensions, "code": code}


# graphql-core's coerce_variable_values starts each of its messages so.
VARIABLE_COERCION_PREFIX = "Variable '"


def _code_for(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith(VARIABLE_COERCION_PREFIX):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"
