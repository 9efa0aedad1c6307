"""A real FHIR server for end-to-end tests: sekmet-fhir on a free loopback port, with a fresh
database, the simulator off, bearer tokens required, and the test patients loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.demo import as_transaction
from tests.builders import RXNORM, condition, medication, obs
from tests.servers import free_port, wait_until_serving

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOKEN = "e2e-bearer-token"
SMART_PATIENTS = ("8888801", "8888803", "8888804")


@dataclass(frozen=True)
class FhirServer:
    base: str
    token: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_fhir_server(workdir: Path, *, bearer: bool = True) -> FhirServer:
    """Start sekmet and wait for its CapabilityStatement; never skip: a failure here fails the suite.
    Without `bearer` it answers anyone (as a browser-side EHR without a SMART launch needs)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    auth = f"server_auth:\n  types: [bearer]\n  tokens: [{TOKEN}]\n" if bearer else ""
    (workdir / "settings.yaml").write_text("host: 127.0.0.1\nlog_inbound: false\nsimulator:\n  enabled: false\n" + auth)
    env = os.environ | {
        "SEKMET_CONFIG": str(workdir / "settings.yaml"),
        "SEKMET_BASE_URL": base,
        "SEKMET_PORT": str(port),
        "SEKMET_DB": str(workdir / "fhir.sqlite"),
    }
    sekmet = Path(sys.executable).with_name("sekmet")
    log = (workdir / "sekmet.log").open("wb")
    process = subprocess.Popen([str(sekmet), "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(f"{base}/metadata", process)
    except AssertionError:
        process.terminate()
        pytest.fail(f"sekmet did not start: {(workdir / 'sekmet.log').read_text()[-2000:]}")
    return FhirServer(base, TOKEN, process)


def load(server: FhirServer, transaction: dict[str, Any]) -> None:
    response = httpx.post(
        server.base,
        json=transaction,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/fhir+json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:2000]


def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    return as_transaction(resources)


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Test", "given": [pid]}], "gender": "unknown"}


def written_patients() -> dict[str, list[dict[str, Any]]]:
    """Patients written for these tests (evaluated as of 2026-11-25)."""
    return {
        # 25(OH)D total in nmol/L (40 nmol/L = 16.03 ng/mL: deficient), low magnesium, no calcium
        "e2e-nmol": [
            obs("62292-8", 40, "nmol/L", "2026-11-10", patient="e2e-nmol", id="e2e-nmol-vitd"),
            obs("62292-8", 70, "nmol/L", "2026-05-10", patient="e2e-nmol", id="e2e-nmol-vitd-old"),
            obs("2823-3", 4.1, "mmol/L", "2026-11-10", patient="e2e-nmol", id="e2e-nmol-k"),
            obs("19123-9", 1.3, "mg/dL", "2026-11-10", patient="e2e-nmol", id="e2e-nmol-mg"),
        ],
        # A low total calcium, but a normal ionized calcium of the same day decides; low potassium
        "e2e-ionized": [
            obs("62292-8", 45, "ng/mL", "2026-10-01", patient="e2e-ionized", id="e2e-ion-vitd"),
            obs("17861-6", 7.9, "mg/dL", "2026-11-20T08:00:00Z", patient="e2e-ionized", id="e2e-ion-ca"),
            obs("1995-0", 1.21, "mmol/L", "2026-11-20T07:00:00Z", patient="e2e-ionized", id="e2e-ion-ica"),
            obs("2823-3", 3.1, "mmol/L", "2026-11-20", patient="e2e-ionized", id="e2e-ion-k"),
            obs("2601-3", 0.8, "mmol/L", "2026-11-20", patient="e2e-ionized", id="e2e-ion-mg"),
        ],
        # Calcium 10.0 with albumin 3.0 the same day: corrected by Payne to 10.8, high
        "e2e-payne": [
            obs("62292-8", 45, "ng/mL", "2026-10-01", patient="e2e-payne", id="e2e-payne-vitd"),
            obs("2823-3", 4.2, "mmol/L", "2026-11-20", patient="e2e-payne", id="e2e-payne-k"),
            obs("19123-9", 2.0, "mg/dL", "2026-11-20", patient="e2e-payne", id="e2e-payne-mg"),
            obs("17861-6", 10.0, "mg/dL", "2026-11-20", patient="e2e-payne", id="e2e-payne-ca"),
            obs("1751-7", 3.0, "g/dL", "2026-11-20", patient="e2e-payne", id="e2e-payne-alb"),
        ],
        # Epic-style: medicines named only by medicationReference, the Medications on the server;
        # 25(OH)D very high, leg cramps, a loop diuretic
        "e2e-epic": [
            obs("62292-8", 180, "ng/mL", "2026-11-20", patient="e2e-epic", id="e2e-epic-vitd"),
            *(
                obs(code, value, unit, "2026-11-20", patient="e2e-epic", id=f"e2e-epic-{code}")
                for code, value, unit in (
                    ("2823-3", 4.2, "mmol/L"),
                    ("19123-9", 2.0, "mg/dL"),
                    ("17861-6", 9.4, "mg/dL"),
                )
            ),
            condition("R25.2", patient="e2e-epic", id="e2e-epic-cramps"),
            {
                "resourceType": "Medication",
                "id": "e2e-epic-furosemide",
                "code": {"coding": [{"system": RXNORM, "code": "310429", "display": "furosemide 20 MG Oral Tablet"}]},
            },
            {"resourceType": "Medication", "id": "e2e-epic-d3", "code": {"text": "Vitamin D3 50,000 unit capsule"}},
            medication_by_reference("e2e-epic-furosemide", patient="e2e-epic", id="e2e-epic-mr1"),
        ],
        # Leg cramps and a diuretic; vitamin D sufficient; only potassium recent
        "e2e-cramps": [
            obs("62292-8", 42, "ng/mL", "2026-11-01", patient="e2e-cramps", id="e2e-cramps-vitd"),
            obs("2823-3", 4.0, "mmol/L", "2026-11-01", patient="e2e-cramps", id="e2e-cramps-k"),
            condition("R25.2", patient="e2e-cramps", id="e2e-cramps-r252"),
            condition("N18.3", patient="e2e-cramps", id="e2e-cramps-ckd3"),
            condition("E86.0", clinical="resolved", patient="e2e-cramps", id="e2e-cramps-dehydration-old"),
            medication("Furosemide 40 MG Oral Tablet", "310429", patient="e2e-cramps", id="e2e-cramps-furosemide"),
            medication("atorvastatin 20 MG", status="stopped", patient="e2e-cramps", id="e2e-cramps-statin-stopped"),
        ],
        # 150 potassium results: the electrolytes query needs two pages; the newest (low) decides
        "e2e-many": [
            obs("62292-8", 22, "ng/mL", "2026-11-01", patient="e2e-many", id="e2e-many-vitd"),
            *(
                obs(
                    "2823-3",
                    4.0,
                    "mmol/L",
                    f"20{14 + i // 12:02d}-{i % 12 + 1:02d}-15",
                    patient="e2e-many",
                    id=f"e2e-many-k{i}",
                )
                for i in range(150)
            ),
            obs("2823-3", 3.2, "mmol/L", "2026-11-20", patient="e2e-many", id="e2e-many-k-latest"),
        ],
    }


def medication_by_reference(medication_id: str, **fields: Any) -> dict[str, Any]:
    """A MedicationRequest as Epic sends it: the drug only through medicationReference, no display."""
    request = medication("x", **fields)
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": f"Medication/{medication_id}"}
    return request


def load_test_patients(server: FhirServer) -> None:
    for patient in SMART_PATIENTS:
        load(server, json.loads((FIXTURES / "smart-sample" / f"r4-smart-{patient}.json").read_text()))
    for pid, observations in written_patients().items():
        load(server, transaction(_patient(pid), *observations))


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = start_fhir_server(tmp_path_factory.mktemp("sekmet"))
    try:
        load_test_patients(server)
        yield server
    finally:
        server.stop()


# The SMART launcher and its open FHIR server, one of each for every module that launches an app.
from tests.e2e.smart_launcher import launcher_fixture, smart_fhir_fixture  # noqa: E402, F401
