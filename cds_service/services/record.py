"""The patient's record as every service reads it: the keys resolved, then the clinical core's
assessments, so that patient-view and the ordering hooks judge the same data the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..clinical.cramp_context import CrampContext, assess_context
from ..clinical.electrolytes import ElectrolyteAssessment, assess_electrolytes
from ..clinical.results import LabResult
from ..clinical.vitamin_d import VitaminDAssessment, assess_vitamin_d
from ..content.loader import Content
from ..content.schema import Profile
from ..fhir.client import Deadline, FhirClient
from ..fhir.facts import ContextReader, birth_date
from ..fhir.labs import LabReader
from ..fhir.medications import read_referenced
from ..fhir.models import Read
from ..fhir.orders import PendingOrderReader
from ..fhir.prefetch import Prefetched, PrefetchKey, resolve
from ..protocol import HookRequest
from ..settings import Settings
from .queries import (
    CONDITIONS_KEY,
    ELECTROLYTES_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
    PENDING_ORDERS_KEY,
    VITAMIN_D_KEY,
    prefetch_keys,
)


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
    def __init__(self, content: Content, settings: Settings, profile: str | None = None) -> None:
        """`profile`: the threshold profile, when not the settings' (an issuer's own)."""
        self.content = content
        self.profile_name = profile or settings.threshold_profile
        self.profile: Profile = content.profile(self.profile_name)
        self.accept_opt_in = settings.vitd_opt_in_codes
        self.keys = prefetch_keys(content)
        self._labs = LabReader(content)
        self._context = ContextReader(content.context)
        self._pending = PendingOrderReader(content)
        # Only the 25(OH)D tests have a history on the cards; every other analyte is judged on its
        # results of the recent window alone (rulebook, "Reading results").
        analytes = content.analytes
        self._recent_only = [a for a in analytes.analytes if a not in analytes.vitamin_d.tests]
        self._recent_days = content.thresholds.windows.electrolyte_recent_days

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
        lab_resources: list[object] = []
        empty_entries = 0
        for key in (VITAMIN_D_KEY, ELECTROLYTES_KEY):
            found, empty = data.resources(key)
            lab_resources += found
            empty_entries += empty
        labs = self._labs.read(lab_resources, patient_id, self._since(as_of))
        conditions = self._context.conditions(data.resources(CONDITIONS_KEY)[0], patient_id)
        listed = data.resources(MEDICATIONS_KEY)[0]
        listed += await read_referenced(listed, request, fhir, deadline)
        medications = self._context.medications(listed, patient_id)
        pending = self._pending.read(data.resources(PENDING_ORDERS_KEY)[0], patient_id)
        patient = data.resources(PATIENT_KEY)[0]
        electrolytes_had = ELECTROLYTES_KEY in wanted and not data.missing(ELECTROLYTES_KEY)
        return Record(
            labs=labs.items,
            vitamin_d=self._vitamin_d(labs.items, as_of),
            electrolytes=self._electrolytes(labs.items, as_of) if electrolytes_had else None,
            context=assess_context(conditions.items, medications.items, self.content.context, as_of),
            conditions_known=CONDITIONS_KEY in wanted and not data.missing(CONDITIONS_KEY),
            birth=birth_date(patient[0], patient_id) if patient else None,
            pending=frozenset(pending.items),
            unavailable=[u.key.purpose for u in data.unavailable if u.key.name != PATIENT_KEY],
            log=_log(data, len(labs.items), empty_entries, (labs, conditions, medications, pending)),
        )

    def _since(self, as_of: datetime) -> dict[str, date]:
        """The first UTC day a rule looks at, per analyte judged on recent results only; a day
        early, so that only a result no window reaches goes unread."""
        first_day = as_of.astimezone(UTC).date() - timedelta(days=self._recent_days + 1)
        return dict.fromkeys(self._recent_only, first_day)

    def _vitamin_d(self, labs: tuple[LabResult, ...], as_of: datetime) -> VitaminDAssessment:
        windows = self.content.thresholds.windows
        return assess_vitamin_d(
            labs,
            as_of=as_of,
            profile=self.profile,
            window_days=windows.vitamin_d_status_days,
            future_allowance=timedelta(hours=windows.future_allowance_hours),
            accept_opt_in=self.accept_opt_in,
        )

    def _electrolytes(self, labs: tuple[LabResult, ...], as_of: datetime) -> ElectrolyteAssessment:
        thresholds = self.content.thresholds
        return assess_electrolytes(
            labs,
            as_of=as_of,
            analytes=self.content.analytes,
            windows=thresholds.windows,
            payne=thresholds.payne,
            future_allowance=timedelta(hours=thresholds.windows.future_allowance_hours),
        )


def _log(data: Prefetched, results: int, empty_entries: int, reads: tuple[Read[Any], ...]) -> dict[str, Any]:
    """Counts and reasons for the log line, never patient data."""
    log: dict[str, Any] = {
        "results": results,
        "malformed": empty_entries + sum(r.malformed for r in reads),
        "other_patient": sum(r.other_patient for r in reads),
        "old": sum(r.old for r in reads),  # results no window reaches, left unread
    }
    if data.fetched:
        log["fetched"] = ",".join(data.fetched)
    if data.unavailable:
        log["unavailable"] = "; ".join(f"{u.key.name}: {u.reason}" for u in data.unavailable)
    return log
