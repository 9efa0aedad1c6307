"""What reaches the log: one line per hook call, and never a token, a JWT, a patient value or
resource content, whatever the service or a library logs."""

from __future__ import annotations

import asyncio
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
    # a refused token's expected and received URLs (logs.PATHS_KEPT) keep their path, not their query
    kept = logs.redact(f"https://cds.example.org/cds-services/x?patient=1#f {jwt_text}", keep_paths=True)
    assert kept == "https://cds.example.org/cds-services/x?… [jwt]"
    # from an attack run: a URL's user name and password, in any field, and a JWT cut short at the
    # 200 characters a refused claim is bounded to
    for keep_paths in (False, True):
        assert "s3cret" not in logs.redact("aud https://user:s3cret@evil.example/x?q=1", keep_paths=keep_paths)
    assert logs.redact(jwt_text[:30], keep_paths=True) == "[jwt].[jwt]"


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
    """uvicorn's access log goes through the same redaction, and carries the request id: paths
    without their query, and no segment after `patients` (it used to write `?patient=MRN-...` and
    `/demo/patients/<id>` as sent)."""
    log = tmp_path / "out.log"
    settings = {"CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", "CDS_AUTH": "off"}
    with log.open("wb") as out, service(command, settings, output=out) as (base, _):
        called = httpx.get(f"{base}/cds-services?patient=MRN-5551234", headers={"X-Request-ID": "probe-31"})
        assert called.status_code == 200 and called.headers["X-Request-ID"] == "probe-31"
        httpx.get(f"{base}/demo/patients/demo-normal")
        httpx.get(f"{base}/cds-services/vitamin-d-cramps?x=MRN-5551234&y=2")
    written = log.read_text()
    assert "/cds-services" in written  # the access log is on
    (access,) = [line for line in written.splitlines() if "GET /cds-services HTTP" in line]
    assert "probe-31" in access  # uvicorn's access line carries the request's id
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


def _lines(captured: io.StringIO, message: str) -> list[dict[str, object]]:
    return [line for line in map(json.loads, captured.getvalue().splitlines()) if line["message"] == message]


async def test_a_hook_calls_log_line_and_answer_carry_one_request_id(
    make_app: AppFactory, captured: io.StringIO
) -> None:
    """An id an EHR or proxy sends (X-Request-ID) is kept, so that it can find its call here."""
    request = hook_request([obs("62292-8", 12, "ng/mL")], None)
    async with make_client(make_app()) as client:
        answer = await client.post(SERVICE, json=request, headers={"X-Request-ID": "ehr-4711:a.b_c-d"})
    assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "ehr-4711:a.b_c-d"
    (line,) = _lines(captured, "hook call")
    assert line["request_id"] == "ehr-4711:a.b_c-d" and line["hookInstance"] == request["hookInstance"]


@pytest.mark.parametrize(
    "given", [b"", b"x" * 129, b"two words", b"id\nforged line", b"<script>", "naïve".encode(), b"a/b"], ids=repr
)
async def test_a_malformed_request_id_is_replaced_never_echoed(
    make_app: AppFactory, captured: io.StringIO, given: bytes
) -> None:
    async with make_client(make_app()) as client:
        answer = await client.post(
            SERVICE, json=hook_request([obs("62292-8", 12, "ng/mL")], None), headers={"X-Request-ID": given}
        )
    made = answer.headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0  # a uuid4's hex
    (line,) = _lines(captured, "hook call")
    assert line["request_id"] == made
    if given:
        assert given.decode() not in captured.getvalue()


async def test_each_of_concurrent_calls_logs_its_own_request_id(make_app: AppFactory, captured: io.StringIO) -> None:
    requests = [hook_request([obs("62292-8", 12 + n, "ng/mL")], None) for n in range(12)]
    async with make_client(make_app()) as client:
        answers = await asyncio.gather(
            *(client.post(SERVICE, json=r, headers={"X-Request-ID": f"call-{n}"}) for n, r in enumerate(requests))
        )
        after = await client.get("/healthz")
    assert [a.headers["X-Request-ID"] for a in answers] == [f"call-{n}" for n in range(12)]
    by_instance = {line["hookInstance"]: line["request_id"] for line in _lines(captured, "hook call")}
    assert by_instance == {r["hookInstance"]: f"call-{n}" for n, r in enumerate(requests)}
    assert after.headers["X-Request-ID"] not in {f"call-{n}" for n in range(12)}
    logging.getLogger("cds_service").info("after the calls")
    assert "request_id" not in _lines(captured, "after the calls")[0]  # nothing left over outside a request


async def test_refusals_and_errors_carry_the_request_id(
    make_app: AppFactory, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 413 (too large), a 400 and a 500 (a bug) answer with the id, and their log lines carry it."""
    from cds_service.services.vitamin_d_cramps import VitaminDCramps

    async with make_client(make_app(max_body_bytes=100)) as client:
        too_large = await client.post(SERVICE, json=hook_request(), headers={"X-Request-ID": "big"})
    assert too_large.status_code == 413 and too_large.headers["X-Request-ID"] == "big"

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(VitaminDCramps, "decide", broken)
    async with make_client(make_app()) as client:
        request = hook_request([obs("62292-8", 12, "ng/mL")], None)
        failed = await client.post(SERVICE, json=request, headers={"X-Request-ID": "bug"})
        invalid = await client.post(SERVICE, json={"hook": 1}, headers={"X-Request-ID": "bad"})
    assert failed.status_code == 500 and failed.headers["X-Request-ID"] == "bug"
    assert _lines(captured, "unhandled error")[0]["request_id"] == "bug"
    assert invalid.status_code == 400 and invalid.headers["X-Request-ID"] == "bad"
    assert _lines(captured, "invalid request")[0]["request_id"] == "bad"


def test_a_librarys_line_written_during_a_request_carries_its_id(captured: io.StringIO) -> None:
    """The id is added by the root handler's filter, so a library's line has it as the service's do."""
    token = logs.request_id.set("lib-42")
    try:
        logging.getLogger("some.library").warning("retrying")
    finally:
        logs.request_id.reset(token)
    logging.getLogger("some.library").warning("idle")
    assert [line.get("request_id") for line in map(json.loads, captured.getvalue().splitlines())] == ["lib-42", None]
