"""The FHIR queries every service reads the record with, as CDS Hooks prefetch keys, built from the
code lists in `cards/` so that prefetch and fetch ask for the same data."""

from __future__ import annotations

from ..content.loader import Content
from ..content.wording import and_list
from ..fhir.prefetch import PrefetchKey

PATIENT_KEY, VITAMIN_D_KEY, ELECTROLYTES_KEY, CONDITIONS_KEY, MEDICATIONS_KEY, PENDING_ORDERS_KEY = (
    "patient",
    "vitaminD",
    "electrolytes",
    "conditions",
    "medications",
    "pendingOrders",
)
# Newest first, enough for years of results; later pages are the FHIR client's business.
_COUNT = {VITAMIN_D_KEY: 50, ELECTROLYTES_KEY: 100, CONDITIONS_KEY: 100, MEDICATIONS_KEY: 100, PENDING_ORDERS_KEY: 50}


def _observations(content: Content, codes: list[str], count: int) -> str:
    system = content.analytes.system
    code = ",".join(f"{system}|{c}" for c in codes)
    return f"Observation?patient={{{{context.patientId}}}}&code={code}&_sort=-date&_count={count}"


def prefetch_keys(content: Content) -> dict[str, PrefetchKey]:
    analytes = content.analytes
    vitamin_d = analytes.vitamin_d.tests
    others = [key for key in analytes.analytes if key not in vitamin_d]
    # The tests a pending order spares: the check card's, and the 25(OH)D the 1,25-D card would draft.
    spared = [s.orderable for s in content.catalogue.cards["electrolytes-check"].suggestions]
    if (replacement := content.catalogue.cards["vitd-order-1-25"].replacement) is not None:
        spared.append(replacement)
    pending = ",".join(f"{analytes.system}|{analytes.orderables[name].code}" for name in dict.fromkeys(spared))
    keys = [
        PrefetchKey(PATIENT_KEY, "Patient/{{context.patientId}}", "the patient", required=False),
        PrefetchKey(
            VITAMIN_D_KEY,
            _observations(content, [c for a in vitamin_d for c in analytes.codes(a)], _COUNT[VITAMIN_D_KEY]),
            "vitamin D results",
        ),
        PrefetchKey(
            ELECTROLYTES_KEY,
            _observations(content, [c for a in others for c in analytes.codes(a)], _COUNT[ELECTROLYTES_KEY]),
            f"{and_list([analytes.analytes[a].name for a in others if not analytes.analytes[a].decides_for])} results",
            required=False,
        ),
        PrefetchKey(
            CONDITIONS_KEY,
            # No clinical-status filter: encounter diagnoses have none (the reader decides).
            f"Condition?patient={{{{context.patientId}}}}&_count={_COUNT[CONDITIONS_KEY]}",
            "the patient's conditions",
            required=False,
        ),
        PrefetchKey(
            MEDICATIONS_KEY,
            f"MedicationRequest?patient={{{{context.patientId}}}}&status=active"
            f"&_include=MedicationRequest:medication&_count={_COUNT[MEDICATIONS_KEY]}",
            "the active medication list",
            required=False,
        ),
        PrefetchKey(
            PENDING_ORDERS_KEY,
            f"ServiceRequest?patient={{{{context.patientId}}}}&status=active&code={pending}"
            f"&_count={_COUNT[PENDING_ORDERS_KEY]}",
            "the tests already ordered",
            required=False,
        ),
    ]
    return {key.name: key for key in keys}
