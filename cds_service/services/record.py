"""The patient's record as every service reads it: prefetch keys, resolution, and assessments.

One place defines the FHIR queries (from the code lists in `cards/`) and turns what they return
into the clinical core's assessments, so that patient-view and the ordering hooks judge the same
data the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..clinical.cramp_context import CrampContext, assess_context
from ..clinical.electrolytes import ElectrolyteAssessment, assess_electrolytes
from ..clinical.results import LabResult
from ..clinical.vitamin_d import VitaminDAssessment, assess_vitamin_d
from ..content import Content, Profile
from ..fhir.client import Deadline, FhirClient
from ..fhir.facts import ContextReader, birth_date
from ..fhir.labs import LabReader
from ..fhir.medications import bare_references, read_referenced
from ..fhir.orders import PendingOrderReader
from ..fhir.prefetch import PrefetchKey, resolve
from ..protocol import HookRequest
from ..settings import Settings

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


@dataclass(frozen=True)
class Record:
    labs: tuple[LabResult, ...]
    vitamin_d: VitaminDAssessment
    electrolytes: ElectrolyteAssessment | None  # None when the electrolyte results were not had
    context: CrampContext
    conditions_known: bool
    birth: date | None  # None: unknown (no birth date, or the Patient was not had)
    pending: frozenset[str]  # analytes that an active order will measure
    unavailable: list[str]  # what could not be read and matters to the cards, for their detail
    log: dict[str, Any] = field(default_factory=dict)  # counts and reasons, never patient data


class RecordReader:
    def __init__(self, content: Content, settings: Settings) -> None:
        self.content = content
        self.profile: Profile = content.profile(settings.threshold_profile)
        self.accept_opt_in = settings.vitd_opt_in_codes
        self._labs = LabReader(content)
        self._context = ContextReader(content.context)
        self._pending = PendingOrderReader(content)
        codes, vd = content.codes, content.codes.vitamin_d
        suggested = content.catalogue.cards["electrolytes-check"].suggestions  # the tests a pending order spares
        self.keys = {
            PATIENT: PrefetchKey(PATIENT, "Patient/{{context.patientId}}", "the patient", required=False),
            VITAMIN_D: PrefetchKey(
                VITAMIN_D,
                self._observations([*vd.total, *vd.proxy, *vd.opt_in, *vd.dihydroxy, *vd.parent], _COUNT[VITAMIN_D]),
                "vitamin D results",
            ),
            ELECTROLYTES: PrefetchKey(
                ELECTROLYTES,
                self._observations(
                    [
                        *codes.potassium,
                        *codes.magnesium,
                        *codes.calcium_total,
                        *codes.calcium_ionized,
                        *codes.calcium_corrected,
                        *codes.albumin,
                    ],
                    _COUNT[ELECTROLYTES],
                ),
                "potassium, magnesium, calcium and albumin results",
                required=False,
            ),
            CONDITIONS: PrefetchKey(
                CONDITIONS,
                # No clinical-status filter: encounter diagnoses have none (the reader decides).
                f"Condition?patient={{{{context.patientId}}}}&_count={_COUNT[CONDITIONS]}",
                "the patient's conditions",
                required=False,
            ),
            MEDICATIONS: PrefetchKey(
                MEDICATIONS,
                f"MedicationRequest?patient={{{{context.patientId}}}}&status=active"
                f"&_include=MedicationRequest:medication&_count={_COUNT[MEDICATIONS]}",
                "the active medication list",
                required=False,
            ),
            PENDING_ORDERS: PrefetchKey(
                PENDING_ORDERS,
                "ServiceRequest?patient={{context.patientId}}&status=active&code="
                + ",".join(f"{codes.system}|{codes.orderable[s.orderable].code}" for s in suggested)
                + f"&_count={_COUNT[PENDING_ORDERS]}",
                "the tests already ordered",
                required=False,
            ),
        }

    def _observations(self, codes: list[str], count: int) -> str:
        system = self.content.codes.system
        code = ",".join(f"{system}|{c}" for c in codes)
        return f"Observation?patient={{{{context.patientId}}}}&code={code}&_sort=-date&_count={count}"

    def prefetch(self, *names: str) -> tuple[PrefetchKey, ...]:
        return tuple(self.keys[name] for name in names)

    async def read(
        self,
        request: HookRequest,
        keys: tuple[PrefetchKey, ...],
        fhir: FhirClient,
        patient_id: str,
        as_of: datetime,
        deadline: Deadline | None = None,
    ) -> Record:
        """The record, resolved under one deadline (the hook call's, when the caller has one)."""
        deadline = deadline or fhir.deadline()
        data = await resolve(keys, request, fhir, deadline)
        wanted = {k.name for k in keys}
        resources: list[object] = []
        empty_entries = 0
        for key in (VITAMIN_D, ELECTROLYTES):
            found, empty = data.resources(key)
            resources += found
            empty_entries += empty
        labs = self._labs.read(resources, patient_id)
        conditions = self._context.conditions(data.resources(CONDITIONS)[0], patient_id)
        listed = data.resources(MEDICATIONS)[0]
        listed += await read_referenced(bare_references(listed), request, fhir, deadline)
        medications = self._context.medications(listed, patient_id)
        pending = self._pending.read(data.resources(PENDING_ORDERS)[0], patient_id)
        patient = data.resources(PATIENT)[0]

        windows = self.content.thresholds.windows
        allowance = timedelta(hours=windows.future_allowance_hours)
        vitamin_d = assess_vitamin_d(
            labs.items,
            as_of=as_of,
            profile=self.profile,
            window_days=windows.vitamin_d_status_days,
            future_allowance=allowance,
            accept_opt_in=self.accept_opt_in,
        )
        electrolytes = None
        if ELECTROLYTES in wanted and not data.missing(ELECTROLYTES):
            electrolytes = assess_electrolytes(
                labs.items,
                as_of=as_of,
                ranges=self.content.thresholds.electrolyte_ranges,
                windows=windows,
                payne=self.content.thresholds.payne,
                future_allowance=allowance,
            )
        context = assess_context(conditions.items, medications.items, self.content.context, as_of)
        log: dict[str, Any] = {
            "results": len(labs.items),
            "malformed": labs.malformed
            + empty_entries
            + conditions.malformed
            + medications.malformed
            + pending.malformed,
            "other_patient": labs.other_patient
            + conditions.other_patient
            + medications.other_patient
            + pending.other_patient,
        }
        if data.fetched:
            log["fetched"] = ",".join(data.fetched)
        if data.unavailable:
            log["unavailable"] = "; ".join(f"{u.key.name}: {u.reason}" for u in data.unavailable)
        return Record(
            labs=labs.items,
            vitamin_d=vitamin_d,
            electrolytes=electrolytes,
            context=context,
            conditions_known=CONDITIONS in wanted and not data.missing(CONDITIONS),
            birth=birth_date(patient[0], patient_id) if patient else None,
            pending=frozenset(pending.items),
            unavailable=[u.key.purpose for u in data.unavailable if u.key.name != PATIENT],
            log=log,
        )
