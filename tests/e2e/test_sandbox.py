"""The CDS Hooks Sandbox, the reference EHR client, driven in Chromium against the service running
as a process with `CDS_AUTH=jwt` (the Sandbox's published key pinned inline, so nothing is fetched)
and a real FHIR server (sekmet, open as the Sandbox needs without a SMART launch). On each of its
screens: discovery and the hook call go through CORS with the JWT verified, the prefetch the
Sandbox resolved itself reaches the service, and every card the service returns is rendered. A
patient whose FHIR text is hostile everywhere makes nothing run."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.builders import condition, medication, normal_electrolytes, obs
from tests.e2e.conftest import FhirServer, load, start_fhir_server, transaction
from tests.servers import service

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT.parent / "shared" / "tools" / "cds-hooks-sandbox"
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
RUN = "window.__pwned=1"
HOSTILE = f'<img src=x onerror="{RUN}"> [x](javascript:{RUN}) <script>{RUN}</script>'
HOSTILE_PATIENT, HIGH_PATIENT = "sandbox-hostile", "sandbox-high"
RECENT = (date.today() - timedelta(days=5)).isoformat()  # the service runs on today's clock
SCREENS = {"patient-view": "patient-view", "rx-view": "order-select", "rx-sign": "order-sign"}


def _patients() -> list[dict[str, Any]]:
    def person(pid: str, given: str) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": "Test", "given": [given]}],
            "birthDate": "1960-01-01",
        }

    vitamin_d = obs("62292-8", 12, "ng/mL", RECENT, patient=HOSTILE_PATIENT, id="sbx-vitd")
    vitamin_d["code"]["text"] = vitamin_d["code"]["coding"][0]["display"] = HOSTILE
    potassium = obs("2823-3", 4.1, None, RECENT, patient=HOSTILE_PATIENT, id="sbx-k")
    potassium["valueQuantity"]["unit"] = HOSTILE
    cramps = condition("R25.2", patient=HOSTILE_PATIENT, id="sbx-cramps")
    cramps["code"]["text"] = HOSTILE
    hostile = [
        person(HOSTILE_PATIENT, "Hostile"),
        vitamin_d,
        potassium,
        cramps,
        medication(f"furosemide 20 MG {HOSTILE}", patient=HOSTILE_PATIENT, id="sbx-med"),
    ]
    high = [
        person(HIGH_PATIENT, "High"),
        obs("62292-8", 160, "ng/mL", RECENT, patient=HIGH_PATIENT, id="sbx-high-vitd"),
        *(
            obs(
                o["code"]["coding"][0]["code"],
                o["valueQuantity"]["value"],
                o["valueQuantity"]["code"],
                RECENT,
                patient=HIGH_PATIENT,
                id=f"sbx-high-{i}",
            )
            for i, o in enumerate(normal_electrolytes())
        ),
    ]
    return hostile + high


@pytest.fixture(scope="module")
def open_fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = start_fhir_server(tmp_path_factory.mktemp("sekmet-open"), bearer=False)
    try:
        load(server, transaction(*_patients()))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    if not (SANDBOX / "index.html").exists():
        pytest.skip(f"the CDS Hooks Sandbox is not at {SANDBOX} (CI has shared/ beside the clone)")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(SANDBOX))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cds(sandbox: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service as a hospital would run it for the Sandbox: JWT on, the Sandbox's key pinned."""
    tmp = tmp_path_factory.mktemp("cds")
    jwks = json.loads((SANDBOX / ".well-known" / "jwks.json").read_text())
    issuers = tmp / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [{"iss": SANDBOX_ISSUER, "jwks": jwks, "jku": [SANDBOX_JKU]}]}))
    settings = {
        "CDS_AUTH": "jwt",
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers),
        "CDS_CORS_ORIGINS": sandbox,
        "CDS_FHIR_ALLOW_INSECURE": "true",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'feedback.sqlite'}",
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:{port}",  # the `aud` the Sandbox's tokens name
    }
    with service("serve", settings, "--no-access-log") as (base, _):
        yield base


def _open(page: Page, sandbox: str, fhir: FhirServer, cds: str, patient: str, screen: str) -> None:
    query = {
        "fhirServiceUrl": fhir.base,
        "patientId": patient,
        "serviceDiscoveryURL": f"{cds}/cds-services",
        "hook": SCREENS[screen],
        "screen": screen,
    }
    page.goto(f"{sandbox}/?{urlencode(query)}")


def _hook_calls(page: Page, cds: str) -> list[Response]:
    calls: list[Response] = []
    page.on("response", lambda r: calls.append(r) if r.url.startswith(f"{cds}/cds-services") else None)
    return calls


def _assert_rendered(page: Page, cards: list[dict[str, Any]]) -> None:
    """Every card the service returned, as the Sandbox shows it: summary, detail, source, suggestions."""
    for card in cards:
        expect(page.get_by_text(card["summary"], exact=True).first).to_be_visible(timeout=15000)
        first_line = card["detail"].split("\n")[0].replace("**", "").replace("\\", "")
        expect(page.get_by_text(first_line[:40], exact=False).first).to_be_visible()
        expect(page.get_by_text(card["source"]["label"], exact=True).first).to_be_visible()
        for suggestion in card.get("suggestions", []):
            expect(page.get_by_role("button", name=suggestion["label"]).first).to_be_visible()


def _checked(calls: list[Response], hook_path: str) -> dict[str, Any]:
    """Discovery and the hook call went through CORS with the Sandbox's JWT, and were accepted."""
    discovery = [c for c in calls if c.url.endswith("/cds-services") and c.request.method == "GET"]
    assert discovery and all(c.status == 200 for c in discovery)
    assert discovery[0].request.headers["authorization"].startswith("Bearer ")
    hooks = [c for c in calls if c.url.endswith(hook_path) and c.request.method == "POST"]
    assert hooks and all(c.status == 200 for c in hooks), [(c.status, c.text()[:200]) for c in hooks]
    last = hooks[-1]
    assert last.request.headers["authorization"].startswith("Bearer ")
    assert last.headers["access-control-allow-origin"]
    request = json.loads(last.request.post_data or "{}")
    return {"request": request, "cards": last.json()["cards"]}


def test_patient_view_in_the_sandbox(browser: Browser, sandbox: str, open_fhir: FhirServer, cds: str) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    calls = _hook_calls(page, cds)
    _open(page, sandbox, open_fhir, cds, HIGH_PATIENT, "patient-view")
    expect(page.get_by_text("very high", exact=False).first).to_be_visible(timeout=30000)
    got = _checked(calls, "/cds-services/vitamin-d-cramps")
    prefetch = got["request"]["prefetch"]
    assert {"patient", "vitaminD", "electrolytes"} <= set(prefetch)  # resolved by the Sandbox itself
    assert prefetch["vitaminD"]["entry"][0]["resource"]["id"] == "sbx-high-vitd"
    assert [c["source"]["topic"]["code"] for c in got["cards"]] == ["vitd-high"]
    _assert_rendered(page, got["cards"])
    shot = ROOT / "docs" / "sandbox.png" if os.environ.get("UPDATE_SCREENSHOT") else None
    page.screenshot(path=str(shot) if shot else None)
    context.close()


@pytest.mark.parametrize("screen", ["rx-view", "rx-sign"])
def test_a_vitamin_d_drug_drafted_while_25ohd_is_high(
    browser: Browser, sandbox: str, open_fhir: FhirServer, cds: str, screen: str
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    calls = _hook_calls(page, cds)
    _open(page, sandbox, open_fhir, cds, HIGH_PATIENT, screen)
    page.fill("input[name=medication-input]", "Cholecalciferol 2000")
    page.get_by_text("Cholecalciferol 2000 UNT Oral Tablet", exact=True).click()
    if screen == "rx-sign":
        page.get_by_role("button", name="Sign Order").click()
    expect(page.get_by_text("is very high", exact=False).first).to_be_visible(timeout=30000)
    got = _checked(calls, f"/cds-services/vitamin-d-{SCREENS[screen]}")
    drafts = got["request"]["context"]["draftOrders"]["entry"]
    assert any("Cholecalciferol" in json.dumps(e["resource"]) for e in drafts)
    assert "vitaminD" in got["request"]["prefetch"]
    kinds = [c["source"]["topic"]["code"] for c in got["cards"]]
    assert kinds == ["vitd-supplement-caution"] and got["cards"][0]["indicator"] == "critical"
    _assert_rendered(page, got["cards"])
    context.close()


def test_hostile_fhir_text_never_runs_in_the_sandbox(
    browser: Browser, sandbox: str, open_fhir: FhirServer, cds: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    calls = _hook_calls(page, cds)
    _open(page, sandbox, open_fhir, cds, HOSTILE_PATIENT, "patient-view")
    expect(page.get_by_text("vitamin D deficient", exact=False).first).to_be_visible(timeout=30000)
    got = _checked(calls, "/cds-services/vitamin-d-cramps")
    assert {c["source"]["topic"]["code"] for c in got["cards"]} == {"vitd-deficient", "electrolytes-check"}
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0  # (a card with raw HTML makes one here: checked by hand)
    context.close()
