"""A FHIR server on loopback that answers from routes a test declares, in respx's shape
(`routes.get("/Observation", params={"code": "x"}).respond(json=...)`, `route.call_count`), so that
the client's rules (retries, next links, redirects, size and time bounds) are tested over real
sockets and the client's own HTTP stack, not around it. tests/fault_server.py holds the named
faults the end-to-end tests share; this one holds what a single test needs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.loopback import LoopbackServer

_NO_JSON = object()


@dataclass(frozen=True)
class Reply:
    """One answer. `drop` closes the connection without answering."""

    status: int = 200
    json: Any = _NO_JSON
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/fhir+json"
    drop: bool = False

    def encoded(self) -> bytes:
        body = orjson.dumps(self.json) if self.json is not _NO_JSON else self.content
        lines = [f"HTTP/1.1 {self.status} X", f"Content-Length: {len(body)}"]
        if body:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def html(text: str, status: int = 200) -> Reply:
    return Reply(status, content=text.encode(), content_type="text/html")


DROP = Reply(drop=True)


@dataclass(frozen=True)
class Call:
    """One request as the server received it."""

    target: str  # path and query, as sent
    path: str  # under the FHIR base, e.g. "/Observation"
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    method: str = "GET"
    body: bytes = b""  # a POST's (a SMART token request's form)


SideEffect = Callable[[Call], Reply | Awaitable[Reply]]


class Route:
    def __init__(self, path: str | None, params: dict[str, str] | None, regex: str | None) -> None:
        self._path = path
        self._params = params or {}
        self._regex = re.compile(regex) if regex else None
        self._replies: list[Reply] | None = None
        self._effect: SideEffect | None = None
        self.calls: list[Call] = []

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def respond(self, status: int = 200, *, json: Any = _NO_JSON, headers: dict[str, str] | None = None) -> Route:
        return self.mock(Reply(status, json=json, headers=headers or {}))

    def mock(self, reply: Reply | None = None, *, side_effect: SideEffect | list[Reply] | None = None) -> Route:
        """A fixed reply, a list of replies in turn, or a function of the request."""
        if isinstance(side_effect, list):
            self._replies = list(side_effect)
        elif side_effect is not None:
            self._effect = side_effect
        else:
            self._replies = [reply or Reply()]
        return self

    def matches(self, call: Call) -> bool:
        if self._path is not None and call.path != self._path:
            return False
        if any(call.query.get(k) != [v] for k, v in self._params.items()):
            return False
        return self._regex is None or self._regex.search(call.target) is not None

    async def answer(self, call: Call) -> Reply:
        self.calls.append(call)
        if self._effect is not None:
            reply = self._effect(call)
            return await reply if isinstance(reply, Awaitable) else reply
        assert self._replies, "a route with nothing to answer"
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


class FhirRoutes(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.routes: list[Route] = []
        self.unmatched: list[Call] = []
        self.all_called = True  # at the end every route must have been called, as respx checks

    def get(self, path: str | None = None, *, params: dict[str, str] | None = None, regex: str | None = None) -> Route:
        """A route by path under the base (and query parameters it must carry), or by a regular
        expression searched in the request target; no arguments: any request."""
        route = Route(path, params, regex)
        self.routes.append(route)
        return route

    def check(self) -> None:
        assert not self.unmatched, f"requests no route answered: {[c.target for c in self.unmatched]}"
        if self.all_called:
            assert all(r.call_count for r in self.routes), "a route was never called"

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is over."""
        line = await reader.readline()
        if not line:
            return False
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        method, target = line.split()[0].decode(), line.split()[1].decode()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        parts = urlsplit(target)
        call = Call(target, parts.path.removeprefix("/fhir"), parse_qs(parts.query), headers, method, body)
        route = next((r for r in self.routes if r.matches(call)), None)
        if route is None:
            self.unmatched.append(call)
            reply = Reply(599, json={"resourceType": "OperationOutcome"})
        else:
            reply = await route.answer(call)
        if reply.drop:
            return False
        writer.write(reply.encoded())
        await writer.drain()
        return True
