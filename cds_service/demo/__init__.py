"""The demo's sample patients (`patients.yaml`) and the hook requests an EHR would send for them.

Dates are relative to the day the demo runs, so the example never goes stale.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..fhir.systems import LOINC, RXNORM, UCUM

_OBSERVATION_KEYS = ("vitaminD", "electrolytes")
SMART_PATIENTS = ("8888801", "8888803", "8888804")
SMART_ABOUT = (
    "SMART sample patient (smart-on-fhir/generated-sample-data, Apache-2.0), every date shifted so that "
    "the latest result is 30 days old"
)
_SMART_LATEST_DAYS_AGO = 30


@cache
def patients() -> list[dict[str, Any]]:
    text = (resources.files(__package__) / "patients.yaml").read_text(encoding="utf-8")
    loaded: list[dict[str, Any]] = yaml.safe_load(text)
    return loaded


def _observation(patient_id: str, spec: dict[str, Any], today: date) -> dict[str, Any]:
    """A result as a laboratory sends it: a value with its UCUM unit, a value with no unit
    (`unit: null`), or text (`text`)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{patient_id}-{spec['id']}",  # unique on a FHIR server holding every demo patient
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": spec["code"], "display": spec["display"]}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": (today - timedelta(days=spec["days_ago"])).isoformat(),
    }
    if "text" in spec:
        resource["valueString"] = spec["text"]
    elif spec["unit"] is None:
        resource["valueQuantity"] = {"value": spec["value"]}
    else:
        resource["valueQuantity"] = {"value": spec["value"], "unit": spec["unit"], "system": UCUM, "code": spec["unit"]}
    return resource


def _condition(patient_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"{patient_id}-{spec['id']}",  # unique on a FHIR server holding every demo patient
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": spec["system"], "code": spec["code"], "display": spec["display"]}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def _medication_request(patient_id: str, spec: dict[str, Any], today: date) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"{patient_id}-{spec['id']}",  # unique on a FHIR server holding every demo patient
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": spec["rxnorm"], "display": spec["display"]}],
            "text": spec["display"],
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if "started_days_ago" in spec:
        resource["authoredOn"] = (today - timedelta(days=spec["started_days_ago"])).isoformat()
    return resource


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def patient_resources(spec: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Everything the demo EHR holds about a patient, as FHIR resources."""
    pid = spec["id"]
    return [
        {"resourceType": "Patient", "id": pid, **spec["patient"]},
        *(_observation(pid, o, today) for key in _OBSERVATION_KEYS for o in spec.get(key, [])),
        *(_condition(pid, c) for c in spec.get("conditions", [])),
        *(_medication_request(pid, m, today) for m in spec.get("medications", [])),
    ]


def hook_request(spec: dict[str, Any], today: date) -> dict[str, Any]:
    """The patient-view request, with full prefetch, that an EHR would send for a demo patient."""
    pid = spec["id"]
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": pid, **spec["patient"]}}
    for key in _OBSERVATION_KEYS:
        prefetch[key] = _searchset([_observation(pid, o, today) for o in spec.get(key, [])])
    prefetch["conditions"] = _searchset([_condition(pid, c) for c in spec.get("conditions", [])])
    prefetch["medications"] = _searchset([_medication_request(pid, m, today) for m in spec.get("medications", [])])
    prefetch["pendingOrders"] = _searchset([])
    return {
        "hook": "patient-view",
        "hookInstance": spec["hookInstance"],
        "context": {"userId": "Practitioner/demo-clinician", "patientId": pid},
        "prefetch": prefetch,
    }


@cache
def _smart_bundle(number: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "smart" / f"r4-smart-{number}.json").read_text(encoding="utf-8")
    bundle: dict[str, Any] = json.loads(text)
    return bundle


def smart_resources(number: str, today: date) -> list[dict[str, Any]]:
    """A SMART sample patient's Patient and Observations, dates moved to end 30 days ago."""
    found = [copy.deepcopy(e["resource"]) for e in _smart_bundle(number)["entry"]]
    observations = [r for r in found if r["resourceType"] == "Observation" and "effectiveDateTime" in r]
    latest = max(date.fromisoformat(o["effectiveDateTime"][:10]) for o in observations)
    shift = today - timedelta(days=_SMART_LATEST_DAYS_AGO) - latest
    for o in observations:
        o["effectiveDateTime"] = (date.fromisoformat(o["effectiveDateTime"][:10]) + shift).isoformat()
    return [r for r in found if r["resourceType"] in ("Patient", "Observation")]


def smart_patient(number: str) -> dict[str, Any]:
    return next(r for r in smart_resources(number, date.today()) if r["resourceType"] == "Patient")


def as_transaction(found: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Resources as one FHIR transaction of PUTs by id: loading it twice leaves the same data."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in found
        ],
    }


def transaction(today: date) -> dict[str, Any]:
    """Every demo patient (written and SMART), for loading a FHIR server (`cds-service load-demo`)."""
    found = [r for spec in patients() for r in patient_resources(spec, today)]
    return as_transaction(found + [r for number in SMART_PATIENTS for r in smart_resources(number, today)])


def example_request(today: date) -> dict[str, Any]:
    """The first demo patient's request: the service answers vitd-deficient and
    electrolytes-check (offering a magnesium order)."""
    return hook_request(patients()[0], today)
