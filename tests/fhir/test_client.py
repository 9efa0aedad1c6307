"""The FHIR client against a real server on loopback that answers as each test declares
(tests/fhir_routes.py: retries, paging, redirects, bounds), and the rules on which servers may be
contacted (real sockets: nothing may connect)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.abc import ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from cds_service.fhir import client as fhir_client
from cds_service.fhir.client import NOT_HTTPS, FhirClient, FhirServer, FhirUnavailable, is_public, make_http_client
from cds_service.settings import Settings
from tests.builders import bundle, obs
from tests.fhir_routes import DROP, Call, FhirRoutes, Reply, html

pytestmark = pytest.mark.anyio
SEARCH = "Observation?patient=p1&code=x"


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def loopback() -> Settings:
    """The routes server is on loopback over http: only the insecure mode may reach it."""
    return Settings(fhir_allow_insecure=True)


@pytest.fixture
async def fhir(loopback: Settings) -> AsyncIterator[FhirClient]:
    async with make_http_client(loopback) as http:
        yield FhirClient(http, loopback)


@pytest.fixture
async def secure(settings: Settings) -> AsyncIterator[FhirClient]:
    async with make_http_client(settings) as http:
        yield FhirClient(http, settings)


def server(routes: FhirRoutes, token: str | None = "tok-123") -> FhirServer:
    return FhirServer(URL(routes.base_url), token)


async def get(
    fhir: FhirClient, routes: FhirRoutes, query: str = SEARCH, token: str | None = "tok-123"
) -> dict[str, Any]:
    return await fhir.get(server(routes, token), query, fhir.deadline())


def page(n: int, next_url: str | None = None, size: int = 2) -> dict[str, Any]:
    b = bundle(*(obs("62292-8", 10 + n, "ng/mL", id=f"p{n}-{i}") for i in range(size)))
    if next_url:
        b["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return b


# --- headers ------------------------------------------------------------------------------------


async def test_sends_bearer_token_and_accept(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").respond(json=page(1))
    await get(fhir, fhir_routes)
    sent = route.calls[-1]
    assert sent.headers["authorization"] == "Bearer tok-123"
    assert sent.headers["accept"] == "application/fhir+json"
    assert sent.query["patient"] == ["p1"]


async def test_no_authorization_header_without_a_token(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"})
    assert (await get(fhir, fhir_routes, "Patient/p1", token=None))["id"] == "p1"
    assert "authorization" not in route.calls[-1].headers


async def test_no_cookie_is_kept_between_queries(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """One shared session serves every EHR and user: a cookie set by one answer must not ride on the next."""
    route = fhir_routes.get("/Observation").mock(Reply(json=page(1), headers={"Set-Cookie": "session=abc; Path=/"}))
    await get(fhir, fhir_routes)
    await get(fhir, fhir_routes)
    assert route.call_count == 2 and "cookie" not in route.calls[-1].headers


def test_a_query_is_worked_out_once_and_a_refusal_holds_each_time() -> None:
    """Queries are parsed and checked once per base (client.py, _query_url): the same query gives the
    same URL, one that leaves the base is refused every time, and a long one is never kept."""
    server = FhirServer(URL("https://ehr.example.org/fhir/R4"))
    first = server.query_url("Observation?patient=p1&code=x")
    assert first is not None and first is server.query_url("Observation?patient=p1&code=x")
    assert str(first) == "https://ehr.example.org/fhir/R4/Observation?patient=p1&code=x"
    for _ in range(2):
        assert server.query_url("Patient/..%2F..%2Fadmin") is None
    long_id = "p" * (fhir_client._KEPT_CHARS + 1)
    long_base = FhirServer(URL("https://ehr.example.org/" + "b" * fhir_client._KEPT_CHARS))
    looked_up = fhir_client._query_url.cache_info()
    url = server.query_url(f"Patient/{long_id}")
    assert url is not None and url.path.endswith(long_id)
    assert long_base.query_url("Patient/p1") is not None
    after = fhir_client._query_url.cache_info()
    assert (after.hits, after.misses) == (looked_up.hits, looked_up.misses)  # neither went near the cache


def test_the_token_never_shows_in_a_repr() -> None:
    assert "tok-123" not in repr(FhirServer(URL("https://ehr.example.org/fhir"), "tok-123"))


# --- paging -------------------------------------------------------------------------------------


async def test_follows_next_links(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    base = fhir_routes.base_url
    fhir_routes.get("/Observation", params={"code": "x"}).respond(json=page(1, f"{base}/Observation?page=2"))
    fhir_routes.get("/Observation", params={"page": "2"}).respond(json=page(2, "Observation?page=3"))
    fhir_routes.get("/Observation", params={"page": "3"}).respond(json=page(3))
    got = await get(fhir, fhir_routes)
    assert [e["resource"]["id"] for e in got["entry"]] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]


async def test_page_bound(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    base = fhir_routes.base_url
    route = fhir_routes.get("/Observation").mock(
        side_effect=lambda call: Reply(json=page(len(route.calls), f"{base}/Observation?n={len(route.calls)}"))
    )
    got = await get(fhir, fhir_routes)
    assert route.call_count == 5 and len(got["entry"]) == 10  # CDS_FHIR_MAX_PAGES=5 by default


async def test_resource_bound(loopback: Settings, fhir_routes: FhirRoutes) -> None:
    bounded = loopback.model_copy(update={"fhir_max_resources": 3})
    base = fhir_routes.base_url
    fhir_routes.all_called = False
    fhir_routes.get("/Observation", params={"code": "x"}).respond(json=page(1, f"{base}/Observation?p=2"))
    fhir_routes.get("/Observation", params={"p": "2"}).respond(json=page(2, f"{base}/Observation?p=3"))
    route3 = fhir_routes.get("/Observation", params={"p": "3"}).respond(json=page(3))
    async with make_http_client(bounded) as http:
        got = await get(FhirClient(http, bounded), fhir_routes)
    assert len(got["entry"]) == 3 and route3.call_count == 0


@pytest.mark.parametrize(
    ("next_url", "reason"),
    [
        ("{base}/Observation?patient=p1&code=x", "next links loop"),
        ("https://evil.example.net/fhir/Observation?page=2", "a next link points to another server"),
        ("https://127.0.0.1:{port}/fhir/Observation?page=2", "a next link points to another server"),
        ("http://127.0.0.1:{other_port}/fhir/Observation?page=2", "a next link points to another server"),
        ("http://127.0.0.1:{port}/other/Observation?page=2", "a next link points to another server"),
        ("http://[::1/fhir", "a next link is not a URL"),
        # hosts IDNA cannot decode (from an attack run: each was a 500)
        ("http://xn--/fhir/Observation?page=2", "a next link points to another server"),
        ("http://a.xn--/fhir/Observation?page=2", "a next link points to another server"),
        ("http://\uff41.xn--/fhir/Observation?page=2", "a next link points to another server"),
    ],
)
async def test_bad_next_links_make_the_data_unavailable(
    fhir: FhirClient, fhir_routes: FhirRoutes, next_url: str, reason: str
) -> None:
    port = fhir_routes.port
    link = next_url.format(base=fhir_routes.base_url, port=port, other_port=port + 1)
    fhir_routes.get("/Observation").respond(json=page(1, link))
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert exc.value.reason == reason


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_one_retry_on_gateway_errors(fhir: FhirClient, fhir_routes: FhirRoutes, status: int) -> None:
    route = fhir_routes.get("/Observation").mock(side_effect=[Reply(status), Reply(json=page(1))])
    assert len((await get(fhir, fhir_routes))["entry"]) == 2
    assert route.call_count == 2


async def test_only_one_retry(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").respond(503)
    with pytest.raises(FhirUnavailable, match="HTTP 503"):
        await get(fhir, fhir_routes)
    assert route.call_count == 2


async def test_one_retry_on_a_dropped_connection(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").mock(side_effect=[DROP, Reply(json=page(1))])
    assert len((await get(fhir, fhir_routes))["entry"]) == 2
    assert route.call_count == 2
    route.mock(DROP)
    with pytest.raises(FhirUnavailable, match="connection error"):
        await get(fhir, fhir_routes)
    # two attempts of ours; aiohttp also sends a request again, once, when the kept-alive connection
    # it used was closed under it (the server may close an idle connection at any time)
    assert 4 <= route.call_count <= 6


async def test_one_retry_when_nothing_listens(fhir: FhirClient) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        srv = fhir.server(f"http://127.0.0.1:{port}/fhir", None)
        started = time.monotonic()
        with pytest.raises(FhirUnavailable, match="connection error"):
            await fhir.get(srv, SEARCH, fhir.deadline())
    assert time.monotonic() - started >= 0.2  # the backoff before the one retry


async def test_a_429_is_retried_once_after_its_retry_after(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").mock(
        side_effect=[Reply(429, headers={"Retry-After": "0.3"}), Reply(json=page(1))]
    )
    started = time.monotonic()
    assert len((await get(fhir, fhir_routes))["entry"]) == 2
    assert route.call_count == 2 and time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "retry_after",
    [None, "Wed, 25 Nov 2026 10:00:00 GMT", "soon", "-1", "3600", "9"],  # 9 s: past the hook's deadline
)
async def test_a_429_is_not_retried_without_a_wait_that_fits(
    fhir: FhirClient, fhir_routes: FhirRoutes, retry_after: str | None
) -> None:
    route = fhir_routes.get("/Observation").respond(429, headers={"Retry-After": retry_after} if retry_after else {})
    with pytest.raises(FhirUnavailable, match="HTTP 429"):
        await get(fhir, fhir_routes)
    assert route.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500])
async def test_no_retry_on_other_errors(fhir: FhirClient, fhir_routes: FhirRoutes, status: int) -> None:
    route = fhir_routes.get("/Observation").respond(status, headers={"Retry-After": "1"})
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert route.call_count == 1 and exc.value.reason == f"HTTP {status}"


# --- timeouts and the deadline ------------------------------------------------------------------


async def test_a_stalled_query_times_out(loopback: Settings, fhir_routes: FhirRoutes) -> None:
    quick = loopback.model_copy(update={"fhir_timeout_s": 0.2})

    async def stall(call: Call) -> Reply:
        await asyncio.sleep(5)
        return Reply(json=page(1))

    fhir_routes.get("/Observation").mock(side_effect=stall)
    async with make_http_client(quick) as http:
        started = time.perf_counter()
        with pytest.raises(FhirUnavailable, match="timed out"):
            await get(FhirClient(http, quick), fhir_routes)
    assert time.perf_counter() - started < 2  # 0.2 s, with room for a loaded machine


async def test_the_deadline_bounds_all_pages(loopback: Settings, fhir_routes: FhirRoutes) -> None:
    tight = loopback.model_copy(update={"fhir_timeout_s": 1.0, "fhir_deadline_s": 0.5})
    base = fhir_routes.base_url

    async def slow_page(call: Call) -> Reply:
        await asyncio.sleep(0.2)
        return Reply(json=page(1, f"{base}/Observation?n={time.perf_counter()}"))

    route = fhir_routes.get("/Observation").mock(side_effect=slow_page)
    async with make_http_client(tight) as http:
        with pytest.raises(FhirUnavailable):
            await get(FhirClient(http, tight), fhir_routes)
    assert route.call_count <= 3  # pages of 0.2 s each: the third cannot finish within 0.5 s


# --- answers that are not FHIR ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (html("<html>login</html>"), "the answer is not JSON"),
        (Reply(content=b'{"resourceType": "Bun'), "the answer is not JSON"),
        (Reply(json=[1, 2]), "the answer is not a FHIR resource"),
        (Reply(json={"resourceType": "OperationOutcome"}), "the answer to a search is not a Bundle"),
        (Reply(json={"resourceType": "Bundle", "entry": {"a": 1}}), "the Bundle's entry is not an array"),
        (Reply(302, headers={"Location": "https://evil.example.net/steal"}), "redirected to another server"),
        (Reply(307, headers={"Location": "http://xn--/fhir/Observation"}), "redirected to another server"),
        (Reply(content=b"not gzip", headers={"Content-Encoding": "gzip"}), "the answer is not valid gzip"),
        (Reply(content=b"{}", headers={"Content-Encoding": "br"}), "the answer's content encoding is not supported"),
    ],
)
async def test_unusable_answers(fhir: FhirClient, fhir_routes: FhirRoutes, reply: Reply, reason: str) -> None:
    fhir_routes.get("/Observation").mock(reply)
    with pytest.raises(FhirUnavailable) as exc:
        await get(fhir, fhir_routes)
    assert exc.value.reason == reason


async def test_a_gzipped_answer_is_read(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").mock(
        Reply(content=gzip.compress(orjson.dumps(page(1))), headers={"Content-Encoding": "gzip"})
    )
    assert len((await get(fhir, fhir_routes))["entry"]) == 2
    assert route.calls[-1].headers["accept-encoding"] == "gzip"


async def test_same_server_redirect_is_followed(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.get("/Observation", params={"code": "x"}).respond(
        302, headers={"Location": f"{fhir_routes.base_url}/Observation?moved=1"}
    )
    fhir_routes.get("/Observation", params={"moved": "1"}).respond(json=page(1))
    assert len((await get(fhir, fhir_routes))["entry"]) == 2


async def test_redirects_are_bounded(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    route = fhir_routes.get("/Observation").respond(302, headers={"Location": "Observation?again=1"})
    with pytest.raises(FhirUnavailable, match="too many redirects"):
        await get(fhir, fhir_routes)
    # two attempts of ours; aiohttp also sends a request again, once, when the kept-alive connection
    # it used was closed under it (the server may close an idle connection at any time)
    assert 4 <= route.call_count <= 6


async def test_read_of_the_wrong_type(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.get("/Patient/p1").respond(json={"resourceType": "Group", "id": "p1"})
    with pytest.raises(FhirUnavailable, match="did not answer with a Patient"):
        await get(fhir, fhir_routes, "Patient/p1")


async def test_an_oversized_answer_is_not_read(loopback: Settings, fhir_routes: FhirRoutes) -> None:
    small = loopback.model_copy(update={"fhir_max_bytes": 1000})
    fhir_routes.get("/Observation").respond(json=page(1, size=20))
    async with make_http_client(small) as http:
        with pytest.raises(FhirUnavailable, match="too large"):
            await get(FhirClient(http, small), fhir_routes)


# --- which servers may be contacted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "no fhirServer in the request"),
        ("http://ehr.example.org/fhir", f"fhirServer refused: {NOT_HTTPS}"),
        ("file:///etc/passwd", f"fhirServer refused: {NOT_HTTPS}"),
        ("ftp://ehr.example.org/fhir", f"fhirServer refused: {NOT_HTTPS}"),
        ("https://user:pw@ehr.example.org/fhir", "fhirServer refused: credentials in the URL"),
        ("https://ehr.example.org/fhir?x=1", "fhirServer refused: query or fragment in the URL"),
    ],
)
async def test_policy_refuses(secure: FhirClient, url: str | None, reason: str) -> None:
    with pytest.raises(FhirUnavailable) as exc:
        secure.server(url, None)
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
    fhir = FhirClient(None, insecure)  # type: ignore[arg-type]  # the policy needs no session
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


@contextlib.contextmanager
def _accepting(handle: Callable[[socket.socket], None]) -> Iterator[tuple[int, list[str]]]:
    """A TCP port on loopback that records every connection made to it, each handed to `handle`."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    accepted: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            accepted.append(peer[0])
            handle(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        sock.close()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """Connections recorded and closed at once."""
    with _accepting(socket.socket.close) as port_and_accepted:
        yield port_and_accepted


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
    secure: FhirClient, listener: tuple[int, list[str]], host: str
) -> None:
    port, accepted = listener
    srv = secure.server(f"https://{host}:{port}/fhir", "tok")
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await secure.get(srv, SEARCH, secure.deadline())
    await asyncio.sleep(0.2)
    assert accepted == []


async def test_link_local_metadata_address_is_never_contacted(secure: FhirClient) -> None:
    srv = secure.server("https://169.254.169.254/latest", None)
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await secure.get(srv, "Patient/1", secure.deadline())


@pytest.mark.parametrize(
    "url",
    [
        f"https://{'a' * 64}.example.org/fhir",  # a label over 63 characters (IDNA cannot encode it)
        f"https://{'a.' * 127}org/fhir",  # a name over 253 characters
        "https://ehr..example.org/fhir",  # an empty label
    ],
)
async def test_host_names_that_cannot_exist_are_refused(secure: FhirClient, url: str) -> None:
    with pytest.raises(FhirUnavailable, match="not a valid host name"):
        secure.server(url, None)


async def test_ipv6_loopback_is_never_contacted(secure: FhirClient) -> None:
    srv = secure.server("https://[::1]:9/fhir", None)
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await secure.get(srv, "Patient/1", secure.deadline())


async def test_an_address_the_resolver_did_not_check_is_never_contacted(
    secure: FhirClient, listener: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: whatever the resolver answered, the socket factory checks the one address each
    connection is made to, so a name that comes back private between a check and a connection is
    never reached."""
    port, accepted = listener

    async def rebound(self: object, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    monkeypatch.setattr(fhir_client._PublicOnlyResolver, "resolve", rebound)
    srv = secure.server(f"https://ehr.example.org:{port}/fhir", "tok")
    with pytest.raises(FhirUnavailable, match="not a public address"):
        await secure.get(srv, SEARCH, secure.deadline())
    await asyncio.sleep(0.2)
    assert accepted == []


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A server context whose certificate (for 127.0.0.1) no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


async def test_an_untrusted_certificate_is_refused_once(fhir: FhirClient, tmp_path: Path) -> None:
    """A real TLS handshake with a self-signed certificate: refused, named, and not tried again (the
    same certificate would come back)."""
    context = _self_signed(tmp_path)

    def handshake(conn: socket.socket) -> None:
        try:
            with context.wrap_socket(conn, server_side=True):
                pass  # the client ends the handshake when it reads the certificate
        except (ssl.SSLError, OSError):
            conn.close()

    with _accepting(handshake) as (port, connections):
        srv = fhir.server(f"https://127.0.0.1:{port}/fhir", None)
        with pytest.raises(FhirUnavailable, match="TLS certificate not trusted"):
            await fhir.get(srv, "Patient/1", fhir.deadline())
    assert connections == ["127.0.0.1"]
