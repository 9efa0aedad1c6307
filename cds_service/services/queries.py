"""The FHIR queries every service reads the record with, as CDS Hooks prefetch keys, built from the
code lists in `cards/` so that prefetch and fetch ask for the same data."""

from __future__ import annotations

from ..content.loader import Content
from ..fhir.prefetch import PrefetchKey

PATIENT, VITAMIN_D, ELECTROLYTES, CONDITIONS, MEDICATIONS, PENDING_ORDERS = (
    "patient",
    "vitaminD",
    "electrolytes",
    "conditions",
    "medications",
    "pendingOrders",
)
# Newest first, enough for years of results; later pages are the FHIR client's business.
_COUNT = {VITAMIN_D: 50, ELECTROLYTES: 100, CONDITIONS: 100, MEDICATIONS: 100, PENDING_ORDERS: 50}


def _observations(content: Content, codes: list[str], count: int) -> str:
    system = content.codes.system
    code = ",".join(f"{system}|{c}" for c in codes)
    return f"Observation?patient={{{{context.patientId}}}}&code={code}&_sort=-date&_count={count}"


def prefetch_keys(content: Content) -> dict[str, PrefetchKey]:
    codes, vd = content.codes, content.codes.vitamin_d
    electrolytes = [
        *codes.potassium,
        *codes.magnesium,
        *codes.calcium_total,
        *codes.calcium_ionized,
        *codes.calcium_corrected,
        *codes.albumin,
    ]
    # The tests a pending order spares: the check card's, and the 25(OH)D the 1,25-D card would draft.
    spared = [s.orderable for s in content.catalogue.cards["electrolytes-check"].suggestions]
    if (replacement := content.catalogue.cards["vitd-order-1-25"].replacement) is not None:
        spared.append(replacement)
    pending = ",".join(f"{codes.system}|{codes.orderable[name].code}" for name in dict.fromkeys(spared))
    keys = [
        PrefetchKey(PATIENT, "Patient/{{context.patientId}}", "the patient", required=False),
        PrefetchKey(
            VITAMIN_D,
            _observations(content, [*vd.total, *vd.proxy, *vd.opt_in, *vd.dihydroxy, *vd.parent], _COUNT[VITAMIN_D]),
            "vitamin D results",
        ),
        PrefetchKey(
            ELECTROLYTES,
            _observations(content, electrolytes, _COUNT[ELECTROLYTES]),
            "potassium, magnesium, calcium and albumin results",
            required=False,
        ),
        PrefetchKey(
            CONDITIONS,
            # No clinical-status filter: encounter diagnoses have none (the reader decides).
            f"Condition?patient={{{{context.patientId}}}}&_count={_COUNT[CONDITIONS]}",
            "the patient's conditions",
            required=False,
        ),
        PrefetchKey(
            MEDICATIONS,
            f"MedicationRequest?patient={{{{context.patientId}}}}&status=active"
            f"&_include=MedicationRequest:medication&_count={_COUNT[MEDICATIONS]}",
            "the active medication list",
            required=False,
        ),
        PrefetchKey(
            PENDING_ORDERS,
            f"ServiceRequest?patient={{{{context.patientId}}}}&status=active&code={pending}"
            f"&_count={_COUNT[PENDING_ORDERS]}",
            "the tests already ordered",
            required=False,
        ),
    ]
    return {key.name: key for key in keys}
