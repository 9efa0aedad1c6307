"""`vitamin-d-cramps` (patient-view): vitamin D status and the cramp-related electrolytes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..cards import result_view
from ..clinical.context import CrampContext
from ..clinical.electrolytes import ElectrolyteAssessment
from ..clinical.results import within
from ..clinical.vitamin_d import Status, VitaminDAssessment
from ..fhir.client import FhirClient
from ..protocol import Card, HookRequest, PatientViewContext, ServiceDefinition
from .base import Outcome, definition, parse_context
from .record import CONDITIONS, ELECTROLYTES, MEDICATIONS, PATIENT, VITAMIN_D, Record, RecordReader

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def by_severity(cards: list[Card]) -> list[Card]:
    return sorted(cards, key=lambda c: _SEVERITY[c.indicator])


class VitaminDCramps:
    id = "vitamin-d-cramps"
    hook = "patient-view"
    context_model = PatientViewContext
    title = "Vitamin D and leg cramps"
    description = (
        "Classifies the latest serum 25-hydroxyvitamin D and suggests a supplementation review when it is "
        "low or high, and a check of potassium, magnesium and calcium, the electrolytes tied to muscle "
        "cramps, when they are missing, old or out of range, in the light of documented leg cramps, "
        "their other causes and the medicines associated with them."
    )

    def __init__(self, record: RecordReader) -> None:
        self._record = record
        self._content = record.content
        self._profile = record.profile
        self._cards = record.cards
        self.prefetch = record.prefetch(PATIENT, VITAMIN_D, ELECTROLYTES, CONDITIONS, MEDICATIONS)

    def definition(self) -> ServiceDefinition:
        return definition(self)

    async def evaluate(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = parse_context(self.context_model, request)
        record = await self._record.read(request, self.prefetch, fhir, context.patientId, as_of)
        return Outcome(self.decide(record, context.patientId, as_of), record.log)

    def decide(self, record: Record, patient_id: str, as_of: datetime) -> list[Card]:
        """The cards for this record, most severe first; none when nothing is actionable. When the
        electrolytes could not be read, no electrolyte card is possible, and the other cards name
        the data that was unavailable."""
        shared = {"context": record.context, "unavailable": record.unavailable}
        cards = self._vitamin_d_cards(record.vitamin_d, patient_id, as_of, shared)
        if record.electrolytes is not None:
            cards += self._electrolyte_cards(record.vitamin_d, record.electrolytes, record.context, patient_id, shared)
        return by_severity(cards)

    def _status_label(self, status: Status | None) -> str:
        return self._profile.insufficient_label if status is Status.INSUFFICIENT else str(status)

    def _vitamin_d_cards(
        self, vitamin_d: VitaminDAssessment, patient_id: str, as_of: datetime, shared: dict[str, Any]
    ) -> list[Card]:
        status_days = self._content.thresholds.windows.vitamin_d_status_days
        history = [result_view(r, old=not within(r, as_of, status_days)) for r in vitamin_d.history]
        status = vitamin_d.status
        if vitamin_d.latest is not None:
            shared = shared | {
                "latest": result_view(vitamin_d.latest),
                "history": history,
                "unreadable": [result_view(r) for r in vitamin_d.unreadable],
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
                    **shared,
                )
            ]
        return []

    def _electrolyte_cards(
        self,
        vitamin_d: VitaminDAssessment,
        electrolytes: ElectrolyteAssessment,
        context: CrampContext,
        patient_id: str,
        shared: dict[str, Any],
    ) -> list[Card]:
        cards: list[Card] = []
        low = vitamin_d.status in (Status.DEFICIENT, Status.INSUFFICIENT)
        if (low or context.cramps) and electrolytes.not_recent:
            cards.append(
                self._cards.render(
                    "electrolytes-check",
                    patient_id,
                    order_for=electrolytes.not_recent,
                    missing=self._cards.analyte_names(electrolytes.not_recent),
                    vitamin_d_status=self._status_label(vitamin_d.status) if low else None,
                    vitamin_d=result_view(vitamin_d.latest) if low and vitamin_d.latest else None,
                    window_days=self._content.thresholds.windows.electrolyte_recent_days,
                    recent=[result_view(f.result) for f in electrolytes.findings],
                    **shared,
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
                    **shared,
                )
            )
        return cards
