"""What reading (d)'s six queries costs beneath the service: the service's own fetch (prefetch
resolution, `FhirClient`: checks, bounds, retries' timeouts, metrics) beside two floors, in the same
minutes, against the FHIR stub with no delay:

- aiohttp: the six GETs on one session made as the service makes it, each body read and decoded
  (json_bodies.decode), nothing else: what the service's HTTP client costs at the least;
- protocol: the six GETs over six kept-alive asyncio connections, each answer parsed with httptools
  and decoded: what any asyncio client costs at the least.

(d)'s target is a ratio to (a): as a prefetched call gets cheaper, the fetch's own cost weighs more,
and the aiohttp floor bounds how cheap (a) may get with (d) still at 2.0x. CPU ms per (d) call's
worth, median of the rounds. Run: `.venv/bin/python -m bench.fetch_floor <stub base URL>` (part of
`make bench`, with the stub on another core).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httptools
import orjson
import uvloop
from yarl import URL

from bench.workloads import workloads
from cds_service.content.loader import load_content
from cds_service.fhir.client import FhirClient, make_http_client
from cds_service.fhir.prefetch import render, resolve
from cds_service.json_bodies import decode
from cds_service.protocol import HookRequest
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.settings import Settings

CALLS, ROUNDS = 300, 7


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: a GET at a time, its body gathered by httptools."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is none of asyncio's classes

    def get(self, target: str, host: str) -> asyncio.Future[bytes]:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.body: list[bytes] = []
        self.parser = httptools.HttpResponseParser(self)
        self.transport.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/fhir+json\r\n\r\n".encode())
        return self.answer

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.answer.set_result(b"".join(self.body))


async def _cpu_ms(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.process_time()
    for _ in range(CALLS):
        await call()
    return (time.process_time() - started) / CALLS * 1000


async def measure(stub: str) -> dict[str, float]:
    settings = Settings(auth="off", fhir_allow_insecure=True)
    content = load_content()
    keys = RecordReader(content, settings).prefetch(*VitaminDCramps.reads)
    request = HookRequest.model_validate(decode(orjson.dumps(workloads(stub)["d-fetched"])))
    urls = [URL(f"{stub}/{render(key.template, request.context)}") for key in keys]
    async with make_http_client(settings) as http:
        fhir = FhirClient(http, settings)
        loop = asyncio.get_running_loop()
        connections = [(await loop.create_connection(_Connection, str(u.host), u.port or 80))[1] for u in urls]

        async def service() -> None:
            data = await resolve(keys, request, fhir)
            assert not data.unavailable, data.unavailable

        async def get(url: URL) -> Any:
            async with http.get(url) as answer:
                return decode(await answer.read())

        async def aiohttp_floor() -> None:
            await asyncio.gather(*(get(u) for u in urls))

        async def protocol_floor() -> None:
            bodies = await asyncio.gather(
                *(c.get(u.raw_path_qs, u.raw_authority) for c, u in zip(connections, urls, strict=True))
            )
            for body in bodies:
                decode(body)

        turns = {"service": service, "aiohttp": aiohttp_floor, "protocol": protocol_floor}
        spent: dict[str, list[float]] = {name: [] for name in turns}
        for call in turns.values():  # warm: pools filled, caches met
            for _ in range(50):
                await call()
        for _ in range(ROUNDS):
            for name, call in turns.items():
                spent[name].append(await _cpu_ms(call))
        for connection in connections:
            connection.transport.close()
    return {name: round(statistics.median(v), 3) for name, v in spent.items()}


def report(stub: str) -> dict[str, float]:
    figures = uvloop.run(measure(stub))
    print("\n(d)'s six queries, in process: CPU ms per call (median of 7 rounds of 300)")
    print(
        f"  service's fetch {figures['service']:.3f}   aiohttp floor {figures['aiohttp']:.3f}   "
        f"protocol floor {figures['protocol']:.3f}"
    )
    return figures


if __name__ == "__main__":
    report(sys.argv[1])
