"""What a caller without a trusted token can make the JWT check cost or accept, each bound shown by
the attack that found it: an unsigned 8 MB token (once +212 MB of memory before its 401) is refused
before any of it is decoded; the `aud` expected comes from CDS_PUBLIC_BASE_URL, which CDS_AUTH=jwt
cannot start without, never from the request's Host; and fifty tokens arriving together for an
issuer whose keys are not yet cached make one fetch of its key set, not thirty-nine."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from typer.testing import CliRunner

from cds_service.cli import cli
from cds_service.fhir.client import FhirClient, make_http_client
from cds_service.settings import Settings
from cds_service.shared import SharedState
from cds_service.trust import Unauthorized
from cds_service.trust.issuers import IssuerConfigError
from cds_service.trust.keys import KeyStore
from cds_service.trust.middleware import RequireJwt
from cds_service.trust.verifier import MAX_AUTHORIZATION_BYTES, Verifier
from tests.conftest import AppFactory, Keys, make_client
from tests.servers import service
from tests.test_auth import SANDBOX, JwksServer, assert_unauthorized, b64, bearer, hook, public_jwks, sandbox_token

pytestmark = pytest.mark.anyio
PATH = "/cds-services/vitamin-d-cramps"
PUBLIC = "https://cds.hospital.example/vitd"
MiB = 1024 * 1024


@pytest.fixture
def jwks(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer(public_jwks(keys.es384), delay_s=0.3)
    yield server
    server.close()


def issuers_file(tmp_path: Path, jwks_url: str) -> Path:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": SANDBOX, "jwks_url": jwks_url, "jku": [jwks_url]}]}))
    return path


@pytest.fixture
async def client(make_app: AppFactory, tmp_path: Path, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(
        auth="jwt",
        public_base_url=PUBLIC,
        trusted_issuers_file=issuers_file(tmp_path, jwks.url),
        fhir_allow_insecure=True,
    )
    async with make_client(app) as c:
        yield c


def refusal(caplog: pytest.LogCaptureFixture) -> str:
    (line,) = [r for r in caplog.records if r.getMessage() == "unauthorized"]
    return str(line.reason)


# --- 1. memory before authentication: the Authorization header is bounded before it is decoded -----


def expensive_token(size: int = 8 * MiB) -> str:
    """An unsigned token of exactly `size` characters whose payload orjson would turn into millions
    of empty lists (some 200 MB of objects): the costliest kind for a check that decodes before it
    bounds. Its signature segment makes up the length."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    raw = (size - len(header) - 2) * 3 // 4 - 3  # base64 rounds up
    payload = b64(b"[" + b"[]," * max((raw - 3) // 3, 0) + b"[]]")
    token = f"{header}.{payload}."
    assert len(token) <= size
    return token + "A" * (size - len(token))


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_an_8_mb_unsigned_token_costs_the_real_service_little_memory(tmp_path: Path, keys: Keys) -> None:
    """The attack as it was run, on `cds-service serve`: its peak RSS (VmHWM) before and after.
    A 48 KB token gets to the JWT check, which refuses it on its length (401, "too long" logged);
    the 8 MB one is refused by whichever bound meets it first: this one (401), or the server's own
    limit on a request's header block (cds_service/http_protocol.py: 431, or the connection closed
    while it is still being sent). Either way no 200, and the growth is what receiving it costs."""
    token = expensive_token()
    assert len(token) == 8 * MiB
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": SANDBOX, "jwks": public_jwks(keys.es384)}]}))
    settings = {
        "CDS_AUTH": "jwt",
        "CDS_TRUSTED_ISSUERS_FILE": str(path),
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:{port}",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}",
    }
    log = tmp_path / "service.log"
    with (
        log.open("wb") as output,
        service("serve", settings, "--no-access-log", output=output) as (base, process),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        for _ in range(3):  # the refusal's own code paths loaded and warm before measuring
            assert_unauthorized(http.post(PATH, json=hook(), headers=bearer(expensive_token(2048))))
        before = peak_rss_bytes(process.pid)
        assert_unauthorized(http.post(PATH, json=hook(), headers=bearer(expensive_token(48 * 1024))))
        try:
            status: int | str = http.post(PATH, json=hook(), headers=bearer(token)).status_code
        except httpx.TransportError as exc:  # the server closed the connection on a header too large
            status = type(exc).__name__
        growth = peak_rss_bytes(process.pid) - before
    assert status in (401, 431) or isinstance(status, str), status
    # Decoding the token, which the bound prevents, cost 212 MB. Receiving it costs uvicorn's parser
    # about twice its size (some 16 MB) when the server's header limit does not stop it sooner.
    assert growth < 20 * MiB, f"peak RSS grew {growth / MiB:.1f} MB"
    text = log.read_text()
    assert "Authorization header too long" in text
    assert token.split(".")[1][:40] not in text


async def test_the_check_of_an_8_mb_header_allocates_next_to_nothing() -> None:
    """The JWT middleware alone, on an 8 MB Authorization header already received: what it allocates
    while refusing it (traced by tracemalloc), where decoding the token allocated some 200 MB."""
    raw = b"Bearer " + expensive_token().encode()
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "scheme": "https",
        "query_string": b"",
        "server": ("cds.hospital.example", 443),
        "headers": [(b"host", b"cds.hospital.example"), (b"authorization", raw)],
        "app": SimpleNamespace(state=SimpleNamespace(verifier=Verifier(Settings(auth="off"), {}, keys=None))),  # type: ignore[arg-type]
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body is never read before the token is trusted")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("an untrusted call never reaches the app")

    check = RequireJwt(app, public_base_url=PUBLIC)
    tracemalloc.start()
    try:
        await check(scope, receive, send)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent[0]["status"] == 401
    assert peak < MiB // 4, f"{peak / MiB:.1f} MB allocated"


async def test_the_bound_is_16_kb_and_the_reason_says_too_long(
    client: httpx.AsyncClient, keys: Keys, jwks: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert MAX_AUTHORIZATION_BYTES == 16 * 1024
    over = expensive_token(MAX_AUTHORIZATION_BYTES - len("Bearer ") + 1)
    assert_unauthorized(await client.post(PATH, json=hook(), headers=bearer(over)))
    assert refusal(caplog) == "Authorization header too long"
    assert over[:-1].split(".")[1][:40] not in caplog.text
    caplog.clear()
    at_the_limit = expensive_token(MAX_AUTHORIZATION_BYTES - len("Bearer "))
    assert_unauthorized(await client.post(PATH, json=hook(), headers=bearer(at_the_limit)))
    assert refusal(caplog) == "payload is not a JSON object"  # decoded, and refused for what it holds
    assert jwks.fetches == 0


async def test_a_large_but_bounded_real_token_still_passes(
    client: httpx.AsyncClient, keys: Keys, jwks: JwksServer
) -> None:
    """Claims an EHR may add (a fhirUser, a long sub) fit well within the bound."""
    token = sandbox_token(keys, jwks.url, aud=f"{PUBLIC}{PATH}", sub="x" * 4000)
    assert 4000 < len(token) < MAX_AUTHORIZATION_BYTES
    assert (await client.post(PATH, json=hook(), headers=bearer(token))).status_code == 200


# --- 2. aud from the configuration, never from the Host header ------------------------------------


def test_serve_refuses_jwt_without_a_public_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_AUTH", "jwt")
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS_FILE", str(issuers_file(tmp_path, "https://ehr.example/jwks")))
    monkeypatch.delenv("CDS_PUBLIC_BASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "CDS_AUTH=jwt needs CDS_PUBLIC_BASE_URL" in result.output
    assert "Host header" in result.output and "replayed" in result.output  # and why


def test_off_and_the_demo_need_no_public_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDS_PUBLIC_BASE_URL", raising=False)
    Settings(auth="off").check_serving()
    Settings(auth="jwt", trusted_issuers_file=Path("issuers.yaml"), public_base_url=PUBLIC).check_serving()
    with pytest.raises(ValueError, match="CDS_PUBLIC_BASE_URL"):
        Settings(auth="jwt", trusted_issuers_file=Path("issuers.yaml")).check_serving()


async def test_an_app_built_without_it_does_not_start(make_app: AppFactory, tmp_path: Path) -> None:
    """create_app with CDS_AUTH=jwt and no public base URL refuses to build the app (and the JWT
    middleware refuses to be built), rather than checking `aud` against the Host."""
    with pytest.raises(IssuerConfigError, match="CDS_AUTH=jwt needs CDS_PUBLIC_BASE_URL"):
        make_app(auth="jwt", trusted_issuers_file=issuers_file(tmp_path, "https://ehr.example/jwks"))
    with pytest.raises(ValueError, match="CDS_AUTH=jwt needs CDS_PUBLIC_BASE_URL"):
        RequireJwt(FastAPI(), public_base_url=None)


@pytest.mark.parametrize(
    "value",
    ["cds.example.org", "/cds", "ftp://cds.example.org", "https://", "https://cds.example.org/?a=1", "https://a/#x"],
)
def test_a_public_base_url_that_cannot_be_an_audience_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="CDS_PUBLIC_BASE_URL must"):
        Settings(public_base_url=value)


def test_the_refusal_never_repeats_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic's own message repeats the input; a URL may hold a password."""
    monkeypatch.setenv("CDS_AUTH", "jwt")
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS_FILE", str(issuers_file(tmp_path, "https://ehr.example/jwks")))
    monkeypatch.setenv("CDS_PUBLIC_BASE_URL", "https://admin:hunter2-secret@cds.example.org")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "CDS_PUBLIC_BASE_URL: CDS_PUBLIC_BASE_URL must hold no user name" in result.output
    assert "hunter2" not in result.output


def test_public_base_url_is_kept_without_its_trailing_slash() -> None:
    assert Settings(public_base_url=f" {PUBLIC}/ ").public_base_url == PUBLIC
    assert Settings(public_base_url="").public_base_url is None  # CDS_PUBLIC_BASE_URL= is unset


async def test_a_token_for_the_host_header_is_refused(
    client: httpx.AsyncClient, keys: Keys, jwks: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack: a token minted for another host's service, replayed with that Host. The Host is
    not the audience; the configured URL is, whatever Host or X-Forwarded-Host the request carries."""
    other = "https://other-service.example"
    stolen = sandbox_token(keys, jwks.url, aud=f"{other}{PATH}")
    replayed = await client.post(
        f"{other}{PATH}", json=hook(), headers=bearer(stolen) | {"X-Forwarded-Host": "other-service.example"}
    )
    assert replayed.request.headers["host"] == "other-service.example"
    assert_unauthorized(replayed)
    assert refusal(caplog) == "aud is not the URL called"
    ours = sandbox_token(keys, jwks.url, aud=f"{PUBLIC}{PATH}")
    assert (await client.post(f"{other}{PATH}", json=hook(), headers=bearer(ours))).status_code == 200


# --- 3. one key-set fetch at a time per URL ------------------------------------------------------


def test_fifty_tokens_at_once_make_the_real_service_fetch_once(tmp_path: Path, keys: Keys, jwks: JwksServer) -> None:
    settings = {
        "CDS_AUTH": "jwt",
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers_file(tmp_path, jwks.url)),
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:{port}",
        "CDS_FHIR_ALLOW_INSECURE": "true",  # the key set is served over http on loopback
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}",
    }
    with service("serve", settings, "--no-access-log") as (base, _):
        tokens = [sandbox_token(keys, jwks.url, aud=f"{base}/cds-services") for _ in range(50)]
        start = threading.Barrier(50)

        def call(token: str) -> int:
            with httpx.Client(base_url=base, timeout=20) as http:
                start.wait()
                return http.get("/cds-services", headers=bearer(token)).status_code

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(call, tokens))
    assert answers == [200] * 50
    assert jwks.fetches == 1


async def test_callers_waiting_on_a_fetch_use_what_it_brought(keys: Keys, jwks: JwksServer) -> None:
    """In one process, without Redis: the first fetch, a refetch for a kid the set lacks a minute
    on, and one that fails, each made once for fifty callers together."""
    settings = Settings(auth="off", fhir_allow_insecure=True)
    clock = [1000.0]
    async with make_http_client(settings) as http:
        store = KeyStore(FhirClient(http, settings), clock=lambda: clock[0])
        found = await asyncio.gather(*(store.key(jwks.url, "es384") for _ in range(50)))
        assert {k.kid for k in found} == {"es384"} and jwks.fetches == 1
        jwks.document = public_jwks(keys.es384, keys.rotated_es384)  # the EHR rotates its keys
        clock[0] += 61
        found = await asyncio.gather(*(store.key(jwks.url, "es384-2026") for _ in range(50)))
        assert {k.kid for k in found} == {"es384-2026"} and jwks.fetches == 2
        clock[0] += 30
        unknown = await asyncio.gather(*(store.key(jwks.url, f"kid-{i}") for i in range(50)), return_exceptions=True)
        assert all(isinstance(u, Unauthorized) for u in unknown) and jwks.fetches == 2  # within the minute
        jwks.document = {"keys": "not a list"}
        clock[0] += 31
        failed = await asyncio.gather(*(store.key(jwks.url, f"new-{i}") for i in range(50)), return_exceptions=True)
        assert all(isinstance(f, Unauthorized) for f in failed) and jwks.fetches == 3


_bounds_redis = factories.redis_proc(port=None)


async def test_with_redis_fifty_callers_in_two_workers_fetch_once(
    request: pytest.FixtureRequest, jwks: JwksServer
) -> None:
    """Each worker waits on its own fetch in-process, and the workers on one another through Redis."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); make test installs it as root")
    redis_server: RedisExecutor = request.getfixturevalue("_bounds_redis")
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(auth="off", fhir_allow_insecure=True)
    async with make_http_client(settings) as http:
        shared = [SharedState.connect(url) for _ in range(2)]
        try:
            stores = [KeyStore(FhirClient(http, settings), shared=s) for s in shared]
            found = await asyncio.gather(*(stores[i % 2].key(jwks.url, "es384") for i in range(50)))
        finally:
            for s in shared:
                await s.close()
    assert {k.kid for k in found} == {"es384"}
    assert jwks.fetches == 1
