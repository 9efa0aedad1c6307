"""The FHIR client against faults a real server cannot be made to show (respx), and the rules on
which servers may be contacted (real sockets: nothing may connect)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from cds_service.fhir.client import FhirClient, FhirServer, FhirUnavailable, is_public, make_http_client
from cds_service.settings import Settings
from tests.builders import bundle, obs

pytestmark = pytest.mark.anyio
BASE = "https://ehr.example.org/fhir"
SEARCH = "Observation?patient=p1&code=x"


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def fhir(settings: Settings) -> AsyncIterator[FhirClient]:
    async with make_http_client(settings) as http:
        yield FhirClient(http, settings)


def server(token: str | None = "tok-123") -> FhirServer:
    return FhirServer(httpx.URL(BASE), token)


async def get(fhir: FhirClient, query: str = SEARCH, srv: FhirServer | None = None) -> dict[str, Any]:
    return await fhir.get(srv or server(), query, fhir.deadline())


def page(n: int, next_url: str | None = None, size: int = 2) -> dict[str, Any]:
    b = bundle(*(obs("62292-8", 10 + n, "ng/mL", id=f"p{n}-{i}") for i in range(size)))
    if next_url:
        b["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return b


# --- headers ------------------------------------------------------------------------------------


async def test_sends_bearer_token_and_accept(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").respond(json=page(1))
        await get(fhir)
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Bearer tok-123"
    assert sent.headers["Accept"] == "application/fhir+json"
    assert sent.url.params["patient"] == "p1"


async def test_no_authorization_header_without_a_token(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"})
        assert (await get(fhir, "Patient/p1", server(token=None)))["id"] == "p1"
    assert "Authorization" not in route.calls.last.request.headers


def test_the_token_never_shows_in_a_repr() -> None:
    assert "tok-123" not in repr(server())


# --- paging -------------------------------------------------------------------------------------


async def test_follows_next_links(fhir: FhirClient) -> None:
    with respx.mock:
        respx.get(f"{BASE}/Observation", params={"code": "x"}).respond(json=page(1, f"{BASE}/Observation?page=2"))
        respx.get(f"{BASE}/Observation", params={"page": "2"}).respond(json=page(2, "Observation?page=3"))
        respx.get(f"{BASE}/Observation", params={"page": "3"}).respond(json=page(3))
        got = await get(fhir)
    assert [e["resource"]["id"] for e in got["entry"]] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]


async def test_page_bound(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").mock(
            side_effect=lambda r: httpx.Response(
                200, json=page(len(route.calls), f"{BASE}/Observation?n={len(route.calls)}")
            )
        )
        got = await get(fhir)
    assert route.call_count == 5 and len(got["entry"]) == 10  # CDS_FHIR_MAX_PAGES=5 by default


async def test_resource_bound(settings: Settings) -> None:
    bounded = settings.model_copy(update={"fhir_max_resources": 3})
    async with make_http_client(bounded) as http:
        fhir = FhirClient(http, bounded)
        with respx.mock:
            respx.get(f"{BASE}/Observation", params={"code": "x"}).respond(json=page(1, f"{BASE}/Observation?p=2"))
            respx.get(f"{BASE}/Observation", params={"p": "2"}).respond(json=page(2, f"{BASE}/Observation?p=3"))
            route3 = respx.get(f"{BASE}/Observation", params={"p": "3"}).respond(json=page(3))
            got = await get(fhir)
    assert len(got["entry"]) == 3 and route3.call_count == 0


@pytest.mark.parametrize(
    ("next_url", "reason"),
    [
        (f"{BASE}/Observation?patient=p1&code=x", "next links loop"),
        ("https://evil.example.net/fhir/Observation?page=2", "a next link points to another server"),
        ("http://ehr.example.org/fhir/Observation?page=2", "a next link points to another server"),
        ("https://ehr.example.org/other/Observation?page=2", "a next link points to another server"),
    ],
)
async def test_bad_next_links_make_the_data_unavailable(fhir: FhirClient, next_url: str, reason: str) -> None:
    with respx.mock:
        respx.get(f"{BASE}/Observation").respond(json=page(1, next_url))
        with pytest.raises(FhirUnavailable) as exc:
            await get(fhir)
    assert exc.value.reason == reason


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_one_retry_on_gateway_errors(fhir: FhirClient, status: int) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").mock(
            side_effect=[httpx.Response(status), httpx.Response(200, json=page(1))]
        )
        assert len((await get(fhir))["entry"]) == 2
    assert route.call_count == 2


async def test_only_one_retry(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").respond(503)
        with pytest.raises(FhirUnavailable, match="HTTP 503"):
            await get(fhir)
    assert route.call_count == 2


async def test_one_retry_on_connection_errors(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=page(1))]
        )
        await get(fhir)
        assert route.call_count == 2
        route.mock(side_effect=httpx.RemoteProtocolError("dropped"))
        with pytest.raises(FhirUnavailable, match="connection error"):
            await get(fhir)


async def test_a_429_is_retried_once_after_its_retry_after(fhir: FhirClient) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "0.3"}), httpx.Response(200, json=page(1))]
        )
        started = time.monotonic()
        assert len((await get(fhir))["entry"]) == 2
    assert route.call_count == 2 and time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "retry_after",
    [None, "Wed, 25 Nov 2026 10:00:00 GMT", "soon", "-1", "3600", "9"],  # 9 s: past the hook's deadline
)
async def test_a_429_is_not_retried_without_a_wait_that_fits(fhir: FhirClient, retry_after: str | None) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").respond(
            429, headers={"Retry-After": retry_after} if retry_after else {}
        )
        with pytest.raises(FhirUnavailable, match="HTTP 429"):
            await get(fhir)
    assert route.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500])
async def test_no_retry_on_other_errors(fhir: FhirClient, status: int) -> None:
    with respx.mock:
        route = respx.get(f"{BASE}/Observation").respond(status, headers={"Retry-After": "1"})
        with pytest.raises(FhirUnavailable) as exc:
            await get(fhir)
    assert route.call_count == 1 and exc.value.reason == f"HTTP {status}"


# --- timeouts and the deadline ------------------------------------------------------------------


async def test_a_stalled_query_times_out(settings: Settings) -> None:
    quick = settings.model_copy(update={"fhir_timeout_s": 0.2})
    async with make_http_client(quick) as http:
        fhir = FhirClient(http, quick)

        async def stall(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(5)
            return httpx.Response(200, json=page(1))

        with respx.mock:
            respx.get(f"{BASE}/Observation").mock(side_effect=stall)
            started = time.perf_counter()
            with pytest.raises(FhirUnavailable, match="timed out"):
                await get(fhir)
    assert time.perf_counter() - started < 1


async def test_the_deadline_bounds_all_pages(settings: Settings) -> None:
    tight = settings.model_copy(update={"fhir_timeout_s": 1.0, "fhir_deadline_s": 0.5})
    async with make_http_client(tight) as http:
        fhir = FhirClient(http, tight)

        async def slow_page(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.2)
            return httpx.Response(200, json=page(1, f"{BASE}/Observation?n={time.perf_counter()}"))

        with respx.mock:
            respx.get(f"{BASE}/Observation").mock(side_effect=slow_page)
            started = time.perf_counter()
            with pytest.raises(FhirUnavailable):
                await get(fhir)
    assert time.perf_counter() - started < 0.8


# --- answers that are not FHIR ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, html="<html>login</html>"), "the answer is not JSON"),
        (
            httpx.Response(200, content=b'{"resourceType": "Bun', headers={"content-type": "application/fhir+json"}),
            "the answer is not JSON",
        ),
        (httpx.Response(200, json=[1, 2]), "the answer is not a FHIR resource"),
        (httpx.Response(200, json={"resourceType": "OperationOutcome"}), "the answer to a search is not a Bundle"),
        (httpx.Response(200, json={"resourceType": "Bundle", "entry": {"a": 1}}), "the Bundle's entry is not an array"),
        (httpx.Response(302, headers={"location": "https://evil.example.net/steal"}), "redirected to another server"),
    ],
)
async def test_unusable_answers(fhir: FhirClient, response: httpx.Response, reason: str) -> None:
    with respx.mock:
        respx.get(f"{BASE}/Observation").mock(return_value=response)
        with pytest.raises(FhirUnavailable) as exc:
            await get(fhir)
    assert exc.value.reason == reason


async def test_same_server_redirect_is_followed(fhir: FhirClient) -> None:
    with respx.mock:
        respx.get(f"{BASE}/Observation", params={"code": "x"}).respond(
            302, headers={"location": f"{BASE}/Observation?moved=1"}
        )
        respx.get(f"{BASE}/Observation", params={"moved": "1"}).respond(json=page(1))
        assert len((await get(fhir))["entry"]) == 2


async def test_read_of_the_wrong_type(fhir: FhirClient) -> None:
    with respx.mock:
        respx.get(f"{BASE}/Patient/p1").respond(json={"resourceType": "Group", "id": "p1"})
        with pytest.raises(FhirUnavailable, match="did not answer with a Patient"):
            await get(fhir, "Patient/p1")


async def test_an_oversized_answer_is_not_read(settings: Settings) -> None:
    small = settings.model_copy(update={"fhir_max_bytes": 1000})
    async with make_http_client(small) as http:
        fhir = FhirClient(http, small)
        with respx.mock:
            respx.get(f"{BASE}/Observation").respond(json=page(1, size=20))
            with pytest.raises(FhirUnavailable, match="too large"):
                await get(fhir)


# --- which servers may be contacted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "no fhirServer in the request"),
        ("http://ehr.example.org/fhir", "fhirServer refused: not an https URL"),
        ("file:///etc/passwd", "fhirServer refused: not an https URL"),
        ("ftp://ehr.example.org/fhir", "fhirServer refused: not an https URL"),
        ("https://user:pw@ehr.example.org/fhir", "fhirServer refused: credentials in the URL"),
        ("https://ehr.example.org/fhir?x=1", "fhirServer refused: query or fragment in the URL"),
    ],
)
async def test_policy_refuses(fhir: FhirClient, url: str | None, reason: str) -> None:
    with pytest.raises(FhirUnavailable) as exc:
        fhir.server(url, None)
    assert exc.value.reason == reason


async def test_allowlist(settings: Settings) -> None:
    listed = settings.model_copy(update={"fhir_allowed_hosts": ["ehr.example.org"]})
    async with make_http_client(listed) as http:
        fhir = FhirClient(http, listed)
        assert fhir.server("https://EHR.example.org/fhir", None).base.host == "ehr.example.org"
        with pytest.raises(FhirUnavailable, match="not on the allowlist"):
            fhir.server("https://other.example.org/fhir", None)


def test_allowlist_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_FHIR_ALLOWED_HOSTS", "a.example.org, B.example.org")
    assert Settings().fhir_allowed_hosts == ["a.example.org", "b.example.org"]


def test_insecure_lifts_the_https_rule_but_not_the_allowlist() -> None:
    insecure = Settings(fhir_allow_insecure=True, fhir_allowed_hosts=["localhost"])
    fhir = FhirClient(httpx.AsyncClient(), insecure)
    assert fhir.server("http://localhost:8080/fhir", None).base.scheme == "http"
    with pytest.raises(FhirUnavailable, match="allowlist"):
        fhir.server("http://127.0.0.1:8080/fhir", None)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("ff02::1", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        # IPv6 forms that carry or reach an IPv4 address: never public, whatever the IPv4 inside
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::8.8.8.8", False),
        ("::ffff:0:10.0.0.1", False),  # IPv4-translated
        ("64:ff9b::10.0.0.1", False),  # NAT64: on a NAT64 network this is 10.0.0.1
        ("64:ff9b::808:808", False),
        ("64:ff9b:1::a00:1", False),  # NAT64 local use
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("::ffff:8.8.8.8", True),  # mapped: judged by its IPv4
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on loopback that records every connection made to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.1)
    accepted: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
                accepted.append(peer[0])
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "127.1.2.3",
        # IPv6 forms that carry an IPv4 address, refused before any connection (on a NAT64 or 6to4
        # network they would reach the IPv4 inside)
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
        "[::ffff:0:7f00:1]",
    ],
)
async def test_loopback_servers_are_never_contacted(
    fhir: FhirClient, listener: tuple[int, list[str]], host: str
) -> None:
    port, accepted = listener
    srv = fhir.server(f"https://{host}:{port}/fhir", "tok")
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await fhir.get(srv, SEARCH, fhir.deadline())
    await asyncio.sleep(0.2)
    assert accepted == []


async def test_link_local_metadata_address_is_never_contacted(fhir: FhirClient) -> None:
    srv = fhir.server("https://169.254.169.254/latest", None)
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await fhir.get(srv, "Patient/1", fhir.deadline())


@pytest.mark.parametrize(
    "url",
    [
        f"https://{'a' * 64}.example.org/fhir",  # a label over 63 characters (IDNA cannot encode it)
        f"https://{'a.' * 127}org/fhir",  # a name over 253 characters
        "https://ehr..example.org/fhir",  # an empty label
    ],
)
async def test_host_names_that_cannot_exist_are_refused(fhir: FhirClient, url: str) -> None:
    with pytest.raises(FhirUnavailable, match="not a valid host name"):
        fhir.server(url, None)


async def test_ipv6_loopback_is_never_contacted(fhir: FhirClient) -> None:
    srv = fhir.server("https://[::1]:9/fhir", None)
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await fhir.get(srv, "Patient/1", fhir.deadline())
