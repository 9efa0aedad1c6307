"""Small builders of FHIR resources and hook requests, so each test shows only what matters."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PATIENT = "p1"

_ids = itertools.count(1)


def obs(
    code: str,
    value: float | None = None,
    unit: str | None = None,
    when: str | None = "2026-11-01",
    *,
    status: str = "final",
    patient: str | None = PATIENT,
    comparator: str | None = None,
    id: str | None = None,
    ucum: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """An Observation; `value` and `unit` become a UCUM valueQuantity (unit text only if not ucum)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id or f"obs-{next(_ids)}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }
    if patient is not None:
        resource["subject"] = {"reference": f"Patient/{patient}"}
    if when is not None:
        resource["effectiveDateTime"] = when
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity["unit"] = unit
            if ucum:
                quantity |= {"system": UCUM, "code": unit}
        if comparator is not None:
            quantity["comparator"] = comparator
        resource["valueQuantity"] = quantity
    resource.update(fields)
    return resource


def ref_range(low: float | None, high: float | None, unit: str) -> list[dict[str, Any]]:
    rr: dict[str, Any] = {}
    if low is not None:
        rr["low"] = {"value": low, "unit": unit, "system": UCUM, "code": unit}
    if high is not None:
        rr["high"] = {"value": high, "unit": unit, "system": UCUM, "code": unit}
    return [rr]


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def hook_request(
    vitamin_d: list[dict[str, Any]] | None = None,
    electrolytes: list[dict[str, Any]] | None = None,
    *,
    conditions: list[dict[str, Any]] | None = None,
    medications: list[dict[str, Any]] | None = None,
    pending_orders: list[dict[str, Any]] | None = None,
    birth_date: str | None = None,
    patient: str = PATIENT,
    hook: str = "patient-view",
    prefetch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A patient-view request; each list becomes a searchset Bundle (None: null, nothing there).
    Without `birth_date` the Patient has none (the cards then say the age is unknown)."""
    if prefetch is None:
        person: dict[str, Any] = {"resourceType": "Patient", "id": patient}
        if birth_date is not None:
            person["birthDate"] = birth_date
        prefetch = {
            "patient": person,
            "vitaminD": bundle(*vitamin_d) if vitamin_d is not None else None,
            "electrolytes": bundle(*electrolytes) if electrolytes is not None else None,
            "conditions": bundle(*conditions) if conditions is not None else None,
            "medications": bundle(*medications) if medications is not None else None,
            "pendingOrders": bundle(*pending_orders) if pending_orders is not None else None,
        }
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/u1", "patientId": patient},
        "prefetch": prefetch,
    }


# Recent, normal electrolytes, for tests about vitamin D alone (as of 2026-11-25).
def normal_electrolytes(when: str = "2026-11-01") -> list[dict[str, Any]]:
    return [
        obs("2823-3", 4.2, "mmol/L", when),
        obs("19123-9", 2.0, "mg/dL", when),
        obs("17861-6", 9.4, "mg/dL", when),
    ]


ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def condition(
    code: str,
    system: str = ICD10,
    *,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    patient: str = PATIENT,
    id: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id or f"cond-{next(_ids)}",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if clinical is not None:
        resource["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]
        }
    if verification is not None:
        resource["verificationStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]
        }
    return resource


def medication(
    display: str,
    rxnorm: str | None = None,
    *,
    status: str = "active",
    patient: str = PATIENT,
    id: str | None = None,
    intent: str = "order",
    authored: str | None = None,
) -> dict[str, Any]:
    """A MedicationRequest with a product coding (as EHRs send: a product code, not the ingredient's);
    `authored` is its `authoredOn`, when the medicine was started."""
    coding: dict[str, Any] = {"system": RXNORM, "display": display}
    if rxnorm:
        coding["code"] = rxnorm
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id or f"med-{next(_ids)}",
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": {"coding": [coding], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if authored is not None:
        resource["authoredOn"] = authored
    return resource


def pending_order(
    code: str, *, status: str = "active", patient: str = PATIENT, id: str | None = None
) -> dict[str, Any]:
    """A ServiceRequest for a LOINC test, ordered and not yet resulted (the `pendingOrders` key)."""
    return {
        "resourceType": "ServiceRequest",
        "id": id or f"sr-{next(_ids)}",
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def service_request(*codes: tuple[str, str], id: str | None = "sr-1", **fields: Any) -> dict[str, Any]:
    """A draft ServiceRequest as EHRs send it: several codings (LOINC among local ones)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code} for system, code in codes], "text": "lab order"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "requester": {"reference": "Practitioner/dr-1", "display": "Dr One"},
        "encounter": {"reference": "Encounter/enc-9"},
    }
    if id:
        resource["id"] = id
    return resource | fields


def order_request(
    drafts: list[dict[str, Any]],
    *,
    hook: str = "order-sign",
    selections: list[str] | None = None,
    vitamin_d: list[dict[str, Any]] | None = None,
    electrolytes: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    medications: list[dict[str, Any]] | None = None,
    pending_orders: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An order-sign (or order-select) request drafting `drafts`, with its prefetch as Bundles
    (None: null, nothing there); on order-select every draft is selected unless told otherwise."""
    context: dict[str, Any] = {
        "userId": "Practitioner/dr-1",
        "patientId": PATIENT,
        "draftOrders": bundle(*drafts),
    }
    if hook == "order-select":
        context["selections"] = (
            selections if selections is not None else [f"{d['resourceType']}/{d['id']}" for d in drafts]
        )
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": {
            "vitaminD": bundle(*vitamin_d) if vitamin_d is not None else None,
            "electrolytes": bundle(*electrolytes) if electrolytes is not None else None,
            "conditions": bundle(*conditions) if conditions is not None else None,
            "medications": bundle(*medications) if medications is not None else None,
            "pendingOrders": bundle(*pending_orders) if pending_orders is not None else None,
        },
    }


def interpretation(flag: str) -> list[dict[str, Any]]:
    """An Observation's `interpretation`: the laboratory's flag (HL7 v3 ObservationInterpretation)."""
    system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    return [{"coding": [{"system": system, "code": flag}]}]


async def patient_view_cards(client: Any, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cards of a patient-view call, by kind (a 200 asserted)."""
    response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200, response.text
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


def card_text(card: dict[str, Any]) -> str:
    """A card's summary and detail, as one text to look for phrases in."""
    return f"{card['summary']}\n{card.get('detail', '')}"
