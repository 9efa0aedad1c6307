"""Hook calls against a sick FHIR server (tests/fault_server.py, real sockets on loopback).

For every fault, on the required key (vitamin D) and on an optional one (electrolytes): the call
ends within its deadline, with a 412 naming the reason or with the cards and a note of what was
unavailable; then a healthy call succeeds, and no task or connection is left behind.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.builders import normal_electrolytes, obs
from tests.conftest import AppFactory, make_client
from tests.fault_server import FAULTS, FaultServer
from tests.test_fetch import without_prefetch

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
TIMEOUT_S, DEADLINE_S = 0.5, 1.5
# Five vitamin D results, so that a paged answer has something on each of its first pages.
VITAMIN_D = [obs("62292-8", 12 + i, "ng/mL", f"2026-11-{10 - i:02d}") for i in range(5)]
DATA: dict[str, list[dict[str, Any]]] = {
    "patient": [{"resourceType": "Patient", "id": "p1"}],
    "vitaminD": VITAMIN_D,
    "electrolytes": normal_electrolytes(),
    "conditions": [],
    "medications": [],
    "pendingOrders": [],
}
# What each fault makes of the query: the reason in the 412, or None when the data is still had.
REASONS: dict[str, str | None] = {
    "stall": "timed out",
    "trickle": "timed out",
    "drop": "connection error",
    "500": "HTTP 500",
    "429": "HTTP 429",
    "html": "the answer is not JSON",
    "truncated": "the answer is not JSON",
    "next-self": "next links loop",
    "next-other-host": "a next link points to another server",
    "pages": None,  # the first pages are read, up to CDS_FHIR_MAX_PAGES
    "redirect-other-host": "redirected to another server",
    "slow": "timed out",  # answers after 1.5 s, past the 0.5 s a query has here
    "gzip": None,  # read like any answer
    "gzip-bomb": "the answer is too large",  # inflated only up to the size limit
}
assert set(REASONS) == set(FAULTS)


@pytest.fixture(scope="module")
def fhir() -> Iterator[FaultServer]:
    with FaultServer(DATA).running() as server:
        yield server


@pytest.fixture
async def client(make_app: AppFactory, fhir: FaultServer) -> AsyncIterator[httpx.AsyncClient]:
    fhir.faults.clear()
    app = make_app(fhir_allow_insecure=True, fhir_timeout_s=TIMEOUT_S, fhir_deadline_s=DEADLINE_S)
    async with make_client(app) as c:
        yield c


async def _healthy_call(client: httpx.AsyncClient, fhir: FaultServer) -> httpx.Response:
    fhir.faults.clear()
    answer = await client.post(URL, json=without_prefetch(server=fhir.base_url))
    assert answer.status_code == 200
    assert [c["source"]["topic"]["code"] for c in answer.json()["cards"]] == ["vitd-deficient"]
    return answer


async def _tasks_settled(most: int) -> int:
    """The event loop's tasks once those ending as the call returned have ended (up to a second: on
    a loaded machine a closing connection's task can outlive the answer by a few milliseconds); a
    fetch left running on a stalled server never ends and stays counted."""
    for _ in range(50):
        if len(asyncio.all_tasks()) <= most:
            break
        await asyncio.sleep(0.02)
    return len(asyncio.all_tasks())


async def _settled(fhir: FaultServer, most: int) -> int:
    """The server's open connections once closes in flight have landed (up to a second)."""
    for _ in range(50):
        if fhir.open_connections <= most:
            break
        await asyncio.sleep(0.02)
    return fhir.open_connections


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_fault_on_the_vitamin_d_query(client: httpx.AsyncClient, fhir: FaultServer, fault: str) -> None:
    await _healthy_call(client, fhir)
    tasks = len(asyncio.all_tasks())
    fhir.faults["vitaminD"] = fault
    started = time.monotonic()
    answer = await client.post(URL, json=without_prefetch(server=fhir.base_url))
    elapsed = time.monotonic() - started
    # the deadline, plus the rest of the call's work on a loaded machine; a stalled or trickling
    # server left unbounded would take far longer (the stall never ends, the trickle takes minutes)
    assert elapsed < DEADLINE_S + 2.0
    reason = REASONS[fault]
    if reason is None:
        cards = answer.json()["cards"]
        assert answer.status_code == 200 and cards[0]["source"]["topic"]["code"] == "vitd-deficient"
        assert "16 ng/mL" in cards[0]["detail"]  # the newest result (of the pages read)
        if fault == "pages":
            pages = [r for r in fhir.requests if r == ("vitaminD", "pages")]
            assert len(pages) == 5  # CDS_FHIR_MAX_PAGES, of 10,000 offered
    else:
        assert answer.status_code == 412
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert f"vitaminD (vitamin D results): {reason}" in outcome["issue"][0]["diagnostics"]
    await _healthy_call(client, fhir)
    assert await _tasks_settled(tasks) == tasks
    assert await _settled(fhir, 6) <= 6  # one kept-alive connection per key at most


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_fault_on_the_electrolytes_query(client: httpx.AsyncClient, fhir: FaultServer, fault: str) -> None:
    fhir.faults["electrolytes"] = fault
    started = time.monotonic()
    answer = await client.post(URL, json=without_prefetch(server=fhir.base_url))
    assert time.monotonic() - started < DEADLINE_S + 2.0  # as above
    assert answer.status_code == 200
    cards = answer.json()["cards"]
    assert cards[0]["source"]["topic"]["code"] == "vitd-deficient"
    unavailable = "Potassium, magnesium, calcium and albumin results could not be read"
    assert (unavailable in cards[0]["detail"]) is (REASONS[fault] is not None)
    await _healthy_call(client, fhir)


async def test_a_gzip_bomb_costs_memory_up_to_the_size_limit_only(make_app: AppFactory, fhir: FaultServer) -> None:
    """Four calls at once against 200 KB of gzip that inflates to 200 MB: each is refused once its
    body passes CDS_FHIR_MAX_BYTES (8 MB here), and the memory the process takes is bounded by the
    calls times the limit (inflating whole took 670 MB for one call, 1.3 GB for four)."""
    fhir.faults.clear()
    fhir.faults["vitaminD"] = "gzip-bomb"
    limit = 8 * 2**20
    app = make_app(fhir_allow_insecure=True, fhir_timeout_s=5, fhir_deadline_s=10, fhir_max_bytes=limit)
    async with make_client(app) as client:
        tracemalloc.start()
        try:
            answers = await asyncio.gather(
                *(client.post(URL, json=without_prefetch(server=fhir.base_url)) for _ in range(4))
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert all(a.status_code == 412 and "too large" in a.text for a in answers)
    assert peak < 4 * (limit + 2 * 2**20) + 16 * 2**20 < 100 * 2**20, f"{peak / 2**20:.0f} MB"


async def test_a_429_with_a_short_retry_after_is_retried_once(client: httpx.AsyncClient, fhir: FaultServer) -> None:
    fhir.requests.clear()
    fhir.faults["vitaminD"] = "429"
    answer = await client.post(URL, json=without_prefetch(server=fhir.base_url))
    assert answer.status_code == 412
    assert [r for r in fhir.requests if r[0] == "vitaminD"] == [("vitaminD", "429")] * 2
