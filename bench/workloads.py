"""The four workloads of the benchmark, as hook requests (and the FHIR data the stub serves)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT = "bench-patient"
TODAY = date.today()


def _obs(i: int, code: str, value: float, unit: str, days_ago: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": code},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": (TODAY - timedelta(days=days_ago)).isoformat(),
        "issued": (TODAY - timedelta(days=days_ago)).isoformat() + "T12:00:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "referenceRange": [
            {
                "low": {"value": 1, "unit": unit, "system": UCUM, "code": unit},
                "high": {"value": 100, "unit": unit, "system": UCUM, "code": unit},
            }
        ],
    }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in resources],
    }


def patient_data(electrolyte_count: int) -> dict[str, dict[str, Any]]:
    """5 vitamin D results, `electrolyte_count` K/Mg/Ca/albumin results, 10 Conditions, 10 MedicationRequests,
    no pending order."""
    vitamin_d = [_obs(i, "62292-8", 14 + i, "ng/mL", 20 + 90 * i) for i in range(5)]
    kinds = [("2823-3", 4.1, "mmol/L"), ("19123-9", 2.0, "mg/dL"), ("17861-6", 9.3, "mg/dL"), ("1751-7", 4.0, "g/dL")]
    electrolytes = [
        _obs(100 + i, kinds[i % 4][0], kinds[i % 4][1], kinds[i % 4][2], 200 + 15 * (i // 4))
        for i in range(electrolyte_count)
    ]
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"cond-{i}",
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": ICD10, "code": code}]},
            "subject": {"reference": f"Patient/{PATIENT}"},
        }
        for i, code in enumerate(
            ["R25.2", "I10", "E78.5", "J45.909", "M54.5", "K21.9", "E11.9", "F41.1", "G47.00", "N18.3"]
        )
    ]
    medications = [
        {
            "resourceType": "MedicationRequest",
            "id": f"med-{i}",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": str(300000 + i), "display": name}],
                "text": name,
            },
            "subject": {"reference": f"Patient/{PATIENT}"},
        }
        for i, name in enumerate(
            [
                "furosemide 20 MG",
                "lisinopril 10 MG",
                "metformin 500 MG",
                "atorvastatin 20 MG",
                "albuterol inhaler",
                "omeprazole 20 MG",
                "sertraline 50 MG",
                "aspirin 81 MG",
                "levothyroxine 50 MCG",
                "amlodipine 5 MG",
            ]
        )
    ]
    return {
        "patient": {"resourceType": "Patient", "id": PATIENT, "gender": "female", "birthDate": "1960-01-01"},
        "vitaminD": _bundle(vitamin_d),
        "electrolytes": _bundle(electrolytes),
        "conditions": _bundle(conditions),
        "medications": _bundle(medications),
        "pendingOrders": _bundle([]),  # no test on order
    }


def hook_request(prefetch: dict[str, Any] | None, fhir_server: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT},
    }
    if prefetch is not None:
        request["prefetch"] = prefetch
    if fhir_server is not None:
        request["fhirServer"] = fhir_server
    return request


def workloads(stub_url: str, fast_stub_url: str | None = None) -> dict[str, dict[str, Any]]:
    """(c) and (d) are (a)'s patient read from the FHIR stub: after 50 ms, and at once (from
    `fast_stub_url`, `stub_url` when not given)."""
    return {
        "a-typical": hook_request(patient_data(40)),
        "b-heavy": hook_request(patient_data(295)),  # 5 + 295 = 300 Observations
        "c-no-prefetch": hook_request(None, stub_url),
        "d-fetched": hook_request(None, fast_stub_url or stub_url),
    }
