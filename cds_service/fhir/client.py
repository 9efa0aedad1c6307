"""The async FHIR client that reads what the EHR did not prefetch.

One shared aiohttp session (pooled, keep-alive) serves every hook call: a fetched call costs about
what its network costs, where httpx's connection pool cost several times the rest of the call in
CPU. A caller names the FHIR server, so every URL is checked before anything is sent: https only,
an allowed host name, and public addresses, checked by the connector's resolver (every address a
name has) and again by its socket factory for the one address each connection is made to, so that
neither an IP literal nor a DNS answer that changes between the check and the connection gets past.
`CDS_FHIR_ALLOW_INSECURE` lifts the https and address rules for tests and local work; the host
allowlist always holds.

What a server answers is bounded before it is decoded: the inflated bytes (CDS_FHIR_MAX_BYTES) and
the JSON values a body may hold are counted as it streams in, and a page may hold at most
MAX_PAGE_ENTRIES entries. Next links and redirects are checked on the exact path that would be sent.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import ipaddress
import json
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, unquote

import aiohttp
import certifi
from aiohttp.abc import ResolveResult
from yarl import URL

from ..json_bodies import decode
from ..metrics import FHIR_QUERIES, FHIR_SECONDS, fhir_outcome, series, status_class
from ..settings import Settings

logger = logging.getLogger("cds_service")

POOL_CONNECTIONS = 100  # open at once, to all FHIR servers together
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_BACKOFF_S = 0.2
_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The fhirServer URLs and the queries recur from call to call (the same few per patient), and parsing
# one with yarl and checking it against its base cost a tenth of a fetched hook call: each is worked
# out once, up to this length (a longer one is worked out afresh, never kept).
_KEPT_CHARS = 1024
_KEPT_SERVERS = 256  # fhirServer URLs kept parsed: the EHRs a service answers, and then some
# Why an http (or other) URL is refused, and the setting that lifts the rule.
NOT_HTTPS = "not an https URL (CDS_FHIR_ALLOW_INSECURE=true allows http, for local work only)"
_JSON_TYPES = frozenset(
    {"application/fhir+json", "application/json", "application/json+fhir", "application/jwk-set+json"}
)
# A page holds at most this many entries (the service asks for 100 at most, with _include some 200);
# a page with more is refused, not cut: whatever it held would have cost its memory to decode.
MAX_PAGE_ENTRIES = 1000
# The JSON values (objects, arrays and items) a body may hold, counted on the inflated bytes as they
# stream in, before anything is decoded: 250 a page entry (the richest entries of the vendor and
# SMART samples hold 70). Decoded, an empty object costs some 70 bytes for its 3 of JSON, so 20 MB
# of `{},` took 589 MB; 250,000 values decode to 35 MB at most (objects of one Decimal each, the
# costliest shape measured), 9 MB as empty objects.
MAX_JSON_VALUES = 250 * MAX_PAGE_ENTRIES


class FhirUnavailable(Exception):
    """A query gave no usable data. `reason` is safe to log: no URL, no PHI, no token. `outcome` is
    its metric label, one of metrics.FHIR_OUTCOMES: never text from the answer."""

    def __init__(self, reason: str, outcome: str = "invalid_answer") -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


class _Retryable(Exception):
    def __init__(self, reason: str, outcome: str, wait_s: float = _RETRY_BACKOFF_S) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome
        self.wait_s = wait_s


def _http_status(status: int) -> FhirUnavailable:
    return FhirUnavailable(f"HTTP {status}", status_class(status))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; None for a date or anything else (not worth a retry then)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 60 else None


class AddressRefused(Exception):
    """The FHIR server's host resolves to an address the service must not contact. Not an OSError,
    so that aiohttp passes it on instead of trying the next address or calling it a DNS failure."""


# IPv6 ranges that carry or reach an IPv4 address (IPv4-compatible, IPv4-translated, NAT64 well-known
# and local-use, 6to4, Teredo): on the wrong network they lead to private IPv4, so none is public here.
_IPV4_CARRIERS = tuple(
    ipaddress.ip_network(n)
    for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32")
)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif any(ip in network for network in _IPV4_CARRIERS):
            return False
    return ip.is_global and not ip.is_multicast


class _PublicOnlyResolver(aiohttp.ThreadedResolver):
    """A host name is contacted only when every address it has is public."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        if not results or not all(is_public(result["host"]) for result in results):
            raise AddressRefused
        return results


def _public_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """The socket for one connection, made only for a public address: this sees IP literals, which
    skip the resolver, and every address the connector tries."""
    family, kind, proto, _, address = addr_info
    if not is_public(str(address[0])):
        raise AddressRefused
    return socket.socket(family, kind, proto)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle costs tens of milliseconds."""
    return ssl.create_default_context(cafile=certifi.where())


def make_http_client(settings: Settings) -> aiohttp.ClientSession:
    """The one shared session. No cookies (one EHR's session must never ride on another's query),
    no decompression (done by hand under the size limit) and no timeouts of its own (each query's
    budget is set around it)."""
    connector = aiohttp.TCPConnector(
        limit=POOL_CONNECTIONS,
        keepalive_timeout=30,
        ssl=_ssl_context(),
        resolver=None if settings.fhir_allow_insecure else _PublicOnlyResolver(),
        socket_factory=None if settings.fhir_allow_insecure else _public_socket,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept": "application/fhir+json"},
    )


@dataclass(frozen=True)
class FhirServer:
    """A FHIR server a hook request named and the policy allowed, with the EHR's token."""

    base: URL
    token: str | None = field(default=None, repr=False)

    def query_url(self, query: str) -> URL | None:
        """The URL of a query, None when it would leave the base (an id that a server would decode
        into another path: `..%2F`)."""
        if len(query) > _KEPT_CHARS or len(str(self.base)) > _KEPT_CHARS:
            return _query_url.__wrapped__(self.base, query)
        return _query_url(self.base, query)

    def owns(self, url: URL) -> bool:
        return _under(self.base, url)


@functools.lru_cache(maxsize=1024)
def _query_url(base: URL, query: str) -> URL | None:
    path, mark, parameters = query.partition("?")
    # As written: yarl would decode the `%3A` and `%2F` of the values again. The base is a URL's own
    # text and the path a template's, its tokens percent-encoded (prefetch.render).
    url = URL(f"{str(base).rstrip('/')}/{path}{mark}{_encoded(parameters)}", encoded=True)
    return url if _under(base, url) else None


def _encoded(parameters: str) -> str:
    """A query's values percent-encoded but for FHIR's comma between alternatives: a proxy in front
    of a FHIR server may refuse or mangle a `://` in a value (the SMART launcher's answers nothing to
    `code=http://loinc.org|...`), and every server decodes them alike."""
    if not parameters:
        return parameters
    encoded = []
    for pair in parameters.split("&"):
        name, equals, value = pair.partition("=")
        encoded.append(f"{name}{equals}{quote(unquote(value), safe=',')}")
    return "&".join(encoded)


def within(url: str, bases: Sequence[str]) -> bool:
    """Whether a FHIR server URL is one of these bases or under one (as `restricted` reads them)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return False
    return any(_under(URL(base), parsed) for base in bases)


def _under(base: URL, url: URL) -> bool:
    """Same scheme, host and port, and under the base path: the decoded path, and the path as it is
    sent (`raw_path`, percent-encoded), in which nothing past the base may be a slash or a dot
    segment once a server decodes it (`..%2F`, `%2E%2E`, `..%5C`, `..;`), since a server or a proxy
    that decodes before it routes would take the request out of the base path."""
    base_path = base.path.rstrip("/") + "/"
    raw_base = base.raw_path.rstrip("/") + "/"
    raw_path = url.raw_path + "/"
    try:
        host = url.host
    except ValueError:  # a host IDNA cannot decode (`xn--`): no server's, from an attack run
        return False
    return (
        url.scheme == base.scheme
        and host == base.host
        and url.port == base.port
        and (url.path + "/").startswith(base_path)
        and raw_path.startswith(raw_base)
        and all(_plain_segment(segment) for segment in raw_path[len(raw_base) :].split("/"))
    )


_BLANKS = "".join(map(chr, range(33)))  # C0 controls and the space: what a server may trim from a segment


def _plain_segment(raw: str) -> bool:
    """A path segment as sent that stays one segment, and not `.` or `..`, however many times it is
    percent-decoded (some servers decode twice) and whatever `;` parameters it carries (Tomcat reads
    `..;x` as `..`)."""
    for _ in range(3):
        if "/" in raw or "\\" in raw or "%u" in raw.lower() or "\ufffd" in raw:
            return False  # IIS's %u escapes; an overlong UTF-8 slash (%c0%af) decodes to U+FFFD
        name = raw.split(";", 1)[0].strip(_BLANKS)
        if name and name.strip(".") == "":
            return False  # `..` and what some servers read as it: `...`, `..%00`, `..%20`, `..%09`
        decoded = unquote(raw)
        if decoded == raw:
            return True
        raw = decoded
    return False  # still encoded after three decodings: no path of a FHIR server looks like this


@dataclass
class Deadline:
    at: float

    def remaining(self) -> float:
        return self.at - time.monotonic()


class FhirClient:
    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self._http = http
        self._timeout = settings.fhir_timeout_s
        self._deadline_s = settings.fhir_deadline_s
        self._max_pages = settings.fhir_max_pages
        self._max_resources = settings.fhir_max_resources
        self._max_bytes = settings.fhir_max_bytes
        self._allowed_hosts = frozenset(settings.fhir_allowed_hosts)
        self._insecure = settings.fhir_allow_insecure
        self._servers: dict[str, URL] = {}  # the fhirServer URLs allowed, parsed
        self._bases: tuple[URL, ...] = ()  # an issuer's own FHIR servers (restricted)

    def restricted(self, bases: Sequence[str]) -> FhirClient:
        """This client, reading only from these FHIR server bases (and the paths under them): one
        EHR's own servers, from its entry in the trusted issuers file. It shares the connections."""
        view = copy.copy(self)
        view._bases = tuple(URL(base) for base in bases)
        return view

    def server(self, url: str | None, token: str | None) -> FhirServer:
        """The server to read from, if the policy allows it; FhirUnavailable says why not."""
        if url is None:
            raise FhirUnavailable("no fhirServer in the request", "refused")
        if (parsed := self._servers.get(url)) is None:
            parsed = self._checked_url(url, "fhirServer")
            if parsed.query_string or parsed.fragment:
                raise FhirUnavailable("fhirServer refused: query or fragment in the URL", "refused")
            if self._allowed_hosts and str(parsed.host).lower() not in self._allowed_hosts:
                raise FhirUnavailable("fhirServer refused: host not on the allowlist", "refused")
            if len(url) <= _KEPT_CHARS:  # one URL object per server, its parts worked out once
                if len(self._servers) >= _KEPT_SERVERS:
                    self._servers.clear()
                self._servers[url] = parsed
        if self._bases and not any(_under(base, parsed) for base in self._bases):
            raise FhirUnavailable(
                "fhirServer refused: not one of this EHR's FHIR servers (fhir_servers, CDS_TRUSTED_ISSUERS_FILE)",
                "refused",
            )
        return FhirServer(parsed, token)

    def _checked_url(self, url: str, what: str) -> URL:
        try:
            parsed = URL(url)
            host = parsed.host  # ValueError for a host IDNA cannot decode (`xn--a`), from an attack run
        except (ValueError, TypeError):
            raise FhirUnavailable(f"{what} is not a URL") from None
        allowed_schemes = {"https", "http"} if self._insecure else {"https"}
        if parsed.scheme not in allowed_schemes or not host:
            raise FhirUnavailable(f"{what} refused: {NOT_HTTPS}", "refused")
        if parsed.user is not None or parsed.password is not None:
            raise FhirUnavailable(f"{what} refused: credentials in the URL", "refused")
        host = host.rstrip(".")
        if len(host) > 253 or any(not 0 < len(label) <= 63 for label in host.split(".")):
            raise FhirUnavailable(f"{what} refused: not a valid host name", "refused")
        return parsed

    async def get_document(self, url: str) -> dict[str, Any]:
        """A JSON document from a URL the configuration names (an issuer's key set): the same
        https, address, size and time rules as FHIR queries, without the FHIR host allowlist."""
        parsed = self._checked_url(url, "the URL")
        return await self._fetch(FhirServer(parsed), parsed, self.deadline())

    async def post_form(self, url: str, form: str, max_bytes: int) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer of a form POST (a SMART token request, whose errors come as
        JSON too) under the same https, address, size and time rules as FHIR queries. No redirect
        is followed and nothing is retried: an authorization code is used once."""
        parsed = self._checked_url(url, "the token endpoint")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.post(parsed, data=form, headers=headers, allow_redirects=False) as response:
                    body = await _bounded_body(response, max_bytes)
                    status = response.status
        except TimeoutError:
            raise FhirUnavailable("timed out", "timeout") from None
        except AddressRefused:
            raise FhirUnavailable("the token endpoint refused: not a public address", "refused") from None
        except aiohttp.ClientError:
            raise FhirUnavailable("HTTP error", "connection_error") from None
        try:
            data = decode(cast(bytes, body))
        except json.JSONDecodeError:
            raise FhirUnavailable(f"the answer (HTTP {status}) is not JSON") from None
        if not isinstance(data, dict):
            raise FhirUnavailable(f"the answer (HTTP {status}) is not a JSON object")
        return status, data

    def deadline(self) -> Deadline:
        """One deadline for all the queries of a hook call."""
        return Deadline(time.monotonic() + self._deadline_s)

    async def get(self, server: FhirServer, query: str, deadline: Deadline) -> dict[str, Any]:
        """A read gives its resource; a search gives one searchset Bundle holding the entries of
        its pages, following `next` links on the same server up to the page and resource bounds."""
        started = time.perf_counter()
        try:
            result = await self._get(server, query, deadline)
        except FhirUnavailable as exc:
            series(FHIR_QUERIES, fhir_outcome(exc.outcome)).inc()
            raise
        finally:
            FHIR_SECONDS.observe(time.perf_counter() - started)
        series(FHIR_QUERIES, "ok").inc()
        return result

    async def _get(self, server: FhirServer, query: str, deadline: Deadline) -> dict[str, Any]:
        url = server.query_url(query)
        if url is None:
            raise FhirUnavailable("the query leaves the fhirServer", "refused")
        first = await self._fetch(server, url, deadline)
        if "?" not in query:
            expected = query.split("/", 1)[0]
            if first.get("resourceType") != expected:
                raise FhirUnavailable(f"the server did not answer with a {expected}")
            return first
        return await self._pages(server, first, {str(url)}, deadline, fetched=True)

    async def rest_of(self, server: FhirServer, bundle: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """A searchset Bundle given in part (a prefetch with a `next` link) with the pages that
        follow it, under the same server, page and resource bounds as a search."""
        return await self._pages(server, bundle, set(), deadline, fetched=False)

    async def _pages(
        self, server: FhirServer, first: dict[str, Any], seen: set[str], deadline: Deadline, fetched: bool
    ) -> dict[str, Any]:
        """One Bundle of the entries of `first` (a page fetched, or a prefetched Bundle given) and
        of the pages its `next` links lead to."""
        entries = _entries(first, bounded=fetched)
        pages = 1
        while (next_url := _next_link(first, server)) is not None:
            if pages >= self._max_pages or len(entries) >= self._max_resources:
                break
            if not server.owns(next_url):
                raise FhirUnavailable("a next link points to another server", "refused")
            if str(next_url) in seen:
                raise FhirUnavailable("next links loop")
            seen.add(str(next_url))
            first = await self._fetch(server, next_url, deadline)
            entries += _entries(first, bounded=True)
            pages += 1
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries[: self._max_resources]}

    async def _fetch(self, server: FhirServer, url: URL, deadline: Deadline) -> dict[str, Any]:
        """GET one JSON resource: one retry on 502/503/504 and connection errors, and on a 429 whose
        Retry-After (in seconds) fits the deadline; never on other 4xx nor on a certificate that
        is not trusted."""
        for attempt in (1, 2):
            budget = min(self._timeout, deadline.remaining())
            if budget <= 0:
                raise FhirUnavailable("the hook call's deadline passed", "timeout")
            try:
                async with asyncio.timeout(budget):
                    return await self._get_json(server, url)
            except TimeoutError:
                raise FhirUnavailable("timed out", "timeout") from None
            except _Retryable as exc:
                if attempt == 2 or deadline.remaining() < exc.wait_s + 0.05:
                    raise FhirUnavailable(exc.reason, exc.outcome) from None
                await asyncio.sleep(exc.wait_s)
        raise AssertionError("unreachable")

    async def _get_json(self, server: FhirServer, url: URL) -> dict[str, Any]:
        headers = {"Accept-Encoding": "gzip"}
        if server.token:
            headers["Authorization"] = f"Bearer {server.token}"
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                async with self._http.get(url, headers=headers, allow_redirects=False) as response:
                    status = response.status
                    if status in _REDIRECT_STATUSES:
                        url = _joined(url, response.headers.get("Location", ""), "a redirect")
                        if not server.owns(url):
                            raise FhirUnavailable("redirected to another server", "refused")
                        continue
                    if status in _RETRY_STATUSES:
                        raise _Retryable(f"HTTP {status}", status_class(status))
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    if status == 429 and retry_after is not None:
                        raise _Retryable("HTTP 429", status_class(status), retry_after)
                    if status != 200:
                        raise _http_status(status)
                    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if media_type not in _JSON_TYPES:
                        raise FhirUnavailable("the answer is not JSON")
                    body = await _bounded_body(response, self._max_bytes)
            except AddressRefused:
                raise FhirUnavailable("fhirServer refused: not a public address", "refused") from None
            except aiohttp.ClientConnectorCertificateError:  # the same certificate again: no retry
                raise FhirUnavailable("TLS certificate not trusted", "tls_error") from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                raise _Retryable("connection error", "connection_error") from None
            except aiohttp.ClientError:
                raise FhirUnavailable("HTTP error") from None
            try:  # msgspec decodes any bytes-like object: the body is not copied to bytes first
                data = decode(cast(bytes, body))
            except json.JSONDecodeError:
                raise FhirUnavailable("the answer is not JSON") from None
            if not isinstance(data, dict):
                raise FhirUnavailable("the answer is not a FHIR resource")
            return data
        raise FhirUnavailable("too many redirects", "3xx")


_INFLATE_STEP = 2**20


class _BoundedBody:
    """A body as it streams in, inflated piece by piece, its bytes and JSON values counted on each
    inflated piece before the next is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.values = 0
        self.counting = False

    def add(self, piece: bytes) -> None:
        self.data += piece
        if len(self.data) > self.limit:
            raise FhirUnavailable("the answer is too large", "too_large")
        # Every value but the first of an array or object follows a comma, and every object or array
        # opens with a bracket: their count bounds the values decoding would make. (Commas and
        # brackets inside strings count too: an overestimate, by a few per entry.) Each of them is a
        # byte, so a body no longer than MAX_JSON_VALUES cannot pass the bound: counting starts
        # once it is longer, from its first byte (counting every page cost a twentieth of a fetched
        # hook call).
        counted: bytes | bytearray = piece
        if not self.counting:
            if len(self.data) <= MAX_JSON_VALUES:
                return
            self.counting, counted = True, self.data
        self.values += counted.count(b",") + counted.count(b"{") + counted.count(b"[")
        if self.values > MAX_JSON_VALUES:
            raise FhirUnavailable("the answer holds too many JSON values", "too_large")

    def room(self) -> int:
        """The inflated bytes the next step may give: past the limit by one at most, a megabyte."""
        return min(self.limit + 1 - len(self.data), _INFLATE_STEP)


async def _bounded_body(response: aiohttp.ClientResponse, limit: int) -> bytearray:
    """The body, inflated by hand so that the size limit holds after inflation as well as before (a
    few hundred kilobytes of gzip can inflate to gigabytes), and refused as soon as it holds more
    JSON values than MAX_JSON_VALUES (20 KB of gzip can inflate to millions of empty entries, each
    costing 80 bytes decoded), before anything is decoded."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise FhirUnavailable("the answer's content encoding is not supported")
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding != "identity" else None
    body = _BoundedBody(limit)
    async for raw in response.content.iter_any():
        if inflate is None:
            body.add(raw)
            continue
        try:  # a megabyte at a time, so no step holds more than the body and one megabyte
            body.add(inflate.decompress(raw, body.room()))
            while inflate.unconsumed_tail:
                body.add(inflate.decompress(inflate.unconsumed_tail, body.room()))
        except zlib.error:
            raise FhirUnavailable("the answer is not valid gzip") from None
    return body.data  # decoded as it is: a copy would double the memory


def _entries(bundle: dict[str, Any], bounded: bool) -> list[Any]:
    """The entries of a searchset Bundle; a page read from a server (`bounded`) holds at most
    MAX_PAGE_ENTRIES (a Bundle the EHR prefetched is the EHR's own)."""
    if bundle.get("resourceType") != "Bundle":
        raise FhirUnavailable("the answer to a search is not a Bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirUnavailable("the Bundle's entry is not an array")
    if bounded and len(entries) > MAX_PAGE_ENTRIES:
        raise FhirUnavailable("the answer holds too many entries", "too_large")
    return entries


def _next_link(bundle: dict[str, Any], server: FhirServer) -> URL | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return _joined(URL(str(server.base).rstrip("/") + "/"), link["url"], "a next link")
    return None


def _joined(base: URL, reference: str, what: str) -> URL:
    """A reference (absolute or relative) read against a base URL, sent as the server wrote it
    where it is a URI as written (yarl would decode the `%3A` and `%2F` of its query again, which a
    proxy may refuse: `_query_url`); one with characters a URI cannot hold is encoded."""
    as_written = reference.isascii() and reference.isprintable() and " " not in reference
    try:
        return base.join(URL(reference, encoded=as_written))
    except (ValueError, TypeError):
        raise FhirUnavailable(f"{what} is not a URL") from None
