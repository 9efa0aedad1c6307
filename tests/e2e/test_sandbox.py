"""The CDS Hooks Sandbox, the reference EHR client, driven in Chromium against the service running
as a process and a real FHIR server (sekmet, open like a sandbox EHR's), with a patient whose FHIR
text is hostile everywhere: the Sandbox renders the service's cards with its own Markdown renderer
(raw HTML allowed), and nothing may run."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, expect

from tests.builders import condition, medication, obs
from tests.e2e.conftest import FhirServer, load, start_fhir_server, transaction
from tests.servers import service

SANDBOX = Path(__file__).resolve().parents[3] / "shared" / "tools" / "cds-hooks-sandbox"
RUN = "window.__pwned=1"
HOSTILE = f'<img src=x onerror="{RUN}"> [x](javascript:{RUN}) <script>{RUN}</script>'
PATIENT = "sandbox-hostile"


def _hostile_patient() -> list[dict[str, object]]:
    vitamin_d = obs("62292-8", 12, "ng/mL", "2026-11-20", patient=PATIENT, id="sbx-vitd")
    vitamin_d["code"]["text"] = HOSTILE
    vitamin_d["code"]["coding"][0]["display"] = HOSTILE
    potassium = obs("2823-3", 4.1, None, "2026-11-20", patient=PATIENT, id="sbx-k")
    potassium["valueQuantity"]["unit"] = HOSTILE
    cramps = condition("R25.2", patient=PATIENT, id="sbx-cramps")
    cramps["code"]["text"] = HOSTILE
    drug = medication(f"furosemide 20 MG {HOSTILE}", patient=PATIENT, id="sbx-med")
    person = {"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Test", "given": ["Hostile"]}]}
    return [person, vitamin_d, potassium, cramps, drug]


@pytest.fixture(scope="module")
def open_fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = start_fhir_server(tmp_path_factory.mktemp("sekmet-open"), bearer=False)
    try:
        load(server, transaction(*_hostile_patient()))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    if not (SANDBOX / "index.html").exists():
        pytest.skip(f"the CDS Hooks Sandbox is not at {SANDBOX} (CI has shared/ beside the clone)")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(SANDBOX))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_fhir_text_never_runs_in_the_sandbox(
    browser: Browser, sandbox: str, open_fhir: FhirServer, tmp_path: Path
) -> None:
    settings = {
        "CDS_AUTH": "off",  # the Sandbox's own keys are issue 16's business; here, what it renders
        "CDS_CORS_ORIGINS": sandbox,
        "CDS_FHIR_ALLOW_INSECURE": "true",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}",
    }
    with service("serve", settings, "--no-access-log") as (base, _):
        context = browser.new_context()
        page = context.new_page()
        query = {
            "fhirServiceUrl": open_fhir.base,
            "patientId": PATIENT,
            "serviceDiscoveryURL": f"{base}/cds-services",
            "hook": "patient-view",
            "screen": "patient-view",
        }
        with page.expect_response(
            lambda r: r.url == f"{base}/cds-services/vitamin-d-cramps" and r.request.method == "POST", timeout=60000
        ) as answer:
            page.goto(f"{sandbox}/?{urlencode(query)}")
        assert answer.value.status == 200
        cards = answer.value.json()["cards"]
        assert {c["source"]["topic"]["code"] for c in cards} == {"vitd-deficient", "electrolytes-check"}
        expect(page.get_by_text("vitamin D deficient", exact=False).first).to_be_visible(timeout=15000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x]").count() == 0  # (a card with raw HTML makes one here: checked by hand)
        context.close()
