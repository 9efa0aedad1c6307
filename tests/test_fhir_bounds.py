"""The attacks of the FHIR client's bounds, each against a real HTTP server on loopback
(tests/fhir_routes.py): a gzip page that inflates to millions of empty entries, `next` links and
redirects that leave the fhirServer's base path once the server decodes them, and status codes
that must not become metric label values."""

from __future__ import annotations

import gzip
import posixpath
import re
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import pytest
from yarl import URL

from cds_service.fhir import client as fhir_client
from cds_service.fhir.client import FhirClient, FhirServer, FhirUnavailable, make_http_client, within
from cds_service.fhir.medications import bare_references
from cds_service.metrics import FHIR_OUTCOMES, fhir_outcome, status_class
from cds_service.settings import Settings
from tests.builders import bundle, obs
from tests.fhir_routes import Call, FhirRoutes, Reply
from tests.test_fetch import VITAMIN_D, route_fhir, without_prefetch

pytestmark = pytest.mark.anyio
SEARCH = "Observation?patient=p1&code=x"
TOKEN = "tok-bounds-123"
SERVICE = "/cds-services/vitamin-d-cramps"
MB = 2**20


@pytest.fixture
def loopback() -> Settings:
    return Settings(fhir_allow_insecure=True)  # default limits: CDS_FHIR_MAX_BYTES is 20 MB


@pytest.fixture
async def fhir(loopback: Settings) -> AsyncIterator[FhirClient]:
    async with make_http_client(loopback) as http:
        yield FhirClient(http, loopback)


async def get(fhir: FhirClient, routes: FhirRoutes, query: str = SEARCH) -> dict[str, Any]:
    return await fhir.get(FhirServer(URL(routes.base_url), TOKEN), query, fhir.deadline())


def gzipped(reply_body: bytes) -> Reply:
    return Reply(content=gzip.compress(reply_body, compresslevel=9), headers={"Content-Encoding": "gzip"})


def empty_entries(count: int) -> bytes:
    """A searchset Bundle of `count` empty entries: three bytes each, some 80 once decoded."""
    return b'{"resourceType":"Bundle","type":"searchset","entry":[' + b"{}," * (count - 1) + b"{}]}"


# --- a page's entries and bytes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> Reply:
    """6.5 million empty entries: 19.5 MB inflated, under the 20 MB byte limit, about 20 KB of gzip."""
    return gzipped(empty_entries(6_500_000))


async def test_a_gzip_page_of_millions_of_empty_entries_is_refused_in_little_memory(
    fhir: FhirClient, fhir_routes: FhirRoutes, loopback: Settings, bomb: Reply
) -> None:
    """Decoded whole, such a page took 589 MB; it is refused while it streams in, before decoding."""
    assert len(bomb.content) < 100_000 and 18 * MB < 6_500_000 * 3 < loopback.fhir_max_bytes
    route = fhir_routes.get("/Observation").mock(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(FhirUnavailable) as exc:
            await get(fhir, fhir_routes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.reason == "the answer holds too many JSON values"
    assert route.call_count == 1  # refused, not retried
    assert peak < 8 * MB, f"{peak / MB:.1f} MB"


async def test_a_plain_page_of_many_empty_entries_is_refused_too(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.get("/Observation").mock(Reply(content=empty_entries(1_000_000)))
    with pytest.raises(FhirUnavailable, match="too many JSON values"):
        await get(fhir, fhir_routes)


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize(
    ("extra", "reason"), [(1, "the answer holds too many JSON values"), (0, "the answer is not JSON")]
)
async def test_values_are_bounded_from_the_first_byte_of_a_body_longer_than_the_bound(
    fhir: FhirClient, fhir_routes: FhirRoutes, zipped: bool, extra: int, reason: str
) -> None:
    """Values are counted only once a body (as it streams in, inflated) is longer than
    MAX_JSON_VALUES bytes, each counted character being a byte, and then from its first byte: one
    counted character more than the bound is refused for its values; exactly the bound is not (it
    fails as what it is, not JSON)."""
    body = b"[" * (fhir_client.MAX_JSON_VALUES + extra)
    fhir_routes.get("/Observation").mock(gzipped(body) if zipped else Reply(content=body))
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert exc.value.reason == reason


async def test_a_page_of_more_than_a_thousand_entries_is_refused(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.get("/Observation").mock(gzipped(empty_entries(fhir_client.MAX_PAGE_ENTRIES + 1)))
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert exc.value.reason == "the answer holds too many entries"


async def test_a_later_page_of_too_many_entries_is_refused(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    first = bundle(obs("62292-8", 12, "ng/mL"))
    first["link"] = [{"relation": "next", "url": "Observation?page=2"}]
    fhir_routes.get("/Observation", params={"code": "x"}).respond(json=first)
    fhir_routes.get("/Observation", params={"page": "2"}).mock(Reply(content=empty_entries(5000)))
    with pytest.raises(FhirUnavailable, match="too many entries"):
        await get(fhir, fhir_routes)


async def test_a_full_page_of_real_entries_is_read(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """A thousand Observations, richer than any page a server sends for a `_count` of 100."""
    full = bundle(*(obs("62292-8", 10 + i % 40, "ng/mL", id=f"o{i}", note=[{"text": "a, b, c"}]) for i in range(1000)))
    fhir_routes.get("/Observation").mock(gzipped(orjson.dumps(full)))
    assert len((await get(fhir, fhir_routes))["entry"]) == 1000


async def test_the_byte_limit_holds_for_the_inflated_bytes(loopback: Settings, fhir_routes: FhirRoutes) -> None:
    """100 MB of spaces in 100 KB of gzip, against a 2 MB limit: refused once 2 MB have inflated,
    counted as the body streams in, never holding much more than the limit."""
    small = loopback.model_copy(update={"fhir_max_bytes": 2 * MB})
    fhir_routes.get("/Observation").mock(gzipped(b'{"resourceType":"Bundle","entry":[' + b" " * 100 * MB + b"]}"))
    async with make_http_client(small) as http:
        tracemalloc.start()
        try:
            with pytest.raises(FhirUnavailable) as exc:
                await get(FhirClient(http, small), fhir_routes)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert exc.value.reason == "the answer is too large"
    assert peak < 2 * MB + 4 * MB, f"{peak / MB:.1f} MB"


async def test_a_bomb_makes_the_data_unavailable_and_is_logged(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, bomb: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the service: an optional key's bomb is data unavailable, said on the card and logged
    with its reason; the call still answers."""
    caplog.set_level("INFO", logger="cds_service")
    route_fhir(fhir_routes, vitamin_d=bundle(*VITAMIN_D), electrolytes=bomb)
    response = await fetching.post(SERVICE, json=without_prefetch(fhir_routes.base_url))
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert "could not be read from the EHR's FHIR server" in cards[0]["detail"]
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    assert line.unavailable == "electrolytes: the answer holds too many JSON values"


# --- next links and redirects that leave the base path once decoded -----------------------------

ESCAPES = [
    "..%2F..%2Fother-tenant/Observation?page=2",
    "..%2f..%2fother-tenant/Observation?page=2",
    "Observation%2F..%2F..%2Fother-tenant%2FObservation?page=2",
    "{base}/..%2F..%2Fother-tenant/Observation?page=2",
    "%2E%2E/%2E%2E/other-tenant/Observation?page=2",
    ".%2e/other-tenant/Observation?page=2",
    "{base}/%2e%2e/other-tenant/Observation?page=2",
    "..%5C..%5Cother-tenant/Observation?page=2",
    "..\\..\\other-tenant/Observation?page=2",
    "..;/..;/other-tenant/Observation?page=2",
    "%252E%252E%252F%252E%252E%252Fother-tenant/Observation?page=2",  # for a server that decodes twice
]


def _outside(call: Call) -> bool:
    """Whether a request's path leaves /fhir/ once a server decodes and normalises it (twice)."""
    path = unquote(unquote(urlsplit(call.target).path)).replace("\\", "/")
    path = re.sub(r";[^/]*", "", path)
    return not posixpath.normpath(path).startswith("/fhir/")


@pytest.mark.parametrize("link", ESCAPES)
async def test_a_next_link_that_leaves_the_base_path_is_not_followed(
    fhir: FhirClient, fhir_routes: FhirRoutes, link: str
) -> None:
    fhir_routes.all_called = False
    first = bundle(obs("62292-8", 12, "ng/mL"))
    first["link"] = [{"relation": "next", "url": link.format(base=fhir_routes.base_url)}]
    search = fhir_routes.get("/Observation", params={"code": "x"}).respond(json=first)
    anything_else = fhir_routes.get().respond(json=bundle())
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert exc.value.reason == "a next link points to another server"
    assert search.call_count == 1 and anything_else.call_count == 0
    calls = [*search.calls, *anything_else.calls, *fhir_routes.unmatched]
    assert not [c.target for c in calls if _outside(c)]
    assert not [c.target for c in calls if _outside(c) and "authorization" in c.headers]


@pytest.mark.parametrize("link", ESCAPES[:4])
async def test_a_redirect_that_leaves_the_base_path_is_not_followed(
    fhir: FhirClient, fhir_routes: FhirRoutes, link: str
) -> None:
    fhir_routes.all_called = False
    fhir_routes.get("/Observation", params={"code": "x"}).respond(
        302, headers={"Location": link.format(base=fhir_routes.base_url)}
    )
    anything_else = fhir_routes.get().respond(json=bundle())
    with pytest.raises(FhirUnavailable, match="redirected to another server"):
        await get(fhir, fhir_routes)
    assert anything_else.call_count == 0 and not fhir_routes.unmatched


async def test_plain_next_links_are_still_followed(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """Percent-encoding that stays inside a segment (a `:` or a space in a page token) is no escape."""
    first = bundle(obs("62292-8", 12, "ng/mL", id="a"))
    first["link"] = [{"relation": "next", "url": f"{fhir_routes.base_url}/Observation/_page%3A2%20x?n=2"}]
    fhir_routes.get("/Observation", params={"code": "x"}).respond(json=first)
    second = fhir_routes.get(regex=r"^/fhir/Observation/_page").respond(
        json=bundle(obs("62292-8", 13, "ng/mL", id="b"))
    )
    got = await get(fhir, fhir_routes)
    assert [e["resource"]["id"] for e in got["entry"]] == ["a", "b"]
    assert second.calls[-1].target == "/fhir/Observation/_page%3A2%20x?n=2"  # as the server wrote it
    assert second.calls[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_query_that_would_leave_the_base_path_is_not_sent(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """The first URL is checked the same way: a read whose id a server would decode into `../..`."""
    fhir_routes.all_called = False
    anything = fhir_routes.get().respond(json={"resourceType": "Medication"})
    with pytest.raises(FhirUnavailable, match="the query leaves the fhirServer"):
        await get(fhir, fhir_routes, "Medication/..%2F..%2Fother-tenant%2FMedication%2F1")
    assert anything.call_count == 0


# --- metric labels ------------------------------------------------------------------------------

STATUSES = [418, 499, 599, 207, 226, 451, 999, 600, 300]


def _label_values(text: str, metric: str, label: str) -> set[str]:
    return set(re.findall(rf'^{metric}\{{[^}}]*{label}="([^"]*)"', text, re.MULTILINE))


async def test_status_codes_never_become_label_values(fetching: httpx.AsyncClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.all_called = False
    routes = route_fhir(fhir_routes, vitamin_d=bundle(*VITAMIN_D))
    routes["electrolytes"].mock(
        side_effect=[Reply(status, json={"resourceType": "OperationOutcome"}) for status in STATUSES]
    )
    for _ in STATUSES:
        response = await fetching.post(SERVICE, json=without_prefetch(fhir_routes.base_url))
        assert response.status_code == 200
    assert routes["electrolytes"].call_count == len(STATUSES)
    text = (await fetching.get("/metrics")).text
    outcomes = _label_values(text, "cds_fhir_queries_total", "outcome")
    assert {"ok", "2xx", "3xx", "4xx", "5xx", "other_status"} <= outcomes <= FHIR_OUTCOMES
    for status in STATUSES:
        assert not re.search(rf'="[^"]*\b{status}\b[^"]*"', text), status


@pytest.mark.parametrize(
    ("status", "label"),
    [(200, "2xx"), (207, "2xx"), (302, "3xx"), (404, "4xx"), (499, "4xx"), (503, "5xx"), (599, "5xx")]
    + [(100, "other_status"), (600, "other_status"), (999, "other_status"), (42, "other_status")],
)
def test_status_classes(status: int, label: str) -> None:
    assert status_class(status) == label


def test_an_outcome_outside_the_set_is_other() -> None:
    assert fhir_outcome("HTTP 418") == "other" and fhir_outcome("timeout") == "timeout"


def test_only_valid_fhir_ids_of_medications_are_read() -> None:
    """A Medication is read as `Medication/<id>` only for an id that cannot become another path."""
    ids = ["ok-1.2", "..", ".", "..%2F..%2Fother", "%2E%2E", "a b", "x" * 65, "e4Ba.3CkH7"]
    requests = [
        {"resourceType": "MedicationRequest", "medicationReference": {"reference": f"Medication/{i}"}} for i in ids
    ]
    assert bare_references(requests) == ["Medication/ok-1.2", "Medication/e4Ba.3CkH7"]


def test_a_medication_on_another_server_is_not_read_from_this_one() -> None:
    """From an attack run: `https://other.example/fhir/Medication/m9` was read as `Medication/m9`
    from the call's fhirServer, another resource that shares the id there. An absolute reference
    is read only under the call's FHIR server."""
    here = "https://ehr.example.org/fhir"
    references = [f"{here}/Medication/m1", "https://other.example/fhir/Medication/m9", "Medication/m2"]
    requests = [{"resourceType": "MedicationRequest", "medicationReference": {"reference": r}} for r in references]
    assert bare_references(requests, here) == ["Medication/m1", "Medication/m2"]
    assert bare_references(requests) == ["Medication/m2"]


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.x/r4/..%00/r4evil",
        "https://ehr.x/r4/..%c0%af..%c0%afevil",
        "https://ehr.x/r4/%u002e%u002e/evil",
        "https://ehr.x/r4/.../evil",
        "https://ehr.x/r4/..%20/evil",
        "https://ehr.x/r4/..%09/evil",
        "https://ehr.x/r4evil",
        "https://ehr.x/r4/../evil",
    ],
)
def test_a_fhir_server_that_some_server_would_read_out_of_the_base_is_not_under_it(url: str) -> None:
    """From an attack run: segments that IIS, a NUL-truncating or a trimming server reads as `..`
    passed the check of an issuer's own FHIR servers (fhir_servers), and were sent its token."""
    assert within("https://ehr.x/r4/tenant", ["https://ehr.x/r4"]) and within(
        "https://EHR.x:443/r4", ["https://ehr.x/r4/"]
    )
    assert not within(url, ["https://ehr.x/r4"])
