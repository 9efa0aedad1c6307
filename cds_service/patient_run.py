"""`cds-service evaluate`: the patient-view service run against any FHIR R4 server, for
integrators trying it on a public sandbox. The hook call goes through the same app, routes and
FHIR client as the HTTP service; only the caller is this command."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .app import create_app
from .fhir.client import FhirClient, FhirUnavailable
from .settings import Settings

SERVICE = "vitamin-d-cramps"


class PatientRunError(Exception):
    """Why there are no cards to show: unreachable server, refused token, unknown patient."""


@dataclass(frozen=True)
class PatientRun:
    request: dict[str, Any]
    response: dict[str, Any]


def hook_request(fhir_server: str, patient: str, token: str | None) -> dict[str, Any]:
    """patient-view without prefetch: the service reads everything from the server."""
    request: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/cds-service-evaluate", "patientId": patient},
    }
    if token:
        request["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "patient/*.read",
            "subject": "cds-service-evaluate",
        }
    return request


def _explain(reason: str) -> str:
    if reason in ("HTTP 401", "HTTP 403"):
        return f"the FHIR server refused the token ({reason})"
    if reason == "HTTP 404":
        return "the patient was not found on the FHIR server (HTTP 404)"
    return f"the FHIR server could not be read: {reason}"


async def run_patient_view(
    settings: Settings, fhir_server: str, patient: str, token: str | None, as_of: datetime | None
) -> PatientRun:
    """Check that the patient can be read, then make the hook call through the service's app."""
    with tempfile.TemporaryDirectory(prefix="cds-evaluate-") as folder:
        settings = settings.model_copy(
            update={"auth": "off", "database_url": f"sqlite+aiosqlite:///{Path(folder) / 'patient-run.sqlite'}"}
        )
        moment = as_of or datetime.now(UTC)
        app = create_app(settings, clock=lambda: moment)
        async with app.router.lifespan_context(app):
            fhir: FhirClient = app.state.fhir
            try:
                server = fhir.server(fhir_server, token)
                await fhir.get(server, f"Patient/{quote(patient, safe='')}", fhir.deadline())
            except FhirUnavailable as exc:
                raise PatientRunError(_explain(exc.reason)) from None
            request = hook_request(fhir_server, patient, token)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://patient-run") as client:
                response = await client.post(f"/cds-services/{SERVICE}", json=request)
        body = response.json()
        if response.status_code != 200:
            diagnostics = body.get("issue", [{}])[0].get("diagnostics", response.text)
            raise PatientRunError(f"the service answered {response.status_code}: {diagnostics}")
        return PatientRun(request, body)
