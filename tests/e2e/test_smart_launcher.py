"""The SMART launcher harness on its own, with no app of ours: discovery, a full public-client EHR
launch played with httpx (authorize, code, token with PKCE, a FHIR read through the proxy with the
bearer), a wrong PKCE verifier and a forged bearer refused. If these fail, an app's SMART test would fail for the
harness's sake, not the app's."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from tests.e2e.smart_launcher import (
    PROVIDER,
    SAMPLE_PATIENTS,
    Launcher,
    launch_code,
    launch_url,
)

PATIENT = SAMPLE_PATIENTS[0]  # smart-8888801
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never opened: the 302 is not followed
CLIENT_ID = "harness-public"
SCOPE = "launch openid fhirUser patient/Patient.read patient/Observation.read"


def _challenge(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize(launcher: Launcher, launch: str, verifier: str, state: str) -> httpx.Response:
    """The browser's visit to the authorization endpoint, as an app would send it after discovery."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": state,
        "aud": launcher.iss,
        "launch": launch,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    return httpx.get(launcher.authorize_endpoint, params=params, follow_redirects=False, timeout=10)


def _code(launcher: Launcher, verifier: str) -> str:
    """An authorization code for a launch of PATIENT by PROVIDER, checking the redirect on the way."""
    state = secrets.token_urlsafe(16)
    response = _authorize(launcher, launch_code(PATIENT, provider=PROVIDER), verifier, state)
    assert response.status_code == 302, response.text[:2000]
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query.get("state") == [state], query
    assert "error" not in query, query
    (code,) = query["code"]
    return code


def _token(launcher: Launcher, code: str, verifier: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
    }
    return httpx.post(launcher.token_endpoint, data=form, timeout=10)


def test_discovery_names_the_endpoints_and_s256(launcher: Launcher) -> None:
    response = httpx.get(f"{launcher.iss}/.well-known/smart-configuration", timeout=10)
    assert response.status_code == 200, response.text[:2000]
    config: dict[str, Any] = response.json()
    assert config["authorization_endpoint"] == launcher.authorize_endpoint
    assert config["token_endpoint"] == launcher.token_endpoint
    assert "S256" in config["code_challenge_methods_supported"]
    assert {"launch-ehr", "client-public", "context-ehr-patient"} <= set(config["capabilities"])


def test_launch_url_carries_iss_and_launch(launcher: Launcher) -> None:
    url = urlsplit(launch_url("http://127.0.0.1:9/app/launch?x=1", launcher, "abc"))
    assert parse_qs(url.query) == {"x": ["1"], "iss": [launcher.iss], "launch": ["abc"]}


def test_a_public_client_ehr_launch_reads_the_patient(launcher: Launcher) -> None:
    verifier = secrets.token_urlsafe(48)
    token = _token(launcher, _code(launcher, verifier), verifier)
    assert token.status_code == 200, token.text[:2000]
    body: dict[str, Any] = token.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"]
    assert body["patient"] == PATIENT
    # openid fhirUser with a provider: an id_token signed (with no kid) by the one key the launcher publishes
    (key,) = jwt.PyJWKSet.from_dict(httpx.get(f"{launcher.base}/keys", timeout=10).json()).keys
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=CLIENT_ID)
    assert claims["fhirUser"] == f"Practitioner/{PROVIDER}"
    assert claims["iss"] == launcher.iss

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    patient = httpx.get(f"{launcher.iss}/Patient/{PATIENT}", headers=bearer, timeout=10)
    assert patient.status_code == 200, patient.text[:2000]
    assert patient.json()["resourceType"] == "Patient"
    assert patient.json()["id"] == PATIENT
    observations = httpx.get(f"{launcher.iss}/Observation", params={"patient": PATIENT}, headers=bearer, timeout=30)
    assert observations.status_code == 200, observations.text[:2000]
    entries = observations.json().get("entry", [])
    assert entries
    assert all(e["resource"]["subject"]["reference"] == f"Patient/{PATIENT}" for e in entries)


def test_a_wrong_code_verifier_is_refused(launcher: Launcher) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(launcher, verifier)
    refused = _token(launcher, code, secrets.token_urlsafe(48))
    assert 400 <= refused.status_code < 500, refused.text[:2000]
    assert refused.json()["error"] == "invalid_grant"  # 401 from this launcher
    assert "access_token" not in refused.text


def test_a_forged_bearer_is_refused_by_the_proxy(launcher: Launcher) -> None:
    """The proxy forwards requests with no token, but checks any token that is sent."""
    forged = {"Authorization": "Bearer not-a-launcher-token"}
    assert httpx.get(f"{launcher.iss}/Patient/{PATIENT}", headers=forged, timeout=10).status_code == 401
