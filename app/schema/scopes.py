"""Scopes, field by field: a field the caller's scopes do not allow is null with FORBIDDEN at
its path, and the rest of the query answers (Strawberry's permission classes)."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

import strawberry
from strawberry.permission import BasePermission

from app.errors import ForbiddenError


class _Scope(BasePermission):
    scope: ClassVar[str]

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return self.scope in info.context.scopes

    def on_unauthorized(self) -> NoReturn:
        raise ForbiddenError(f"this field needs the {self.scope} scope, which the caller lacks")


class ReadRecordings(_Scope):
    scope = "recordings:read"


class ReadMedia(_Scope):
    scope = "media:read"


class DeleteRecordings(_Scope):
    scope = "recordings:delete"


class RequestTranscriptions(_Scope):
    scope = "transcriptions:request"
