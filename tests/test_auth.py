"""The caller's JWT: valid sandbox-style (ES384) and Epic-style (RS384) tokens pass; each of a
matrix of bad tokens gets 401 with nothing but "unauthorized"; keys come from a JWKS served over
real HTTP or inline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from cds_service import logs
from cds_service.fhir.client import FhirClient, make_http_client
from cds_service.settings import Settings
from cds_service.trust import Unauthorized
from cds_service.trust.issuers import IssuerConfigError, load_issuers
from cds_service.trust.keys import KeyStore
from cds_service.trust.replay import ReplayCache
from tests.builders import hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, Keys, make_client

pytestmark = pytest.mark.anyio
BASE = "http://cds.test"
SERVICE = f"{BASE}/cds-services/vitamin-d-cramps"
DISCOVERY = f"{BASE}/cds-services"
FEEDBACK = f"{SERVICE}/feedback"
SANDBOX = "https://sandbox.cds-hooks.org"
EPIC = "https://fhir.epic.example/interconnect-fhir-oauth/api/FHIR/R4"
INLINE = "https://inline.example.org"


# --- keys and a JWKS over real HTTP --------------------------------------------------------------


def public_jwks(*keys: ECKey | RSAKey) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


class JwksServer:
    """A JWKS document served over HTTP on loopback, counting how often it is fetched (from any
    thread); `delay_s`: how long each answer takes, so that calls arriving together all find a
    fetch under way."""

    def __init__(self, document: dict[str, Any], delay_s: float = 0.0) -> None:
        self.document = document
        self.fetches = 0
        counting = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with counting:
                    outer.fetches += 1
                time.sleep(delay_s)
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer(public_jwks(keys.es256, keys.es384, keys.es512, keys.rsa))
    yield server
    server.close()


@pytest.fixture
def issuers_file(tmp_path: Path, keys: Keys, jwks_server: JwksServer) -> Path:
    path = tmp_path / "issuers.yaml"
    path.write_text(
        json.dumps(
            {
                "issuers": [
                    {"iss": SANDBOX, "jwks_url": jwks_server.url, "jku": [jwks_server.url]},
                    {"iss": EPIC, "jwks_url": jwks_server.url, "jku": [jwks_server.url]},
                    {"iss": INLINE, "jwks": public_jwks(keys.es384), "tenant": "t1"},
                ]
            }
        )
    )
    return path


@pytest.fixture
async def client(make_app: AppFactory, issuers_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(auth="jwt", public_base_url=BASE, trusted_issuers_file=issuers_file, fhir_allow_insecure=True)
    async with make_client(app) as c:
        yield c


# --- tokens ---------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key: ECKey | RSAKey, alg: str, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": alg, **header}, claims, key, algorithms=[alg])


def sandbox_token(keys: Keys, jwks_url: str, aud: Any = SERVICE, **overrides: Any) -> str:
    """As the CDS Hooks sandbox signs: ES384, jku, 5-minute expiry, no sub."""
    now = int(time.time())
    claims = {"iss": SANDBOX, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    header = {"typ": "JWT", "kid": "es384", "jku": jwks_url}
    if aud is ...:
        del claims["aud"]
    for name, value in overrides.items():
        target = header if name.startswith("h_") else claims
        name = name.removeprefix("h_")
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
    return sign(keys.es384, "ES384", header, claims)


def epic_token(keys: Keys, jwks_url: str, aud: str = SERVICE) -> str:
    """As Epic signs: RS384, jku and kid, sub the client id, nbf five minutes before iat."""
    now = int(time.time())
    claims = {
        "iss": EPIC,
        "sub": "d45049c3-3441-40ef-ab4d-b9cd86a17225",
        "aud": [aud],
        "exp": now + 300,
        "iat": now,
        "nbf": now - 300,
        "jti": str(uuid.uuid4()),
    }
    return sign(keys.rsa, "RS384", {"typ": "JWT", "kid": "rsa", "jku": jwks_url}, claims)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hook() -> dict[str, Any]:
    return hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())


# --- valid tokens ---------------------------------------------------------------------------------


def feedback_on(response: httpx.Response) -> dict[str, Any]:
    card = response.json()["cards"][0]
    return {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}]}


@pytest.mark.parametrize("style", ["sandbox ES384", "Epic RS384"])
async def test_valid_tokens_pass_on_discovery_service_and_feedback(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer, style: str
) -> None:
    make = sandbox_token if style.startswith("sandbox") else epic_token
    discovery = await client.get("/cds-services", headers=bearer(make(keys, jwks_server.url, DISCOVERY)))
    assert discovery.status_code == 200
    response = await client.post(SERVICE, json=hook(), headers=bearer(make(keys, jwks_server.url)))
    assert response.status_code == 200 and response.json()["cards"]
    feedback = await client.post(
        FEEDBACK, json=feedback_on(response), headers=bearer(make(keys, jwks_server.url, FEEDBACK))
    )
    assert feedback.status_code == 200 and feedback.json()["new"] == 1


async def test_feedback_needs_its_own_token(client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer) -> None:
    response = await client.post(SERVICE, json=hook(), headers=bearer(sandbox_token(keys, jwks_server.url)))
    assert_unauthorized(await client.post(FEEDBACK, json=feedback_on(response)))
    service_token = sandbox_token(keys, jwks_server.url)  # aud: the service, not its feedback URL
    assert_unauthorized(await client.post(FEEDBACK, json=feedback_on(response), headers=bearer(service_token)))


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS384"])
async def test_every_allowed_algorithm(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer, alg: str
) -> None:
    key = keys.for_alg(alg)
    now = int(time.time())
    claims = {"iss": SANDBOX, "aud": SERVICE, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
    token = sign(key, alg, {"typ": "JWT", "kid": key.kid}, claims)
    assert (await client.post(SERVICE, json=hook(), headers=bearer(token))).status_code == 200


async def test_inline_jwks_with_tenant(client: httpx.AsyncClient, keys: Keys) -> None:
    now = int(time.time())
    claims = {"iss": INLINE, "aud": SERVICE, "exp": now + 60, "iat": now, "jti": "inline-1", "tenant": "t1"}
    token = sign(keys.es384, "ES384", {"kid": "es384"}, claims)  # typ may be absent
    assert (await client.post(SERVICE, json=hook(), headers=bearer(token))).status_code == 200


async def test_the_jwks_is_fetched_once_and_cached(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer
) -> None:
    for _ in range(3):
        response = await client.post(SERVICE, json=hook(), headers=bearer(sandbox_token(keys, jwks_server.url)))
        assert response.status_code == 200
    assert jwks_server.fetches == 1


async def test_public_base_url_sets_the_audience(
    make_app: AppFactory, issuers_file: Path, keys: Keys, jwks_server: JwksServer
) -> None:
    public = "https://cds.hospital.example/vitd"
    app = make_app(
        auth="jwt", trusted_issuers_file=issuers_file, fhir_allow_insecure=True, public_base_url=public + "/"
    )
    async with make_client(app) as c:
        ok = sandbox_token(keys, jwks_server.url, aud=f"{public}/cds-services/vitamin-d-cramps")
        assert (await c.post(SERVICE, json=hook(), headers=bearer(ok))).status_code == 200
        internal = sandbox_token(keys, jwks_server.url, aud=SERVICE)
        assert (await c.post(SERVICE, json=hook(), headers=bearer(internal))).status_code == 401


# --- the matrix of bad tokens ---------------------------------------------------------------------


def _alg_none(keys: Keys, url: str) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "es384"}).encode())
    good = sandbox_token(keys, url)
    return f"{header}.{good.split('.')[1]}."


def _hs256_with_the_public_key(keys: Keys, url: str) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "es384"}).encode())
    payload = sandbox_token(keys, url).split(".")[1]
    secret = json.dumps(keys.es384.as_dict(private=False)).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _with_header(token: str, **header: Any) -> str:
    """The token with its header replaced: joserfc will not sign such mismatches itself."""
    return b64(json.dumps(header).encode()) + "." + token.split(".", 1)[1]


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _header(url: str) -> str:
    return json.dumps({"alg": "ES384", "typ": "JWT", "kid": "es384", "jku": url})


def _claims(url: str, **numbers: str) -> str:
    """Claims as raw JSON text, so that numbers Python would never write (NaN, 1e400) can be sent."""
    now = int(time.time())
    fields = {"exp": str(now + 300), "iat": str(now)} | numbers
    numeric = ",".join(f'"{name}":{value}' for name, value in fields.items())
    return f'{{"iss":"{SANDBOX}","aud":"{SERVICE}","jti":"{uuid.uuid4()}",{numeric}}}'


def _raw(header: dict[str, Any] | str, claims: str) -> str:
    """A token built by hand, as an attacker would: its signature need not be valid, since these
    are refused before any key is looked at."""
    head = header if isinstance(header, str) else json.dumps(header)
    return f"{b64(head.encode())}.{b64(claims.encode())}.{b64(b'signature')}"


def _inline_token(keys: Keys, tenant: str | None) -> str:
    now = int(time.time())
    claims = {"iss": INLINE, "aud": SERVICE, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
    if tenant is not None:
        claims["tenant"] = tenant
    return sign(keys.es384, "ES384", {"kid": "es384"}, claims)


def _tampered(keys: Keys, url: str) -> str:
    header, payload, signature = sandbox_token(keys, url).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["aud"] = SERVICE + "x"
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def _signed_by(key_name: str, alg: str, kid: str) -> Callable[[Keys, str], str]:
    def make(keys: Keys, url: str) -> str:
        now = int(time.time())
        claims = {"iss": SANDBOX, "aud": SERVICE, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
        return sign(getattr(keys, key_name), alg, {"typ": "JWT", "kid": kid}, claims)

    return make


BAD_TOKENS: list[tuple[str, Callable[[Keys, str], str], str]] = [
    ("alg none", _alg_none, "not a compact JWS"),
    ("alg none with a signature", lambda k, u: _alg_none(k, u) + "c2lnbmF0dXJl", "alg not allowed"),
    ("HS256 signed with the public key", _hs256_with_the_public_key, "alg not allowed"),
    ("unknown kid", lambda k, u: sandbox_token(k, u, h_kid="nobody"), "unknown kid"),
    ("wrong key", _signed_by("other_es384", "ES384", "es384"), "bad signature"),
    ("key type does not match alg", _signed_by("es384", "ES384", "rsa"), "key type does not match alg"),
    (
        "curve does not match alg",
        lambda k, u: _with_header(sandbox_token(k, u), alg="ES256", kid="es384"),
        "key curve does not match alg",
    ),
    ("payload changed after signing", _tampered, "bad signature"),
    ("expired", lambda k, u: sandbox_token(k, u, exp=int(time.time()) - 120, iat=int(time.time()) - 400), "expired"),
    ("nbf in the future", lambda k, u: sandbox_token(k, u, nbf=int(time.time()) + 600), "not yet valid (nbf)"),
    (
        "iat in the future",
        lambda k, u: sandbox_token(k, u, iat=int(time.time()) + 600, exp=int(time.time()) + 700),
        "iat in the future",
    ),
    ("lifetime too long", lambda k, u: sandbox_token(k, u, exp=int(time.time()) + 3600), "lifetime too long"),
    (
        "wrong aud",
        lambda k, u: sandbox_token(k, u, aud="https://elsewhere.example/cds-services/vitamin-d-cramps"),
        "aud is not the URL called",
    ),
    (
        "aud of another service",
        lambda k, u: sandbox_token(k, u, aud=f"{BASE}/cds-services/other-service"),
        "aud is not the URL called",
    ),
    ("aud missing", lambda k, u: sandbox_token(k, u, aud=...), "aud is not the URL called"),
    ("unknown iss", lambda k, u: sandbox_token(k, u, iss="https://attacker.example"), "issuer not trusted"),
    (
        "jku not allowlisted",
        lambda k, u: sandbox_token(k, u, h_jku="https://attacker.example/jwks"),
        "jku not on the issuer's list",
    ),
    ("tenant mismatch", lambda k, u: _inline_token(k, tenant="t2"), "tenant does not match"),
    ("tenant missing", lambda k, u: _inline_token(k, tenant=None), "tenant does not match"),
    ("missing jti", lambda k, u: sandbox_token(k, u, jti=...), "no jti"),
    ("empty jti", lambda k, u: sandbox_token(k, u, jti=""), "no jti"),
    ("jti not a string", lambda k, u: sandbox_token(k, u, jti=7), "no jti"),
    # the replay cache keeps each jti until its token expires: 100,000 of 8,000 characters held 800 MB
    ("jti too long", lambda k, u: sandbox_token(k, u, jti="j" * 257), "jti is not valid"),
    ("iat not a number", lambda k, u: sandbox_token(k, u, iat=True), "iat is not a finite number"),
    ("missing exp", lambda k, u: sandbox_token(k, u, exp=...), "no exp"),
    ("missing iat", lambda k, u: sandbox_token(k, u, iat=...), "no iat"),
    ("exp not a number", lambda k, u: sandbox_token(k, u, exp="tomorrow"), "exp is not a finite number"),
    ("header nested 1,100 deep", lambda k, u: _raw(_deep(1100), _claims(u)), "header is not base64url JSON"),
    ("payload nested 1,100 deep", lambda k, u: _raw({"alg": "ES384"}, _deep(1100)), "payload is not base64url JSON"),
    ("exp NaN", lambda k, u: _raw(_header(u), _claims(u, exp="NaN")), "payload is not base64url JSON"),
    ("iat NaN", lambda k, u: _raw(_header(u), _claims(u, iat="NaN")), "payload is not base64url JSON"),
    ("exp 1e400", lambda k, u: _raw(_header(u), _claims(u, exp="1e400")), "payload is not base64url JSON"),
    ("exp -Infinity", lambda k, u: _raw(_header(u), _claims(u, exp="-Infinity")), "payload is not base64url JSON"),
    ("typ not JWT", lambda k, u: sandbox_token(k, u, h_typ="at+jwt"), "typ is not JWT"),
    ("no kid", lambda k, u: sandbox_token(k, u, h_kid=...), "no kid"),
    ("malformed segments", lambda k, u: ".".join(sandbox_token(k, u).split(".")[:2]), "not a compact JWS"),
    ("empty signature", lambda k, u: sandbox_token(k, u).rsplit(".", 1)[0] + ".", "not a compact JWS"),
    (
        "non-JSON header",
        lambda k, u: b64(b"not json") + "." + sandbox_token(k, u).split(".", 1)[1],
        "header is not base64url JSON",
    ),
    ("header not base64", lambda k, u: "%%%." + sandbox_token(k, u).split(".", 1)[1], "header is not base64url JSON"),
    ("a token for discovery", lambda k, u: sandbox_token(k, u, aud=DISCOVERY), "aud is not the URL called"),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
async def test_bad_tokens_get_401(
    client: httpx.AsyncClient,
    keys: Keys,
    jwks_server: JwksServer,
    name: str,
    make: Callable[[Keys, str], str],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = make(keys, jwks_server.url)
    response = await client.post(SERVICE, json=hook(), headers=bearer(token))
    assert_unauthorized(response)
    (line,) = [r for r in caplog.records if r.getMessage() == "unauthorized"]
    assert line.reason == reason  # refused for the reason the case is about, and it is logged
    assert token not in caplog.text


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "unauthorized"}],
    }


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no header", "empty", "bearer without token", "basic"],
)
async def test_missing_or_wrong_scheme_gets_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=headers))
    assert_unauthorized(await client.get("/cds-services", headers=headers))


async def test_token_in_the_wrong_scheme(client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer) -> None:
    token = sandbox_token(keys, jwks_server.url)
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers={"Authorization": f"Token {token}"}))


async def test_replayed_jti(client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer) -> None:
    token = sandbox_token(keys, jwks_server.url)
    assert (await client.post(SERVICE, json=hook(), headers=bearer(token))).status_code == 200
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=bearer(token)))


async def test_discovery_token_replayed_on_a_service(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer
) -> None:
    token = sandbox_token(keys, jwks_server.url, aud=DISCOVERY)
    assert (await client.get("/cds-services", headers=bearer(token))).status_code == 200
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=bearer(token)))


async def test_unknown_service_and_bad_bodies_still_need_a_token(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/cds-services/nope", json=hook()))
    assert_unauthorized(await client.post(SERVICE, content=b"{not json"))


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_health_metrics_and_docs_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    """Probes and scrapers carry no JWT: with CDS_AUTH=jwt these still answer, and with their content."""
    answer = await client.get(path)
    assert answer.status_code == 200
    expected = {
        "/healthz": '"ok"',
        "/readyz": '"ready"',
        "/metrics": "cds_hook_calls_total",
        "/openapi.json": '"openapi"',
    }
    assert expected[path] in answer.text


# --- key rotation and the refresh limit -----------------------------------------------------------


async def test_unknown_kid_refreshes_at_most_once_a_minute(keys: Keys, jwks_server: JwksServer) -> None:
    settings = Settings(auth="off", fhir_allow_insecure=True)
    clock = [1000.0]
    async with make_http_client(settings) as http:
        store = KeyStore(FhirClient(http, settings), clock=lambda: clock[0])
        assert (await store.key(jwks_server.url, "es384")).kid == "es384"
        assert jwks_server.fetches == 1
        jwks_server.document = public_jwks(keys.es384, keys.rotated_es384)  # the EHR rotates its keys
        clock[0] += 30
        with pytest.raises(Unauthorized, match="unknown kid"):
            await store.key(jwks_server.url, "es384-2026")
        assert jwks_server.fetches == 1  # not again within the minute
        clock[0] += 31
        assert (await store.key(jwks_server.url, "es384-2026")).kid == "es384-2026"
        assert jwks_server.fetches == 2  # an unknown kid a minute on: the new key set is read
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await store.key(jwks_server.url, "made-up")
        assert jwks_server.fetches == 2  # made-up kids cannot make the service hammer the EHR
        assert (await store.key(jwks_server.url, "es384")).kid == "es384"


async def test_a_failing_key_set_is_fetched_at_most_once_a_minute(keys: Keys) -> None:
    """Tokens naming unknown kids against a key set that never loaded: one fetch, not forty."""
    failures = JwksServer({"keys": "not a list"})  # answers, but with no key set
    settings = Settings(auth="off", fhir_allow_insecure=True)
    clock = [1000.0]
    try:
        async with make_http_client(settings) as http:
            store = KeyStore(FhirClient(http, settings), clock=lambda: clock[0])
            for i in range(40):
                with pytest.raises(Unauthorized):
                    await store.key(failures.url, f"kid-{i}")
            assert failures.fetches == 1
            clock[0] += 61
            with pytest.raises(Unauthorized, match="key set is not a JWKS"):
                await store.key(failures.url, "kid-x")
            assert failures.fetches == 2  # a minute on, one more try
            failures.document = public_jwks(keys.es384)  # the EHR mends it
            clock[0] += 61
            assert (await store.key(failures.url, "es384")).kid == "es384"
            assert failures.fetches == 3
    finally:
        failures.close()
    unreachable_clock = [1000.0]
    async with make_http_client(settings) as http:
        store = KeyStore(FhirClient(http, settings), clock=lambda: unreachable_clock[0])
        with pytest.raises(Unauthorized, match="key set unavailable"):
            await store.key("http://127.0.0.1:9/jwks", "a")
        with pytest.raises(Unauthorized, match="unknown kid"):  # within the minute: no second connection
            await store.key("http://127.0.0.1:9/jwks", "b")


async def test_an_unreachable_jwks_is_401_not_500(make_app: AppFactory, tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": SANDBOX, "jwks_url": "http://127.0.0.1:9/jwks"}]}))
    app = make_app(auth="jwt", public_base_url=BASE, trusted_issuers_file=path, fhir_allow_insecure=True)
    async with make_client(app) as c:
        token = sandbox_token(keys, "x", h_jku=...)
        assert_unauthorized(await c.post(SERVICE, json=hook(), headers=bearer(token)))


async def test_jwks_url_follows_the_address_rules(
    make_app: AppFactory, tmp_path: Path, keys: Keys, jwks_server: JwksServer
) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": SANDBOX, "jwks_url": jwks_server.url}]}))
    app = make_app(auth="jwt", public_base_url=BASE, trusted_issuers_file=path)  # insecure not allowed
    async with make_client(app) as c:
        token = sandbox_token(keys, "x", h_jku=...)
        assert_unauthorized(await c.post(SERVICE, json=hook(), headers=bearer(token)))
    assert jwks_server.fetches == 0


async def test_replay_cache_is_bounded() -> None:
    cache = ReplayCache(size=3)
    for i in range(5):
        assert await cache.first_use("iss", f"j{i}", exp=100.0 + i, now=0.0)
    assert len(cache._seen) == 3
    assert not await cache.first_use("iss", "j4", exp=104.0, now=0.0)  # still remembered
    assert await cache.first_use("iss", "j0", exp=100.0, now=200.0)  # expired long ago: forgotten


# --- the issuers file and the setting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("issuers: []", "issuers"),
        ("issuers: [{iss: a}]", "give either jwks_url or jwks"),
        ("issuers: [{iss: a, jwks_url: 'https://a/jwks', jwks: {keys: []}}]", "give either jwks_url or jwks"),
        ("issuers: [{iss: a, jwks: {keys: [{kty: EC}]}}]", "not a usable key set"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j'}, {iss: a, jwks_url: 'https://a/k'}]", "issuer listed twice"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', colour: red}]", "colour"),
        ("[unclosed", "cannot be read"),
        # each EHR's own (docs/trust.md, "Each EHR's own")
        ("issuers: [{iss: a, jwks_url: 'https://a/j', name: 'EHR A'}]", "name"),  # a metric label: no spaces
        ("issuers: [{iss: a, jwks_url: 'https://a/j', name: none}]", "CDS_AUTH=off"),
        (
            "issuers: [{iss: a, jwks_url: 'https://a/j', name: x}, {iss: b, jwks_url: 'https://b/j', name: x}]",
            "name listed twice",
        ),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['ehr.example/fhir']}]", "not a FHIR server"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://u:p@ehr.x/fhir']}]", "no user name"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://ehr.x/fhir?x=1']}]", "not a FHIR server"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', snooze_scope: everyone}]", "snooze_scope"),
        # from an attack run: each was taken without a word
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: []}]", "leave fhir_servers out for any"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://*/r4']}]", "not a FHIR server"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://ehr.x/a/../b']}]", "not a FHIR server"),
        ("issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://ehr.x/a/%2e%2e']}]", "not a FHIR server"),
        (
            "issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://ehr.x/r4'], fhir_servers: []}]",
            "key given twice: fhir_servers",
        ),
        ("issuers: [{iss: a, jwks: {keys: [{kty: EC, crv: P-256, x: a, y: b, d: c}]}}]", "holds a private key"),
        (
            "issuers: [{iss: a, jwks_url: 'https://a/j', fhir_servers: ['https://ehr.x/r4']},"
            " {iss: b, jwks_url: 'https://b/j', fhir_servers: ['https://EHR.x/r4/'], threshold_profile: iom-2011}]",
            "list the same FHIR server with different threshold profiles",
        ),
    ],
)
def test_a_bad_issuers_file_names_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "issuers.yaml"
    path.write_text(content)
    with pytest.raises(IssuerConfigError) as exc:
        load_issuers(path)
    assert str(path) in str(exc.value) and problem in str(exc.value)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"threshold_profile": "who-2030"}, "unknown threshold profile 'who-2030'"),
        ({"silent_kinds": ["vitd-sometimes"]}, "silent_kinds: unknown card kind vitd-sometimes"),
    ],
)
def test_an_issuers_own_choice_the_content_lacks_stops_the_start(
    make_app: AppFactory, tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    """Named with the issuer and the file, before the service answers anyone: an EHR answered
    under the default profile, because its own was misspelt, would get cut-points it did not choose."""
    path = tmp_path / "issuers.json"
    issuer = {"iss": INLINE, "name": "inline-ehr", "jwks_url": "https://a/j", **entry}
    path.write_text(json.dumps({"issuers": [issuer]}))
    with pytest.raises(IssuerConfigError) as exc:
        make_app(auth="jwt", public_base_url=BASE, trusted_issuers_file=path)
    assert f"{path}: issuer inline-ehr: " in str(exc.value) and problem in str(exc.value)


def test_a_key_given_twice_in_a_json_issuers_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    entry = '{"iss": "a", "jwks_url": "https://a/j", "fhir_servers": ["https://x/r4"], "fhir_servers": null}'
    path.write_text(f'{{"issuers": [{entry}]}}')
    with pytest.raises(IssuerConfigError, match="key given twice: fhir_servers"):
        load_issuers(path)


def test_jwt_needs_an_issuers_file(make_app: AppFactory) -> None:
    with pytest.raises(IssuerConfigError, match="CDS_TRUSTED_ISSUERS_FILE"):
        make_app(auth="jwt")


@pytest.mark.parametrize("alg", ["HS256", "EdDSA", "none"])
def test_algorithms_no_key_of_an_issuer_can_check_are_refused_at_start(alg: str) -> None:
    """Symmetric ones (anyone with the key could sign), and EdDSA, whose OKP keys are not read."""
    with pytest.raises(ValueError, match=f"this service checks .*: {alg}"):
        Settings(jwt_algorithms=["ES384", alg])


def test_inline_keys_load(issuers_file: Path) -> None:
    issuers = load_issuers(issuers_file)
    assert issuers[INLINE].jwks is not None
    assert KeySet.import_key_set(issuers[INLINE].jwks).keys[0].kid == "es384"  # type: ignore[arg-type]


# --- keys pinned inline: never fetched ------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "named", "accepted"),
    [
        (["JKU"], "JKU", True),  # the Sandbox's own jku, listed: verified against the pinned keys
        (["JKU"], "https://attacker.example/jwks", False),  # listed values bind
        ([], "JKU", True),  # none listed: a jku in the token is ignored
        ([], None, True),
        (["JKU"], None, True),
    ],
)
async def test_an_issuer_with_pinned_keys_is_never_fetched(
    make_app: AppFactory, tmp_path: Path, keys: Keys, listed: list[str], named: str | None, accepted: bool
) -> None:
    """A hospital with no outbound network pins its EHR's keys: tokens naming a `jku` (the CDS Hooks
    Sandbox's always do) are verified against the pinned keys, and nothing is fetched."""
    watch = JwksServer(public_jwks(keys.es384))  # would answer, if the service ever fetched it
    try:
        jku = {"JKU": watch.url}
        path = tmp_path / "issuers.json"
        issuer = {"iss": SANDBOX, "jwks": public_jwks(keys.es384), "jku": [jku.get(v, v) for v in listed]}
        path.write_text(json.dumps({"issuers": [issuer]}))
        app = make_app(auth="jwt", public_base_url=BASE, trusted_issuers_file=path, fhir_allow_insecure=True)
        token = sandbox_token(keys, jku.get(named, named) if named else "", **({} if named else {"h_jku": ...}))
        async with make_client(app) as c:
            answer = await c.post(SERVICE, json=hook(), headers=bearer(token))
        if accepted:
            assert answer.status_code == 200, answer.text
        else:
            assert_unauthorized(answer)
        assert watch.fetches == 0
    finally:
        watch.close()


async def test_a_jwks_url_issuer_still_fetches_only_listed_jkus(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer
) -> None:
    assert (
        await client.post(SERVICE, json=hook(), headers=bearer(sandbox_token(keys, jwks_server.url)))
    ).status_code == 200
    elsewhere = sandbox_token(keys, "https://attacker.example/jwks")
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=bearer(elsewhere)))


# --- what the log says about a refused token ------------------------------------------------------


def _logged_refusal(captured: io.StringIO) -> dict[str, Any]:
    (line,) = [x for x in map(json.loads, captured.getvalue().splitlines()) if x["message"] == "unauthorized"]
    return line


REFUSALS: list[tuple[str, Callable[[Keys, str], str], dict[str, str]]] = [
    (
        "aud of another service",
        lambda k, u: sandbox_token(k, u, aud=f"{BASE}/cds-services/other-service?x=1"),
        # both URLs with their path, which is the diagnosis; the query still goes
        {"claim": "aud", "expected": SERVICE, "received": f"{BASE}/cds-services/other-service?…"},
    ),
    ("aud missing", lambda k, u: sandbox_token(k, u, aud=...), {"claim": "aud", "expected": SERVICE}),
    ("unknown iss", lambda k, u: sandbox_token(k, u, iss="https://attacker.example/x"), {"claim": "iss"}),
    ("unknown kid", lambda k, u: sandbox_token(k, u, h_kid="nobody"), {"claim": "kid", "received": "nobody"}),
    (
        "jku",
        lambda k, u: sandbox_token(k, u, h_jku="https://attacker.example/jwks"),
        {"claim": "jku", "received": "https://attacker.example/jwks"},
    ),
    ("alg", lambda k, u: _alg_none(k, u) + "c2ln", {"claim": "alg", "received": "none"}),
    ("tenant", lambda k, u: _inline_token(k, tenant="t2"), {"claim": "tenant", "expected": "t1", "received": "t2"}),
    (
        "lifetime",
        lambda k, u: sandbox_token(k, u, exp=int(time.time()) + 3600),
        {"claim": "exp", "expected": "exp - iat at most 600 s", "received": "3600 s"},
    ),
]


@pytest.mark.parametrize(("name", "make", "fields"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refusal_is_logged_with_the_claim_what_was_expected_and_what_came(
    client: httpx.AsyncClient,
    keys: Keys,
    jwks_server: JwksServer,
    name: str,
    make: Callable[[Keys, str], str],
    fields: dict[str, str],
) -> None:
    """Beside the reason (a fixed set, for the metrics): the claim that failed, the value expected
    and the value that came; never the token (CDS Hooks 2.0.1, "Trusting CDS Clients": the
    service must check iss, aud, exp and jti, and an operator must be able to tell which failed)."""
    captured = io.StringIO()
    logs.configure("json", captured)
    token = make(keys, jwks_server.url)
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=bearer(token)))
    line = _logged_refusal(captured)
    assert {name: line.get(name) for name in fields} == fields
    assert token not in captured.getvalue() and token.rsplit(".", 1)[1] not in captured.getvalue()


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_a_refused_time_is_logged_with_the_servers_clock(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer, claim: str
) -> None:
    captured = io.StringIO()
    logs.configure("json", captured)
    now = int(time.time())
    times = {"exp": now - 120, "iat": now - 400} if claim == "exp" else {"iat": now + 600, "exp": now + 700}
    if claim == "nbf":
        times = {"nbf": now + 600}
    assert_unauthorized(
        await client.post(SERVICE, json=hook(), headers=bearer(sandbox_token(keys, jwks_server.url, **times)))
    )
    line = _logged_refusal(captured)
    sent = times[claim]
    assert line["claim"] == claim
    assert line["received"] == f"{sent} ({datetime.fromtimestamp(sent, UTC):%Y-%m-%dT%H:%M:%SZ})"
    assert abs(int(line["server_time"].split()[0]) - now) <= 5 and line["server_time"].endswith("Z)")
    bound = datetime.fromtimestamp(now - 60 if claim == "exp" else now + 60, UTC)
    assert line["expected"].startswith("after " if claim == "exp" else "before ")
    assert abs(int(line["expected"].split()[1]) - bound.timestamp()) <= 5


async def test_an_echoed_value_is_bounded(client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer) -> None:
    """A token may carry a 10 KB aud, or a line break to forge a line of a text log."""
    captured = io.StringIO()
    logs.configure("text", captured)
    aud = f"{BASE}/cds-services/x\nforged INFO line " + "a" * 10_000
    token = sandbox_token(keys, jwks_server.url, aud=aud)
    assert_unauthorized(await client.post(SERVICE, json=hook(), headers=bearer(token)))
    (line,) = [x for x in captured.getvalue().splitlines() if " unauthorized " in x]
    received = line.split(" received=", 1)[1].split(" request_id=", 1)[0]
    assert received.startswith(f"{BASE}/cds-services/x\ufffdforged INFO line aaa") and received.endswith("a… (cut)")
    assert len(received) == 200 + len("… (cut)") and len(captured.getvalue()) < 1000
    assert not any(x.startswith("forged") for x in captured.getvalue().splitlines())
