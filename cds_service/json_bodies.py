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
from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .protocol import operation_outcome


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


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


def is_json(content_type: str | None) -> bool:
    """application/json, with or without parameters (charset=utf-8), or a JSON-based type such as
    application/fhir+json. CDS Hooks 2.0.1 ("Use of JSON"): data "MUST be sent and received as
    JSON"; its examples, the CDS Hooks Sandbox and the EHRs send application/json."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def unsupported_media_type() -> OrjsonResponse:
    """415: a body that says it is not JSON (text/plain, a form) or does not say what it is. A browser
    sends such bodies cross-origin without a CORS preflight; JSON is never guessed from them."""
    body = operation_outcome("not-supported", "Content-Type must be application/json", ["Content-Type"])
    return OrjsonResponse(body, 415)


class JsonRoute(APIRoute):
    """The route class of the service's API (FastAPI's documented hook for a custom Request); a
    route that reads a JSON body refuses any other with a 415."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_json = self.body_field is not None and not isinstance(self.body_field.field_info, params.Form)

        async def route_handler(request: Request) -> Response:
            if reads_json and not is_json(request.headers.get("content-type")):
                return unsupported_media_type()
            return await handler(JsonRequest(request.scope, request.receive))

        return route_handler
