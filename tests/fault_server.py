"""A FHIR server on loopback that misbehaves on request: a real HTTP/1.1 server (asyncio streams in
its own thread), so faults happen on real sockets, where no in-process mock reaches (a stalled socket, a
body trickled a byte at a time, a connection dropped mid-exchange).

Each query is sorted into the prefetch key it serves (vitaminD, electrolytes, conditions,
medications, patient) and answered by the fault set for that key, "ok" by default; a query about
patient `fault-<name>` gets that fault whatever its key (concurrent callers each choose theirs).
"""

from __future__ import annotations

import asyncio
import functools
import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from tests.loopback import LoopbackServer

FAULTS = (
    "stall",  # read the request, never answer
    "trickle",  # answer one byte every 200 ms
    "drop",  # close the connection without answering
    "500",
    "429",  # Too Many Requests, Retry-After: 1
    "html",  # 200 with an HTML page
    "truncated",  # 200 with half a JSON document
    "next-self",  # a Bundle whose next link is itself
    "next-other-host",  # a Bundle whose next link is on another server
    "pages",  # 10,000 pages, one resource each
    "redirect-other-host",  # 302 to another server
    "slow",  # answer after SLOW_S
    "gzip",  # the answer gzipped (Content-Encoding: gzip), as servers do
    "gzip-bomb",  # 200 KB of gzip that inflates to 200 MB
)
SLOW_S = 1.5
PAGES = 10_000


def _kind(path: str, query: dict[str, list[str]]) -> str:
    resource = path.rstrip("/").split("/fhir/", 1)[-1].split("/")[0]
    if resource == "Observation":
        return "vitaminD" if "62292-8" in "".join(query.get("code", [])) else "electrolytes"
    return {
        "Patient": "patient",
        "Condition": "conditions",
        "MedicationRequest": "medications",
        "ServiceRequest": "pendingOrders",
    }.get(resource, "?")


class FaultServer(LoopbackServer):
    def __init__(self, data: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__()
        self.data = data  # resources per key; "patient" holds the Patient
        self.faults: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []  # (key, fault) per request received

    @contextmanager
    def running(self) -> Iterator[Self]:
        _bomb()  # made before serving: it takes a second, longer than a query may wait
        with super().running():
            yield self

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is over."""
        line = await reader.readline()
        if not line:
            return False
        while await reader.readline() not in (b"\r\n", b"\n", b""):
            pass
        target = line.split()[1].decode()
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        key = _kind(parts.path, query)
        patient = query.get("patient", [parts.path.rsplit("/", 1)[-1]])[0]
        fault = patient.removeprefix("fault-") if patient.startswith("fault-") else self.faults.get(key, "ok")
        self.requests.append((key, fault))
        if fault == "stall":
            await reader.read()  # until the client gives up and closes
            return False
        if fault == "drop":
            return False
        if fault == "slow":
            await asyncio.sleep(SLOW_S)
            fault = "ok"
        if fault == "500":
            await self._send(writer, 500, _outcome("boom"))
        elif fault == "429":
            await self._send(writer, 429, _outcome("slow down"), {"Retry-After": "1"})
        elif fault == "redirect-other-host":
            await self._send(writer, 302, b"", {"Location": f"http://other.example{target}"})
        elif fault == "html":
            await self._send(writer, 200, b"<html><body>Maintenance</body></html>", content_type="text/html")
        elif fault == "truncated":
            body = self._answer(key, target, query)
            await self._send(writer, 200, body[: len(body) // 2])
        elif fault in ("gzip", "gzip-bomb"):
            body = _bomb() if fault == "gzip-bomb" else gzip.compress(self._answer(key, target, query))
            await self._send(writer, 200, body, {"Content-Encoding": "gzip"})
        elif fault == "trickle":
            body = self._answer(key, target, query)
            writer.write(_head(200, len(body), "application/fhir+json", {}))
            for i in range(len(body)):
                writer.write(body[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
        else:
            await self._send(writer, 200, self._answer(key, target, query, fault))
        return True

    def _answer(self, key: str, target: str, query: dict[str, list[str]], fault: str = "ok") -> bytes:
        if key == "patient":
            return orjson.dumps(self.data["patient"][0])
        resources = self.data.get(key, [])
        links: list[dict[str, str]] = []
        if fault == "next-self":
            links = [{"relation": "next", "url": f"http://127.0.0.1:{self.port}{target}"}]
        elif fault == "next-other-host":
            links = [{"relation": "next", "url": f"http://other.example{target}"}]
        elif fault == "pages":
            page = int(query.get("_page", ["1"])[0])
            resources = resources[page - 1 : page] if page <= len(resources) else []
            if page < PAGES:
                following = {k: v[0] for k, v in query.items()} | {"_page": str(page + 1)}
                links = [{"relation": "next", "url": f"{self.base_url}/Observation?{urlencode(following)}"}]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": [{"resource": r} for r in resources],
        }
        return orjson.dumps(bundle)

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/fhir+json",
    ) -> None:
        writer.write(_head(status, len(body), content_type, headers or {}) + body)
        await writer.drain()


@functools.cache
def _bomb() -> bytes:
    """A JSON document of 200 MB of spaces, gzipped to about 200 KB."""
    inflated = b'{"resourceType":"Bundle","entry":[' + b" " * 200_000_000 + b"]}"
    return gzip.compress(inflated, compresslevel=9)


def _head(status: int, length: int, content_type: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _outcome(text: str) -> bytes:
    issue = {"severity": "error", "code": "exception", "diagnostics": text}
    return orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue]})
