"""The SMART app end to end: launched by the SMART reference launcher (a real authorization server
and FHIR proxy, in front of a real FHIR server) in Chromium, as a public client with PKCE and as a
confidential asymmetric one; the page's points, bands, unreadable marks and courses checked
against the records loaded; and the refusals (a wrong state, an iss outside the allowlist, a token
refused)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from playwright.sync_api import Browser

from tests.builders import medication, obs, ref_range
from tests.e2e.conftest import FhirServer, load, transaction
from tests.e2e.smart_launcher import (
    CONFIDENTIAL_ASYMMETRIC,
    PROVIDER,
    Launcher,
    launch_code,
    launch_url,
)
from tests.servers import service

TODAY = datetime.now(UTC).date()
PATIENT = "trend-1"
HEAVY = "trend-300"


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def _trend_patient() -> list[dict[str, Any]]:
    """25(OH)D over three years (one in nmol/L, one that cannot be read), a calcium corrected by a
    same-day albumin, a high potassium, a vitamin D product taken now and a calcium one stopped."""
    p = PATIENT
    calcium_carbonate = medication("calcium carbonate 500 MG Oral Tablet", status="completed", patient=p, id="mr-ca")
    calcium_carbonate["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsPeriod": {"start": _day(730), "end": _day(365)}}}}
    ]
    return [
        {"resourceType": "Patient", "id": p, "name": [{"given": ["Tren"], "family": "Dwell"}]},
        obs("62292-8", 12, "ng/mL", _day(1095), patient=p, id="vd-1"),
        obs("62292-8", 50, "nmol/L", _day(730), patient=p, id="vd-2"),
        obs("62292-8", 35, "ng/mL", _day(365), patient=p, id="vd-3"),
        obs("62292-8", None, None, _day(100), patient=p, id="vd-4", valueString="see laboratory comment"),
        obs("62292-8", 14, "ng/mL", _day(30), patient=p, id="vd-5"),
        obs("17861-6", 8.0, "mg/dL", _day(10), patient=p, id="ca-1", referenceRange=ref_range(8.6, 10.3, "mg/dL")),
        obs("1751-7", 3.0, "g/dL", _day(10), patient=p, id="alb-1"),
        obs("2823-3", 5.8, "mmol/L", _day(10), patient=p, id="k-1"),
        medication("cholecalciferol 50000 UNT Oral Capsule", "316965", patient=p, id="mr-d", authored=_day(90)),
        calcium_carbonate,
    ]


def _heavy_patient() -> list[dict[str, Any]]:
    """300 results over five years: the page must still come within a second."""
    p = HEAVY
    patient = {"resourceType": "Patient", "id": p, "name": [{"text": "Hea Vy"}]}
    results = [
        obs(("62292-8", "2823-3", "17861-6", "19123-9")[i % 4], 20 + i % 7, None, _day(i * 6), patient=p, id=f"h-{i}")
        for i in range(300)
    ]
    for r in results:  # each in its analyte's own unit
        code = r["code"]["coding"][0]["code"]
        unit, value = {"62292-8": ("ng/mL", 25), "2823-3": ("mmol/L", 4.1), "17861-6": ("mg/dL", 9.4)}.get(
            code, ("mg/dL", 2.0)
        )
        r["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    return [patient, *results]


@pytest.fixture(scope="module")
def loaded(smart_fhir: FhirServer) -> FhirServer:
    load(smart_fhir, transaction(*_trend_patient(), *_heavy_patient()))
    return smart_fhir


@pytest.fixture(scope="module")
def client_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "smart-test-1", "alg": "RS384"}, private=True)


def _settings(tmp: Path, client_id: str, **more: str) -> dict[str, str]:
    return {
        "CDS_AUTH": "off",
        "CDS_SMART_CLIENT_ID": client_id,
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:{port}",
        "CDS_FHIR_ALLOW_INSECURE": "true",
        "CDS_FHIR_ALLOWED_HOSTS": "127.0.0.1",  # the launcher's: the app needs an allowlist
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{client_id}.sqlite",
        **more,
    }


@pytest.fixture(scope="module")
def public_app(tmp_path_factory: pytest.TempPathFactory, loaded: FhirServer) -> Iterator[str]:
    with service("serve", _settings(tmp_path_factory.mktemp("smart-public"), "trend-public")) as (base, _):
        yield base


@pytest.fixture(scope="module")
def confidential_app(tmp_path_factory: pytest.TempPathFactory, loaded: FhirServer, client_key: RSAKey) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("smart-confidential")
    key_file = tmp / "key.json"
    key_file.write_text(json.dumps(client_key.as_dict(private=True)))
    settings = _settings(tmp, "trend-confidential", CDS_SMART_PRIVATE_KEY_FILE=str(key_file))
    with service("serve", settings) as (base, _):
        yield base


def _points(page: Any, selector: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        selector, "els => els.map(e => Object.assign({}, e.dataset, {cls: e.getAttribute('class')}))"
    )


def _open(browser: Browser, app: str, launcher: Launcher, code: str) -> Any:
    page = browser.new_page()
    page.goto(launch_url(f"{app}/smart/launch", launcher, code))
    return page


def test_a_public_client_launch_shows_the_trend_of_the_records(
    browser: Browser, public_app: str, launcher: Launcher
) -> None:
    page = _open(browser, public_app, launcher, launch_code(PATIENT, provider=PROVIDER, client_id="trend-public"))
    try:
        assert page.url.startswith(f"{public_app}/smart/app/")
        assert "Tren Dwell" in page.inner_text("header")
        vitamin_d = {p["date"]: p for p in _points(page, "svg[data-analyte=vitamin_d] .point")}
        assert {d: (p["value"], p["status"]) for d, p in vitamin_d.items()} == {
            _day(1095): ("12", "deficient"),
            _day(730): ("20.0321", "insufficient"),  # 50 nmol/L in ng/mL, as the cards convert it
            _day(365): ("35", "sufficient"),
            _day(100): ("", "unreadable"),
            _day(30): ("14", "deficient"),
        }
        bands = {b["band"]: (b["low"], b["high"]) for b in _points(page, "rect[data-band]")}
        assert bands["deficient"] == ("", "20") and bands["very high"][0] == "150"
        courses = {c["name"]: c for c in _points(page, ".course")}
        assert courses["cholecalciferol"]["start"] == _day(90) and courses["cholecalciferol"]["active"] == "true"
        assert (courses["calcium carbonate"]["start"], courses["calcium carbonate"]["end"]) == (_day(730), _day(365))
        corrected = _points(page, ".corrected")
        assert [c["value"] for c in corrected] == ["8.8"]
        table = page.inner_text("table.results")
        assert "could not be interpreted: text, not a value" in table
        assert "50 nmol/L (20.03 ng/mL)" in table  # as the cards show it: never rounded across a cut-point
        cookie = next(c for c in page.context.cookies() if c["name"] == "cds_smart")
        assert cookie["httpOnly"] and "access_token" not in page.content()
    finally:
        page.close()


def test_a_confidential_client_authenticates_with_its_key(
    browser: Browser, confidential_app: str, launcher: Launcher, client_key: RSAKey
) -> None:
    published = httpx.get(f"{confidential_app}/smart/jwks.json").json()
    assert published["keys"][0]["kid"] == "smart-test-1" and "d" not in published["keys"][0]
    code = launch_code(
        PATIENT,
        provider=PROVIDER,
        client_type=CONFIDENTIAL_ASYMMETRIC,
        jwks=json.dumps(published),
        client_id="trend-confidential",
    )
    page = _open(browser, confidential_app, launcher, code)
    try:
        assert page.url.startswith(f"{confidential_app}/smart/app/")
        assert len(_points(page, "svg[data-analyte=vitamin_d] .point")) == 5
    finally:
        page.close()


def test_a_key_the_ehr_does_not_hold_is_refused(browser: Browser, confidential_app: str, launcher: Launcher) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "smart-test-1", "alg": "RS384"}, private=True)
    jwks = json.dumps({"keys": [other.as_dict(private=False)]})
    code = launch_code(PATIENT, provider=PROVIDER, client_type=CONFIDENTIAL_ASYMMETRIC, jwks=jwks)
    page = _open(browser, confidential_app, launcher, code)
    try:
        assert page.url.startswith(f"{confidential_app}/smart/callback")
        assert "the EHR refused the sign-in" in page.inner_text("main")
        assert not any(c["name"] == "cds_smart" for c in page.context.cookies())
    finally:
        page.close()


def test_a_denied_token_is_a_page_that_says_so(browser: Browser, public_app: str, launcher: Launcher) -> None:
    page = _open(
        browser, public_app, launcher, launch_code(PATIENT, provider=PROVIDER, auth_error="token_invalid_token")
    )
    try:
        assert "the EHR refused the sign-in" in page.inner_text("main")
        assert "Traceback" not in page.content()
    finally:
        page.close()


def test_a_wrong_state_is_refused(public_app: str) -> None:
    made_up = {"code": "a-code", "state": "not-a-state-we-made"}
    answer = httpx.get(f"{public_app}/smart/callback", params=made_up)
    assert answer.status_code == 400 and "not started in this browser" in answer.text
    answer = httpx.get(f"{public_app}/smart/callback", params=made_up, cookies={"cds_smart_state": made_up["state"]})
    assert answer.status_code == 400 and "unknown or has expired" in answer.text
    assert "cds_smart" not in answer.cookies


def test_a_callback_started_in_another_browser_signs_no_one_in(public_app: str, launcher: Launcher) -> None:
    """Login CSRF: someone's own code and state, sent to a clinician as a link, open no session."""
    theirs = httpx.Client()
    launch = theirs.get(
        f"{public_app}/smart/launch", params={"iss": launcher.iss, "launch": launch_code(PATIENT, provider=PROVIDER)}
    )
    callback = theirs.get(launch.headers["location"]).headers["location"]
    assert callback.startswith(f"{public_app}/smart/callback?")
    victim = httpx.get(callback)
    assert victim.status_code == 400 and "not started in this browser" in victim.text
    assert "cds_smart" not in victim.cookies
    own = theirs.get(callback)
    assert own.status_code == 303 and own.headers["location"].startswith("/smart/app/")


def test_an_iss_outside_the_allowlist_is_refused(tmp_path: Path, launcher: Launcher) -> None:
    settings = _settings(tmp_path, "trend-allowlist", CDS_FHIR_ALLOWED_HOSTS="fhir.example.org")
    with service("serve", settings) as (base, _):
        answer = httpx.get(f"{base}/smart/launch", params={"iss": launcher.iss, "launch": launch_code(PATIENT)})
    assert answer.status_code == 502 and "host not on the allowlist" in answer.text


def test_two_patients_opened_in_one_browser_each_keep_their_own_page(
    browser: Browser, public_app: str, launcher: Launcher
) -> None:
    """From an attack run: with one session a browser, the second launch's patient replaced the
    first's, and reloading the first tab showed the other patient."""
    context = browser.new_context()
    try:
        first, second = context.new_page(), context.new_page()
        first.goto(launch_url(f"{public_app}/smart/launch", launcher, launch_code(PATIENT, provider=PROVIDER)))
        second.goto(launch_url(f"{public_app}/smart/launch", launcher, launch_code(HEAVY, provider=PROVIDER)))
        first.reload()
        second.reload()
        assert "Tren Dwell" in first.inner_text("header") and "Hea Vy" in second.inner_text("header")
        assert len(_points(first, "svg[data-analyte=vitamin_d] .point")) == 5
        assert first.url != second.url
    finally:
        context.close()


def test_the_session_is_needed_for_the_page(public_app: str) -> None:
    answer = httpx.get(f"{public_app}/smart/app/made-up", cookies={"cds_smart": "made-up"})
    assert answer.status_code == 401 and "open the app from the EHR again" in answer.text


def test_a_page_of_300_results_comes_within_a_second(browser: Browser, public_app: str, launcher: Launcher) -> None:
    page = _open(browser, public_app, launcher, launch_code(HEAVY, provider=PROVIDER))
    try:
        started = time.perf_counter()
        page.reload()
        elapsed = time.perf_counter() - started
        assert len(_points(page, ".point")) == 300
        assert elapsed < 1.0, f"the page took {elapsed:.2f} s"
    finally:
        page.close()
