"""Medications named only by reference, as Epic names them: resolved from the resources that came
with the request (contained, or included in the same Bundle), else read from the EHR's FHIR server
under the hook call's deadline and the same address rules; the reference's `display` stays the
fallback when neither can be had."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from ..protocol import HookRequest, is_fhir_id
from .client import Deadline, FhirClient, FhirUnavailable, within
from .facts import medication_key, medications_by_reference

# A request may name many Medications; reading each is one query to the EHR: bounded.
MAX_READS = 20


def bare_references(resources: Iterable[Any], fhir_server: str | None = None) -> list[str]:
    """The "Medication/<id>" that MedicationRequests name and that no resource beside them holds,
    to read from `fhir_server` (the request's): a reference is relative, or an absolute URL under
    that server; one on another server names another resource that may share its id there."""
    resources = [r for r in resources if isinstance(r, dict)]
    held = medications_by_reference(resources)
    wanted: dict[str, None] = {}
    for resource in resources:
        reference = resource.get("medicationReference") if resource.get("resourceType") == "MedicationRequest" else None
        target = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(target, str) and target and not target.startswith("#"):
            key = medication_key(target)
            # only an id that stays one path segment on the server (`..`, `%2F` would not)
            readable = key.startswith("Medication/") and is_fhir_id(key.removeprefix("Medication/"))
            elsewhere = "://" in target and (fhir_server is None or not within(target, [fhir_server]))
            if readable and not elsewhere and key not in held:
                wanted[key] = None
    return list(wanted)[:MAX_READS]


async def read_referenced(
    resources: Iterable[Any], request: HookRequest, fhir: FhirClient, deadline: Deadline
) -> list[dict[str, Any]]:
    """The Medications these resources name bare (bare_references), read from the request's FHIR
    server; none when it has none or refuses."""
    if request.fhirServer is None:
        return []
    references = bare_references(resources, str(request.fhirServer))
    if not references:
        return []
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    try:
        server = fhir.server(str(request.fhirServer), token)
    except FhirUnavailable:
        return []

    async def read(key: str) -> dict[str, Any] | None:
        try:
            return await fhir.get(server, "Medication/" + quote(key.removeprefix("Medication/"), safe=""), deadline)
        except FhirUnavailable:
            return None

    found = await asyncio.gather(*(read(key) for key in references))
    return [m for m in found if m is not None and m.get("resourceType") == "Medication"]
