"""The async FHIR client that reads what the EHR did not prefetch.

One shared aiohttp session (pooled, keep-alive) serves every hook call: a fetched call costs about
what its network costs, where httpx's connection pool cost several times the rest of the call in
CPU. A caller names the FHIR server, so every URL is checked before anything is sent: https only,
an allowed host name, and public addresses, checked by the connector's resolver (every address a
name has) and again by its socket factory for the one address each connection is made to, so that
neither an IP literal nor a DNS answer that changes between the check and the connection gets past.
`CDS_FHIR_ALLOW_INSECURE` lifts the https and address rules for tests and local work; the host
allowlist always holds.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import certifi
from aiohttp.abc import ResolveResult
from yarl import URL

from ..json_bodies import decode
from ..metrics import FHIR_QUERIES, FHIR_SECONDS, reason_label
from ..settings import Settings

logger = logging.getLogger("cds_service")

POOL_CONNECTIONS = 100  # open at once, to all FHIR servers together
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_BACKOFF_S = 0.2
_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_JSON_TYPES = frozenset(
    {"application/fhir+json", "application/json", "application/json+fhir", "application/jwk-set+json"}
)


class FhirUnavailable(Exception):
    """A query gave no usable data. `reason` is safe to log: no URL, no PHI, no token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    def __init__(self, reason: str, wait_s: float = _RETRY_BACKOFF_S) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


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

    def url(self, query: str) -> URL:
        return URL(f"{str(self.base).rstrip('/')}/{query}")

    def owns(self, url: URL) -> bool:
        """Same scheme, host and port, and under the base path."""
        base_path = self.base.path.rstrip("/") + "/"
        return (
            url.scheme == self.base.scheme
            and url.host == self.base.host
            and url.port == self.base.port
            and (url.path + "/").startswith(base_path)
        )


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

    def server(self, url: str | None, token: str | None) -> FhirServer:
        """The server to read from, if the policy allows it; FhirUnavailable says why not."""
        if url is None:
            raise FhirUnavailable("no fhirServer in the request")
        parsed = self._checked_url(url, "fhirServer")
        if parsed.query_string or parsed.fragment:
            raise FhirUnavailable("fhirServer refused: query or fragment in the URL")
        if self._allowed_hosts and str(parsed.host).lower() not in self._allowed_hosts:
            raise FhirUnavailable("fhirServer refused: host not on the allowlist")
        return FhirServer(parsed, token)

    def _checked_url(self, url: str, what: str) -> URL:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise FhirUnavailable(f"{what} is not a URL") from None
        allowed_schemes = {"https", "http"} if self._insecure else {"https"}
        if parsed.scheme not in allowed_schemes or not parsed.host:
            raise FhirUnavailable(f"{what} refused: not an https URL")
        if parsed.user is not None or parsed.password is not None:
            raise FhirUnavailable(f"{what} refused: credentials in the URL")
        host = parsed.host.rstrip(".")
        if len(host) > 253 or any(not 0 < len(label) <= 63 for label in host.split(".")):
            raise FhirUnavailable(f"{what} refused: not a valid host name")
        return parsed

    async def get_document(self, url: str) -> dict[str, Any]:
        """A JSON document from a URL the configuration names (an issuer's key set): the same
        https, address, size and time rules as FHIR queries, without the FHIR host allowlist."""
        parsed = self._checked_url(url, "the URL")
        return await self._fetch(FhirServer(parsed), parsed, self.deadline())

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
            FHIR_QUERIES.labels(reason_label(exc.reason)).inc()
            raise
        finally:
            FHIR_SECONDS.observe(time.perf_counter() - started)
        FHIR_QUERIES.labels("ok").inc()
        return result

    async def _get(self, server: FhirServer, query: str, deadline: Deadline) -> dict[str, Any]:
        url = server.url(query)
        first = await self._fetch(server, url, deadline)
        if "?" not in query:
            expected = query.split("/", 1)[0]
            if first.get("resourceType") != expected:
                raise FhirUnavailable(f"the server did not answer with a {expected}")
            return first
        return await self._pages(server, first, {str(url)}, deadline)

    async def rest_of(self, server: FhirServer, bundle: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """A searchset Bundle given in part (a prefetch with a `next` link) with the pages that
        follow it, under the same server, page and resource bounds as a search."""
        return await self._pages(server, bundle, set(), deadline)

    async def _pages(
        self, server: FhirServer, first: dict[str, Any], seen: set[str], deadline: Deadline
    ) -> dict[str, Any]:
        """One Bundle of the entries of `first` and of the pages its `next` links lead to."""
        entries = _entries(first)
        pages = 1
        while (next_url := _next_link(first, server)) is not None:
            if pages >= self._max_pages or len(entries) >= self._max_resources:
                break
            if not server.owns(next_url):
                raise FhirUnavailable("a next link points to another server")
            if str(next_url) in seen:
                raise FhirUnavailable("next links loop")
            seen.add(str(next_url))
            first = await self._fetch(server, next_url, deadline)
            entries += _entries(first)
            pages += 1
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries[: self._max_resources]}

    async def _fetch(self, server: FhirServer, url: URL, deadline: Deadline) -> dict[str, Any]:
        """GET one JSON resource: one retry on 502/503/504 and connection errors, and on a 429 whose
        Retry-After (in seconds) fits the deadline; never on other 4xx nor on a certificate that
        is not trusted."""
        for attempt in (1, 2):
            budget = min(self._timeout, deadline.remaining())
            if budget <= 0:
                raise FhirUnavailable("the hook call's deadline passed")
            try:
                async with asyncio.timeout(budget):
                    return await self._get_json(server, url)
            except TimeoutError:
                raise FhirUnavailable("timed out") from None
            except _Retryable as exc:
                if attempt == 2 or deadline.remaining() < exc.wait_s + 0.05:
                    raise FhirUnavailable(exc.reason) from None
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
                            raise FhirUnavailable("redirected to another server")
                        continue
                    if status in _RETRY_STATUSES:
                        raise _Retryable(f"HTTP {status}")
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    if status == 429 and retry_after is not None:
                        raise _Retryable("HTTP 429", retry_after)
                    if status != 200:
                        raise FhirUnavailable(f"HTTP {status}")
                    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if media_type not in _JSON_TYPES:
                        raise FhirUnavailable("the answer is not JSON")
                    body = await _bounded_body(response, self._max_bytes)
            except AddressRefused:
                raise FhirUnavailable("fhirServer refused: not a public address") from None
            except aiohttp.ClientConnectorCertificateError:  # the same certificate again: no retry
                raise FhirUnavailable("TLS certificate not trusted") from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                raise _Retryable("connection error") from None
            except aiohttp.ClientError:
                raise FhirUnavailable("HTTP error") from None
            try:
                data = decode(body)
            except json.JSONDecodeError:
                raise FhirUnavailable("the answer is not JSON") from None
            if not isinstance(data, dict):
                raise FhirUnavailable("the answer is not a FHIR resource")
            return data
        raise FhirUnavailable("too many redirects")


_INFLATE_STEP = 2**20


async def _bounded_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, inflated by hand so that the size limit holds after inflation as well as before:
    a few hundred kilobytes of gzip can inflate to gigabytes."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise FhirUnavailable("the answer's content encoding is not supported")
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding != "identity" else None
    body = bytearray()
    async for raw in response.content.iter_any():
        if inflate is None:
            body += raw
        else:
            try:  # a megabyte at a time, so no step holds more than the body and one megabyte
                body += inflate.decompress(raw, min(limit + 1 - len(body), _INFLATE_STEP))
                while inflate.unconsumed_tail and len(body) <= limit:
                    body += inflate.decompress(inflate.unconsumed_tail, min(limit + 1 - len(body), _INFLATE_STEP))
            except zlib.error:
                raise FhirUnavailable("the answer is not valid gzip") from None
        if len(body) > limit:
            raise FhirUnavailable("the answer is too large")
    return bytes(body)


def _entries(bundle: dict[str, Any]) -> list[Any]:
    if bundle.get("resourceType") != "Bundle":
        raise FhirUnavailable("the answer to a search is not a Bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirUnavailable("the Bundle's entry is not an array")
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
    """A reference (absolute or relative) read against a base URL."""
    try:
        return base.join(URL(reference))
    except (ValueError, TypeError):
        raise FhirUnavailable(f"{what} is not a URL") from None
