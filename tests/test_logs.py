"""What reaches the log: one line per hook call, and never a token, a JWT, a patient value or
resource content, whatever the service or a library logs."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from cds_service import logs
from cds_service.logs import access_path
from tests.builders import bundle, hook_request, obs
from tests.conftest import AppFactory, make_client
from tests.fhir_routes import FhirRoutes
from tests.servers import service

pytestmark = pytest.mark.anyio
SERVICE = "http://cds.test/cds-services/vitamin-d-cramps"
ISS = "https://ehr.example.org"
ACCESS_TOKEN = "fhir-access-token-5f2b9c"
PATIENT = "patient-73914"


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("json", stream)
    return stream


def test_redact() -> None:
    jwt_text = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln"
    assert logs.redact(f"got {jwt_text} ok") == "got [jwt] ok"
    assert logs.redact("Authorization: Bearer abc.def-123") == "Authorization: Bearer [token]"
    assert logs.redact('{"access_token": "s3cr3t", "x": 1}') == '{"access_token": "[token]", "x": 1}'
    assert (
        logs.redact("GET https://ehr.example.org/fhir/Observation?patient=123 200")
        == "GET https://ehr.example.org/… 200"
    )
    assert logs.redact('body {"resourceType": "Patient", "id": "p"}') == logs.WITHHELD
    assert logs.redact("hook call") == "hook call"


async def test_no_token_or_patient_value_reaches_the_log(
    make_app: AppFactory, tmp_path: Path, captured: io.StringIO, fhir_routes: FhirRoutes
) -> None:
    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": {"keys": [key.as_dict(private=False)]}}]}))
    app = make_app(
        auth="jwt", public_base_url="http://cds.test", trusted_issuers_file=issuers, fhir_allow_insecure=True
    )
    vitamin_d = obs("62292-8", 13.7, "ng/mL", "2026-11-10", patient=PATIENT, id="vitd-secret-id")
    electrolytes = obs("2823-3", 3.14, "mmol/L", "2026-11-10", patient=PATIENT)

    def token() -> str:
        now = int(time.time())
        claims = {"iss": ISS, "aud": SERVICE, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "ES384", "kid": "k1", "typ": "JWT"}, claims, key, algorithms=["ES384"])

    request = hook_request(patient=PATIENT, prefetch={})
    request["fhirServer"] = FHIR = fhir_routes.base_url
    request["fhirAuthorization"] = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    jwts = [token(), token(), "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."]
    async with make_client(app) as client:
        fhir_routes.get(regex=r"^/fhir/Observation\?.*62292-8").respond(json=bundle(vitamin_d))
        fhir_routes.get(regex=r"^/fhir/Observation\?.*2823-3").respond(json=bundle(electrolytes))
        fhir_routes.get(f"/Patient/{PATIENT}").respond(500)
        fhir_routes.get("/Condition").respond(json=bundle())
        fhir_routes.get("/MedicationRequest").respond(json=bundle())
        fhir_routes.get("/ServiceRequest").respond(json=bundle())
        for t in jwts:
            await client.post(SERVICE, json=request, headers={"Authorization": f"Bearer {t}"})
        # and what a careless library might log
        noisy = logging.getLogger("some.library")
        noisy.warning("request to %s with Authorization: Bearer %s", f"{FHIR}/Patient/{PATIENT}", ACCESS_TOKEN)
        noisy.warning("payload %s", json.dumps(vitamin_d))
        noisy.warning("token %s", jwts[0])
        noisy.warning("form access_token=%s", ACCESS_TOKEN)
    written = captured.getvalue()
    lines = [json.loads(line) for line in written.splitlines()]
    hook_lines = [line for line in lines if line["message"] == "hook call"]
    assert len(hook_lines) == 2 and all(line["status"] == 200 and line["cards"] for line in hook_lines)
    assert "unavailable" in hook_lines[0]  # the Patient query failed, and the line says so
    assert [line["reason"] for line in lines if line["message"] == "unauthorized"] == ["not a compact JWS"]
    assert len(lines) >= 7
    for secret in [ACCESS_TOKEN, *jwts[:2], PATIENT, "13.7", "3.14", "vitd-secret-id", "resourceType"]:
        assert secret not in written, secret


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_the_access_log_writes_no_query_and_no_patient_id(tmp_path: Path, command: str) -> None:
    """uvicorn's access log goes through the same redaction: paths without their query, and no
    segment after `patients` (it used to write `?patient=MRN-...` and `/demo/patients/<id>` as sent)."""
    log = tmp_path / "out.log"
    settings = {"CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", "CDS_AUTH": "off"}
    with log.open("wb") as out, service(command, settings, output=out) as (base, _):
        assert httpx.get(f"{base}/cds-services?patient=MRN-5551234").status_code == 200
        httpx.get(f"{base}/demo/patients/demo-normal")
        httpx.get(f"{base}/cds-services/vitamin-d-cramps?x=MRN-5551234&y=2")
    written = log.read_text()
    assert "/cds-services" in written  # the access log is on
    for secret in ("MRN-5551234", "demo-normal", "?"):
        assert secret not in written.replace("GET /cds-services HTTP", ""), secret


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/cds-services?patient=MRN-1", "/cds-services"),
        ("/demo/patients/p-123", "/demo/patients/…"),
        ("/demo/patients/p-123/history?x=1", "/demo/patients/…"),
        ("/demo/patients", "/demo/patients"),
        ("/cds-services/vitamin-d-cramps/feedback", "/cds-services/vitamin-d-cramps/feedback"),
    ],
)
def test_access_paths(path: str, logged: str) -> None:
    assert access_path(path) == logged
