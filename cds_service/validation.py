"""Pydantic's validation errors as the service words them, one way for requests, content and the
issuers file: the field's path ("feedback[2].outcome") and pydantic's message without its
"Value error, " prefix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def field_path(loc: Sequence[int | str], within: str = "") -> str:
    """("body", "feedback", 2, "outcome") -> "feedback[2].outcome"; `within` is the path's start."""
    path = within
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def message(error: ErrorDetails | dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return "not valid JSON"
    return str(error["msg"]).removeprefix("Value error, ")


class _Errors(Protocol):
    """pydantic's ValidationError, and FastAPI's RequestValidationError, which is not one."""

    def errors(self) -> Sequence[Any]: ...


def first(exc: _Errors, within: str = "") -> tuple[str, str]:
    """The first error's path and message, for a 400 that names one field."""
    error = exc.errors()[0]
    return field_path(error["loc"], within) or "body", message(error)


def problems(exc: ValidationError) -> str:
    """Every error, for a file that does not load."""
    return "; ".join(f"{field_path(e['loc']) or '(top level)'}: {message(e)}" for e in exc.errors())
