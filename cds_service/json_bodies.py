"""JSON bodies in and out. In: msgspec, as fast as orjson on a 40 KB hook request, refusing what
JSON does not allow (NaN, Infinity, invalid UTF-8, nesting past the interpreter's depth) with a
decode error, which FastAPI answers with a 400; and keeping the digits a laboratory wrote ("1.20"
arrives as a Decimal where a float would drop its zero: docs/clinical-rules.md, "Units and
precision"). Out: orjson, several times faster than the standard library on hook responses."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import msgspec
import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def _number(text: str) -> float | Decimal:
    """A JSON number with a fraction: a float, or a Decimal where the float would lose the digits
    the sender wrote ("1.20", "5.00")."""
    value = float(text)
    if repr(value) == text:  # most numbers: the float writes them back as sent
        return value
    if not math.isfinite(value):  # 1e999: a number JSON allows and a float cannot hold
        return Decimal(text)
    if "e" in text or "E" in text:
        return value
    return Decimal(text)


_DECODER = msgspec.json.Decoder(float_hook=_number)


def decode(body: bytes) -> Any:
    """JSON as Python values; json.JSONDecodeError for anything that is not JSON."""
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise json.JSONDecodeError(f"not JSON: {type(exc).__name__}", "", 0) from None


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """The route class of the service's API (FastAPI's documented hook for a custom Request)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return route_handler


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
