"""`vitamin-d-cramps` (patient-view): vitamin D status and the cramp-related electrolytes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ..cards import CardRenderer, result_view
from ..clinical.electrolytes import ElectrolyteAssessment, assess_electrolytes
from ..clinical.results import within
from ..clinical.vitamin_d import Status, VitaminDAssessment, assess_vitamin_d
from ..content import Content
from ..fhir.client import FhirClient
from ..fhir.labs import LabReader
from ..fhir.prefetch import PrefetchKey, resolve
from ..protocol import Card, HookRequest, PatientViewContext, RequestError, ServiceDefinition
from ..settings import Settings
from .base import Outcome

# Newest first, enough for years of results; later pages are the FHIR client's business.
_VITAMIN_D_COUNT = 50
_ELECTROLYTES_COUNT = 100
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def patient_context(request: HookRequest) -> PatientViewContext:
    try:
        return PatientViewContext.model_validate(request.context)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RequestError(".".join(["context", *map(str, err["loc"])]), err["msg"]) from None


class VitaminDCramps:
    id = "vitamin-d-cramps"
    hook = "patient-view"
    title = "Vitamin D and leg cramps"
    description = (
        "Classifies the latest serum 25-hydroxyvitamin D and suggests a supplementation review when it is "
        "low or high, and a check of potassium, magnesium and calcium, the electrolytes tied to muscle "
        "cramps, when they are missing, old or out of range."
    )

    def __init__(self, content: Content, settings: Settings) -> None:
        self._content = content
        self._profile = content.profile(settings.threshold_profile)
        self._accept_opt_in = settings.vitd_opt_in_codes
        self._reader = LabReader(content)
        self._cards = CardRenderer(content, self._profile)
        codes, vd = content.codes, content.codes.vitamin_d
        vitamin_d = [*vd.total, *vd.proxy, *vd.opt_in, *vd.wrong_test]
        electrolytes = [
            *codes.potassium,
            *codes.magnesium,
            *codes.calcium_total,
            *codes.calcium_ionized,
            *codes.calcium_corrected,
            *codes.albumin,
        ]
        self.prefetch: tuple[PrefetchKey, ...] = (
            PrefetchKey("patient", "Patient/{{context.patientId}}", "the patient", required=False),
            PrefetchKey("vitaminD", self._query(vitamin_d, _VITAMIN_D_COUNT), "vitamin D results"),
            PrefetchKey(
                "electrolytes",
                self._query(electrolytes, _ELECTROLYTES_COUNT),
                "potassium, magnesium, calcium and albumin results",
                required=False,
            ),
        )

    def _query(self, codes: list[str], count: int) -> str:
        system = self._content.codes.system
        code = ",".join(f"{system}|{c}" for c in codes)
        return f"Observation?patient={{{{context.patientId}}}}&code={code}&_sort=-date&_count={count}"

    def definition(self) -> ServiceDefinition:
        return ServiceDefinition(
            hook=self.hook,
            id=self.id,
            title=self.title,
            description=self.description,
            prefetch={k.name: k.template for k in self.prefetch},
        )

    async def evaluate(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = patient_context(request)
        data = await resolve(self.prefetch, request, fhir)
        resources: list[object] = []
        empty_entries = 0
        for key in ("vitaminD", "electrolytes"):
            found, empty = data.resources(key)
            resources += found
            empty_entries += empty
        read = self._reader.read(resources, context.patientId)
        windows = self._content.thresholds.windows
        allowance = timedelta(hours=windows.future_allowance_hours)
        vitamin_d = assess_vitamin_d(
            read.results,
            as_of=as_of,
            profile=self._profile,
            window_days=windows.vitamin_d_status_days,
            future_allowance=allowance,
            accept_opt_in=self._accept_opt_in,
        )
        electrolytes = None
        if not data.missing("electrolytes"):
            electrolytes = assess_electrolytes(
                read.results,
                as_of=as_of,
                ranges=self._content.thresholds.electrolyte_ranges,
                windows=windows,
                payne=self._content.thresholds.payne,
                future_allowance=allowance,
            )
        unavailable = [u.key.purpose for u in data.unavailable if u.key.name == "electrolytes"]
        cards = self.decide(vitamin_d, electrolytes, context.patientId, as_of, unavailable)
        log: dict[str, Any] = {
            "results": len(read.results),
            "malformed": read.malformed + empty_entries,
            "other_patient": read.other_patient,
        }
        if data.fetched:
            log["fetched"] = ",".join(data.fetched)
        if data.unavailable:
            log["unavailable"] = "; ".join(f"{u.key.name}: {u.reason}" for u in data.unavailable)
        return Outcome(cards, log)

    def decide(
        self,
        vitamin_d: VitaminDAssessment,
        electrolytes: ElectrolyteAssessment | None,
        patient_id: str,
        as_of: datetime,
        unavailable: list[str] | None = None,
    ) -> list[Card]:
        """The cards for these assessments, most severe first; none when nothing is actionable.
        `electrolytes` is None when they could not be read: no electrolyte card is then possible,
        and the other cards name the `unavailable` data."""
        cards = self._vitamin_d_cards(vitamin_d, patient_id, as_of, unavailable or [])
        if electrolytes is not None:
            cards += self._electrolyte_cards(vitamin_d, electrolytes, patient_id)
        return sorted(cards, key=lambda c: _SEVERITY[c.indicator])

    def _status_label(self, status: Status | None) -> str:
        return self._profile.insufficient_label if status is Status.INSUFFICIENT else str(status)

    def _vitamin_d_cards(
        self, vitamin_d: VitaminDAssessment, patient_id: str, as_of: datetime, unavailable: list[str]
    ) -> list[Card]:
        status_days = self._content.thresholds.windows.vitamin_d_status_days
        history = [result_view(r, old=not within(r, as_of, status_days)) for r in vitamin_d.history]
        status = vitamin_d.status
        if vitamin_d.latest is not None:
            shared: dict[str, Any] = {
                "latest": result_view(vitamin_d.latest),
                "history": history,
                "unreadable": [result_view(r) for r in vitamin_d.unreadable],
                "unavailable": unavailable,
            }
            if status in (Status.DEFICIENT, Status.INSUFFICIENT):
                kind = "vitd-deficient" if status is Status.DEFICIENT else "vitd-insufficient"
                return [self._cards.render(kind, patient_id, status_label=self._status_label(status), **shared)]
            if status in (Status.HIGH, Status.VERY_HIGH):
                return [self._cards.render("vitd-high", patient_id, critical=status is Status.VERY_HIGH, **shared)]
        elif vitamin_d.wrong_test_only:
            wrong = [result_view(r) for r in vitamin_d.wrong_tests]
            return [
                self._cards.render(
                    "vitd-wrong-test",
                    patient_id,
                    latest=wrong[0],
                    wrong_tests=wrong,
                    history=history,
                    unavailable=unavailable,
                )
            ]
        return []

    def _electrolyte_cards(
        self, vitamin_d: VitaminDAssessment, electrolytes: ElectrolyteAssessment, patient_id: str
    ) -> list[Card]:
        cards: list[Card] = []
        if vitamin_d.status in (Status.DEFICIENT, Status.INSUFFICIENT) and electrolytes.not_recent:
            assert vitamin_d.latest is not None
            cards.append(
                self._cards.render(
                    "electrolytes-check",
                    patient_id,
                    order_for=electrolytes.not_recent,
                    missing=self._cards.analyte_names(electrolytes.not_recent),
                    vitamin_d_status=self._status_label(vitamin_d.status),
                    vitamin_d=result_view(vitamin_d.latest),
                    window_days=self._content.thresholds.windows.electrolyte_recent_days,
                    recent=[result_view(f.result) for f in electrolytes.findings],
                )
            )
        if abnormal := electrolytes.abnormal:
            rows = []
            for f in abnormal:
                rows.append(result_view(f.result))
                if f.albumin is not None:
                    rows.append(result_view(f.albumin))
            cards.append(
                self._cards.render(
                    "electrolytes-abnormal",
                    patient_id,
                    critical=any(f.critical for f in abnormal),
                    abnormal=[self._cards.finding_view(f) for f in abnormal],
                    rows=rows,
                )
            )
        return cards
