"""The SMART app's routes in process: the cards' link to it, the demo mode, and the launch's
refusals for answers a real authorization server cannot be made to give (tests/fhir_routes.py
plays the EHR). The launch itself, through the reference launcher in Chromium, is
tests/e2e/test_smart_app.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from typer.testing import CliRunner

from cds_service.app import create_app
from cds_service.cli import cli
from cds_service.settings import Settings
from tests.builders import LOINC, bundle, hook_request, obs, order_request, service_request
from tests.conftest import AppFactory, make_client
from tests.fhir_routes import FhirRoutes, Reply
from tests.servers import free_port

pytestmark = pytest.mark.anyio

BASE = "https://cds.example.org"
SMART = {"smart_client_id": "trend-app", "public_base_url": BASE}
LABEL = "Vitamin D and electrolyte trend"
DEFICIENT = hook_request(
    [obs("62292-8", 12, "ng/mL", "2026-11-01")], [obs("2823-3", 5.8, "mmol/L", "2026-11-20")], conditions=[]
)


def _smart_links(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in card.get("links", []) if link["type"] == "smart"]


async def test_the_cards_of_the_chart_link_to_the_app_once_it_is_set_up(make_app: AppFactory) -> None:
    async with make_client(make_app(**SMART)) as client:
        cards = (await client.post("/cds-services/vitamin-d-cramps", json=DEFICIENT)).json()["cards"]
        discovery = (await client.get("/cds-services")).json()["services"]
    assert {c["source"]["topic"]["code"] for c in cards} == {
        "vitd-deficient",
        "electrolytes-abnormal",
        "electrolytes-check",
    }
    for card in cards:
        assert _smart_links(card) == [{"label": LABEL, "url": f"{BASE}/smart/launch", "type": "smart"}]
    described = {s["id"]: s["description"] for s in discovery}
    assert "SMART app" in described["vitamin-d-cramps"]


async def test_no_link_without_the_app_and_none_on_an_order_card(make_app: AppFactory) -> None:
    async with make_client(make_app()) as client:
        cards = (await client.post("/cds-services/vitamin-d-cramps", json=DEFICIENT)).json()["cards"]
        described = (await client.get("/cds-services")).json()["services"][0]["description"]
    assert cards and not any(_smart_links(c) for c in cards) and "SMART" not in described
    draft = service_request(("http://acme.example/orders", "LAB123"), (LOINC, "62292-8"), id="sr-1")
    request = order_request([draft], vitamin_d=[obs("62292-8", 24, "ng/mL", "2026-10-01")])
    async with make_client(make_app(**SMART)) as client:
        (card,) = (await client.post("/cds-services/vitamin-d-order-sign", json=request)).json()["cards"]
        assert (await client.get("/smart/launch")).status_code == 400  # the app is there
    assert card["source"]["topic"]["code"] == "vitd-duplicate-order" and not _smart_links(card)


async def test_without_the_app_set_up_its_routes_are_absent(make_app: AppFactory) -> None:
    async with make_client(make_app()) as client:
        for path in ("/smart/launch", "/smart/callback", "/smart/app/x", "/smart/jwks.json", "/smart/demo/p1"):
            assert (await client.get(path)).status_code == 404


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({}, "gives no iss or launch"),
        ({"iss": "https://ehr.example.org/fhir"}, "gives no iss or launch"),
        ({"iss": "x" * 5000, "launch": "l"}, "gives no iss or launch"),
        ({"iss": "http://ehr.example.org/fhir", "launch": "l"}, "not an https URL"),
        ({"iss": "https://user:pw@ehr.example.org/fhir", "launch": "l"}, "credentials in the URL"),
        ({"iss": "javascript:alert(1)", "launch": "l"}, "not an https URL"),
    ],
)
async def test_a_launch_the_service_cannot_follow_is_a_page_that_says_why(
    make_app: AppFactory, params: dict[str, str], said: str
) -> None:
    async with make_client(make_app(**SMART)) as client:
        answer = await client.get("/smart/launch", params=params)
    assert answer.status_code in (400, 502) and said in answer.text
    assert answer.headers["content-type"].startswith("text/html") and "Traceback" not in answer.text
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]


def _configuration(routes: FhirRoutes, **fields: Any) -> None:
    document = {
        "authorization_endpoint": f"{routes.base_url}/auth/authorize",
        "token_endpoint": f"{routes.base_url}/auth/token",
        "code_challenge_methods_supported": ["S256"],
    } | fields
    routes.get("/.well-known/smart-configuration").respond(json={k: v for k, v in document.items() if v is not None})


async def _launch(client: httpx.AsyncClient, routes: FhirRoutes) -> httpx.Response:
    return await client.get("/smart/launch", params={"iss": routes.base_url, "launch": "launch-1"})


async def test_the_launch_goes_to_authorize_with_pkce_state_and_aud(
    make_app: AppFactory, fhir_routes: FhirRoutes
) -> None:
    _configuration(fhir_routes)
    async with make_client(make_app(fhir_allow_insecure=True, **SMART)) as client:
        answer = await _launch(client, fhir_routes)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{fhir_routes.base_url}/auth/authorize"
    assert query["response_type"] == "code" and query["client_id"] == "trend-app"
    assert query["redirect_uri"] == f"{BASE}/smart/callback" and query["aud"] == fhir_routes.base_url
    assert query["launch"] == "launch-1" and query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 40
    assert "patient/Observation.rs" in query["scope"].split()  # SMART v2 scopes by default
    state_cookie = answer.headers["set-cookie"]
    assert f"cds_smart_state={query['state']}" in state_cookie and "HttpOnly" in state_cookie
    assert "Secure" in state_cookie and "SameSite=none" in state_cookie  # an EHR's iframe over https


async def test_v1_scopes_by_setting(make_app: AppFactory, fhir_routes: FhirRoutes) -> None:
    _configuration(fhir_routes)
    async with make_client(make_app(fhir_allow_insecure=True, smart_scope_version="v1", **SMART)) as client:
        answer = await _launch(client, fhir_routes)
    scope = parse_qs(urlsplit(answer.headers["location"]).query)["scope"][0].split()
    assert "patient/Observation.read" in scope and not any(s.endswith(".rs") for s in scope)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"authorization_endpoint": None}, "names no authorization or token endpoint"),
        ({"token_endpoint": 42}, "names no authorization or token endpoint"),
        ({"code_challenge_methods_supported": ["plain"]}, "does not offer PKCE S256"),
        ({"authorization_endpoint": "javascript:alert(document.cookie)"}, "cannot be used"),
        ({"authorization_endpoint": "https://ehr.example.org/authorize?x=1"}, "cannot be used"),
        ({"token_endpoint": "ftp://ehr.example.org/token"}, "cannot be used"),
    ],
)
async def test_a_smart_configuration_the_service_cannot_use_stops_the_launch(
    make_app: AppFactory, fhir_routes: FhirRoutes, fields: dict[str, Any], said: str
) -> None:
    _configuration(fhir_routes, **fields)
    async with make_client(make_app(fhir_allow_insecure=True, **SMART)) as client:
        answer = await _launch(client, fhir_routes)
    assert answer.status_code == 502 and said in answer.text and "location" not in answer.headers


async def test_an_endpoint_off_the_allowlist_stops_the_launch(make_app: AppFactory, fhir_routes: FhirRoutes) -> None:
    _configuration(fhir_routes, token_endpoint="https://elsewhere.example.net/token")
    settings = {"fhir_allow_insecure": True, "fhir_allowed_hosts": ["127.0.0.1"], **SMART}
    async with make_client(make_app(**settings)) as client:
        answer = await _launch(client, fhir_routes)
    assert answer.status_code == 502 and "host not on the allowlist" in answer.text


async def _signed_in(
    client: httpx.AsyncClient, routes: FhirRoutes, token_answer: dict[str, Any], status: int = 200
) -> httpx.Response:
    """A launch, then its callback with the token endpoint answering `token_answer`."""
    routes.get("/auth/token").respond(status, json=token_answer)
    launch = await _launch(client, routes)
    state = parse_qs(urlsplit(launch.headers["location"]).query)["state"][0]
    client.cookies.set("cds_smart_state", state)
    return await client.get("/smart/callback", params={"code": "code-1", "state": state})


async def test_the_code_is_exchanged_with_its_verifier_and_the_token_stays_on_the_server(
    make_app: AppFactory, fhir_routes: FhirRoutes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _configuration(fhir_routes)
    token = {"access_token": "secret-access-token", "token_type": "bearer", "patient": "p1", "expires_in": 300}
    async with make_client(make_app(fhir_allow_insecure=True, **SMART)) as client:
        answer = await _signed_in(client, fhir_routes, token)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/smart/app/")
    (call,) = [c for r in fhir_routes.routes for c in r.calls if c.path == "/auth/token"]
    form = {k: v[0] for k, v in parse_qs(call.body.decode()).items()}
    assert call.method == "POST" and form["grant_type"] == "authorization_code" and form["code"] == "code-1"
    assert form["client_id"] == "trend-app" and len(form["code_verifier"]) >= 43
    assert form["redirect_uri"] == f"{BASE}/smart/callback"
    session = next(v for k, v in answer.cookies.items() if k == "cds_smart")
    assert "secret-access-token" not in answer.text + session + str(answer.headers) + caplog.text


@pytest.mark.parametrize(
    ("status", "token_answer", "said"),
    [
        (400, {"error": "invalid_grant"}, "the EHR refused the sign-in (invalid_grant)"),
        (401, {"error": "<script>alert(1)</script>"}, "the EHR refused the sign-in (HTTP 401)"),
        (200, {"access_token": "t", "token_type": "mac", "patient": "p1"}, "not a bearer token"),
        (200, {"access_token": "t", "token_type": "Bearer"}, "no patient in context"),
        (200, {"access_token": "t", "token_type": "Bearer", "patient": "../Patient/p2"}, "no patient in context"),
        (200, {"access_token": "", "token_type": "Bearer", "patient": "p1"}, "no usable access token"),
        (200, {"access_token": ["t"], "token_type": "Bearer", "patient": "p1"}, "no usable access token"),
        # from an attack run: a header no request can carry, and a token kept for half an hour
        (
            200,
            {"access_token": "t\r\nX-Injected: 1", "token_type": "Bearer", "patient": "p1"},
            "no usable access token",
        ),
        (200, {"access_token": "A" * 20_000, "token_type": "Bearer", "patient": "p1"}, "no usable access token"),
        (200, {"access_token": "t", "token_type": "Bearer", "patient": "p1", "pad": "x" * 70_000}, "too large"),
    ],
)
async def test_a_token_answer_the_service_cannot_use_is_a_page_that_says_why(
    make_app: AppFactory, fhir_routes: FhirRoutes, status: int, token_answer: dict[str, Any], said: str
) -> None:
    _configuration(fhir_routes)
    async with make_client(make_app(fhir_allow_insecure=True, **SMART)) as client:
        answer = await _signed_in(client, fhir_routes, token_answer, status)
    assert answer.status_code in (403, 502) and said in answer.text
    assert "cds_smart=" not in answer.headers.get("set-cookie", "") and "<script>" not in answer.text


@pytest.mark.parametrize(
    ("error", "said"), [("access_denied", "(access_denied)"), ("<img src=x onerror=alert(1)>", "(an error)")]
)
async def test_a_refusal_by_the_ehr_is_a_page_that_names_its_code_only(
    make_app: AppFactory, error: str, said: str
) -> None:
    async with make_client(make_app(**SMART)) as client:
        answer = await client.get(
            "/smart/callback", params={"error": error, "error_description": "<b>no</b>", "state": "s"}
        )
    assert answer.status_code == 403 and f"the EHR did not authorize the app {said}" in answer.text
    assert "<img" not in answer.text and "<b>" not in answer.text


async def test_a_state_no_ascii_holds_is_refused_not_an_error(make_app: AppFactory) -> None:
    async with make_client(make_app(**SMART)) as client:
        answer = await client.get("/smart/callback", params={"code": "c", "state": "ünïcode-state"})
    assert answer.status_code == 400 and "not started in this browser" in answer.text


async def test_a_state_serves_once(make_app: AppFactory, fhir_routes: FhirRoutes) -> None:
    _configuration(fhir_routes)
    fhir_routes.get("/auth/token").respond(json={"access_token": "t", "token_type": "Bearer", "patient": "p1"})
    async with make_client(make_app(fhir_allow_insecure=True, **SMART)) as client:
        launch = await _launch(client, fhir_routes)
        state = parse_qs(urlsplit(launch.headers["location"]).query)["state"][0]
        answers = []
        for _ in range(2):  # the same callback twice, the browser's state cookie set each time
            client.cookies.set("cds_smart_state", state)
            answers.append(await client.get("/smart/callback", params={"code": "code-1", "state": state}))
    assert [a.status_code for a in answers] == [303, 400]
    assert "unknown or has expired" in answers[1].text


async def test_the_demo_shows_a_demo_patient_s_trend_without_an_ehr(tmp_path: Path) -> None:
    app = create_app(Settings(auth="off", database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.sqlite"), demo=True)
    async with make_client(app) as client:
        page = await client.get("/smart/demo/demo-deficient-cramps")
        missing = await client.get("/smart/demo/no-such-patient")
        css = await client.get("/smart/static/trend.css")
    assert page.status_code == 200 and 'data-status="deficient"' in page.text and "Demo" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert missing.status_code == 404 and "no such demo patient" in missing.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_the_page_reads_with_the_token_and_says_so_when_the_server_fails(
    make_app: AppFactory, fhir_routes: FhirRoutes
) -> None:
    _configuration(fhir_routes)
    token = {"access_token": "access-1", "token_type": "Bearer", "patient": "p1"}
    results = fhir_routes.get("/Observation").mock(
        side_effect=[
            Reply(json=bundle(obs("62292-8", 12, "ng/mL", "2026-11-01"))),
            Reply(json={"resourceType": "Bundle", "type": "searchset", "entry": [{"fullUrl": "x"}]}),  # no resource
            Reply(503, json={"resourceType": "OperationOutcome"}),
            Reply(503, json={"resourceType": "OperationOutcome"}),
        ]
    )
    fhir_routes.get("/MedicationRequest").respond(json=bundle())
    fhir_routes.get("/Patient/p1").respond(
        json={"resourceType": "Patient", "id": "p1", "name": [{"text": "<b>Al</b>"}]}
    )
    plain = {"smart_client_id": "trend-app", "public_base_url": "http://cds.test"}  # the cookie is not Secure
    async with make_client(make_app(fhir_allow_insecure=True, **plain)) as client:
        page = (await _signed_in(client, fhir_routes, token)).headers["location"]
        shown = await client.get(page)
        failed = await client.get(page)
    assert (
        shown.status_code == 200 and 'data-status="deficient"' in shown.text and "&lt;b&gt;Al&lt;/b&gt;" in shown.text
    )
    assert "1 result could not be read at all" in " ".join(shown.text.split())  # the entry without a resource
    assert {c.headers["authorization"] for c in results.calls} == {"Bearer access-1"}
    assert failed.status_code == 502 and "did not give the results" in failed.text
    assert "access-1" not in shown.text + failed.text


@pytest.mark.parametrize(("profile", "status"), [(None, "deficient"), ("iom-2011", "insufficient")])
async def test_the_trend_is_drawn_under_the_profile_of_the_ehr_that_launched_it(
    make_app: AppFactory, fhir_routes: FhirRoutes, tmp_path: Path, profile: str | None, status: str
) -> None:
    """15 ng/mL is deficient under the Endocrine Society's cut-points and inadequate under the IOM's:
    an EHR whose cards are decided under the IOM's (its entry in the trusted issuers file, which
    lists the FHIR server that launched the app) sees its trend judged as its cards were."""
    _configuration(fhir_routes)
    fhir_routes.get("/Observation").mock(
        side_effect=[Reply(json=bundle(obs("62292-8", 15, "ng/mL", "2026-11-01"))), Reply(json=bundle())]
    )
    fhir_routes.get("/MedicationRequest").respond(json=bundle())
    fhir_routes.get("/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"})
    entry: dict[str, Any] = {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}
    if profile is not None:
        entry |= {"fhir_servers": [fhir_routes.base_url], "threshold_profile": profile}
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [entry]}))
    settings = {"smart_client_id": "trend-app", "public_base_url": "http://cds.test", "fhir_allow_insecure": True}
    app = make_app(auth="jwt", trusted_issuers_file=issuers, **settings)
    async with make_client(app) as client:
        token = {"access_token": "access-1", "token_type": "Bearer", "patient": "p1"}
        shown = await client.get((await _signed_in(client, fhir_routes, token)).headers["location"])
    assert shown.status_code == 200 and f'data-status="{status}"' in shown.text


# --- what stops the start (each from an attack run) -----------------------------------------------


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CDS_SMART_CLIENT_ID": "a", "CDS_PUBLIC_BASE_URL": BASE}, "CDS_SMART_CLIENT_ID needs CDS_FHIR_ALLOWED_HOSTS"),
        ({"CDS_SMART_CLIENT_ID": "a", "CDS_FHIR_ALLOWED_HOSTS": "ehr.example.org"}, "needs CDS_PUBLIC_BASE_URL"),
        ({"CDS_SMART_FRAME_ORIGINS": "https://ehr.example.org; script-src *"}, "CDS_SMART_FRAME_ORIGINS"),
        ({"CDS_SMART_FRAME_ORIGINS": "*"}, "CDS_SMART_FRAME_ORIGINS"),
        ({"CDS_SMART_FRAME_ORIGINS": "https://ehr.example.org/path"}, "CDS_SMART_FRAME_ORIGINS"),
    ],
)
def test_a_smart_set_up_that_would_be_unsafe_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], said: str
) -> None:
    for name, value in {"CDS_AUTH": "off", **env}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2 and said in result.output
    assert "script-src" not in result.output  # the value given is never echoed


def test_the_app_with_workers_needs_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CDS_AUTH": "off",
        "CDS_SMART_CLIENT_ID": "a",
        "CDS_PUBLIC_BASE_URL": BASE,
        "CDS_FHIR_ALLOWED_HOSTS": "e.org",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", "--port", "1", "--workers", "2"])
    assert result.exit_code == 2 and "more than one worker needs CDS_REDIS_URL" in result.output


UNUSABLE = "one private RSA or EC JWK with kid and alg"


def _rsa(bits: int, private: bool = True, **parameters: str) -> Callable[[], object]:
    return lambda: RSAKey.generate_key(bits, parameters=parameters, private=True).as_dict(private=private)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (_rsa(1024, kid="k", alg="RS256"), "under 2048 bits"),
        (_rsa(2048, kid="k"), UNUSABLE),  # no alg
        (_rsa(2048, False, kid="k", alg="RS256"), UNUSABLE),  # no private part
        (lambda: {"kty": "oct", "k": "c2VjcmV0", "kid": "k", "alg": "HS256"}, UNUSABLE),
        (lambda: "not json", UNUSABLE),
    ],
)
@pytest.mark.filterwarnings("ignore:Key size should be")  # joserfc's, for the 1024-bit key made here
def test_a_client_key_that_cannot_be_used_stops_the_start(tmp_path: Path, key: Callable[[], object], said: str) -> None:
    path = tmp_path / "key.json"
    made = key()
    path.write_text(made if isinstance(made, str) else json.dumps(made))
    with pytest.raises(ValueError, match="CDS_SMART_PRIVATE_KEY_FILE") as refused:
        create_app(Settings(auth="off", smart_private_key_file=path, **SMART))
    assert said in str(refused.value)


async def test_an_iss_no_host_name_decodes_from_is_a_page(make_app: AppFactory) -> None:
    async with make_client(make_app(fhir_allowed_hosts=["ehr.example.org"], **SMART)) as client:
        answer = await client.get("/smart/launch", params={"iss": "https://xn--a/fhir", "launch": "l"})
    assert answer.status_code == 502 and "is not a URL" in answer.text


async def test_with_redis_away_a_launch_is_a_page_not_an_error(make_app: AppFactory, fhir_routes: FhirRoutes) -> None:
    _configuration(fhir_routes)
    away = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "fhir_allow_insecure": True, **SMART}
    async with make_client(make_app(**away)) as client:
        launch = await _launch(client, fhir_routes)
        client.cookies.set("cds_smart", "s")
        page = await client.get("/smart/app/h")
    assert launch.status_code == 503 and "cannot keep a sign-in now" in launch.text
    assert page.status_code == 503 and "cannot read sign-ins now" in page.text
