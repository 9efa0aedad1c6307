"""The demo's sample patient and the hook request an EHR would send for it.

Dates are relative to the day the demo runs, so the example never goes stale.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

PATIENT_ID = "demo-deficient-cramps"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _observation(obs_id: str, code: str, display: str, value: float, unit: str, when: date) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def example_request(today: date) -> dict[str, Any]:
    """patient-view for a patient with 25(OH)D of 14 ng/mL, recent K and Ca, and no magnesium:
    the service answers vitd-deficient and electrolytes-check (offering a magnesium order)."""
    vitamin_d = [
        _observation("vitd-2", "62292-8", "25-Hydroxyvitamin D2+D3", 14, "ng/mL", today - timedelta(days=12)),
        _observation("vitd-1", "62292-8", "25-Hydroxyvitamin D2+D3", 22, "ng/mL", today - timedelta(days=400)),
    ]
    electrolytes = [
        _observation("k-1", "2823-3", "Potassium", 4.1, "mmol/L", today - timedelta(days=12)),
        _observation("ca-1", "17861-6", "Calcium", 9.1, "mg/dL", today - timedelta(days=12)),
        _observation("alb-1", "1751-7", "Albumin", 4.0, "g/dL", today - timedelta(days=12)),
    ]
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/demo-clinician", "patientId": PATIENT_ID},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": PATIENT_ID,
                "name": [{"family": "Sample", "given": ["Dana"]}],
                "gender": "female",
                "birthDate": "1961-04-02",
            },
            "vitaminD": _searchset(vitamin_d),
            "electrolytes": _searchset(electrolytes),
        },
    }
