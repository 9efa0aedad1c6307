"""`vitamin-d-cramps` (patient-view): vitamin D status and the cramp-related electrolytes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..cards import CardRenderer
from ..clinical.cramp_context import CrampContext
from ..clinical.electrolytes import ElectrolyteAssessment, Finding, to_check
from ..clinical.patient import is_minor
from ..clinical.results import LabResult, within
from ..clinical.vitamin_d import Status, VitaminDAssessment, treatment_begun
from ..fhir.client import FhirClient
from ..protocol import Card, HookRequest, PatientViewContext
from .base import Outcome, outcome, parse_context
from .queries import CONDITIONS, ELECTROLYTES, MEDICATIONS, PATIENT, PENDING_ORDERS, VITAMIN_D
from .record import Record, RecordReader

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def by_severity(cards: list[Card]) -> list[Card]:
    return sorted(cards, key=lambda c: _SEVERITY[c.indicator])


class VitaminDCramps:
    id = "vitamin-d-cramps"
    hook = "patient-view"
    context_model = PatientViewContext
    title = "Vitamin D and leg cramps"
    description = (
        "Classifies the latest serum 25-hydroxyvitamin D of an adult and suggests a supplementation review "
        "when it is low (never with high calcium, in pregnancy, or once treatment has begun) or a review "
        "when it is high, flags potassium, magnesium and calcium out of range, and suggests checking "
        "them when leg cramps are documented, or calcium with vitamin D deficiency, and no recent "
        "result or pending order exists."
    )

    def __init__(self, record: RecordReader, cards: CardRenderer, silent: frozenset[str]) -> None:
        self._record = record
        self._content = record.content
        self._profile = record.profile
        self._cards = cards
        self._silent = silent  # the card kinds that run silent
        self.prefetch = record.prefetch(PATIENT, VITAMIN_D, ELECTROLYTES, CONDITIONS, MEDICATIONS, PENDING_ORDERS)

    async def answer(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = parse_context(self.context_model, request)
        record = await self._record.read(request, self.prefetch, fhir, context.patientId, as_of)
        return outcome(self.decide(record, context.patientId, as_of), record.log, self._silent)

    def decide(self, record: Record, patient_id: str, as_of: datetime) -> list[Card]:
        """The cards for this record, most severe first; none when nothing is actionable. Under the
        adult age only the wrong-test card can fire (the cut-points and ranges are adult ones).
        When the electrolytes could not be read, no electrolyte card is possible, and the other
        cards name the data that was unavailable."""
        shared = {"context": record.context, "unavailable": record.unavailable, "age_unknown": record.birth is None}
        minor = is_minor(record.birth, as_of, self._content.thresholds.adult_age_years)
        electrolytes = record.electrolytes
        hypercalcaemia = electrolytes.hypercalcaemia if electrolytes is not None else None
        vitamin_d = record.vitamin_d
        wanted = self._wanted(record, electrolytes) if electrolytes is not None and not minor else ()
        to_order = tuple(e for e in wanted if e not in record.pending)
        treated = vitamin_d.latest is not None and treatment_begun(record.context.vitamin_d_started, vitamin_d.latest)
        low = vitamin_d.status in (Status.DEFICIENT, Status.INSUFFICIENT) and not treated
        # What is said once goes on a card that is shown (a kind may run silent): the evidence
        # sentence in the card it concerns most (the check when cramps are its reason), the cramp
        # context in one card.
        shown = self._shown
        check = bool(to_order) and shown("electrolytes-check")
        low = low and shown("vitd-deficient" if vitamin_d.status is Status.DEFICIENT else "vitd-insufficient")
        status_card = low or (vitamin_d.high is not None and shown("vitd-high"))
        evidence_on_check = check and (record.context.cramps or not low)
        cards = self._vitamin_d_cards(
            vitamin_d,
            hypercalcaemia,
            record.context,
            treated,
            patient_id,
            as_of,
            shared | {"evidence": low and not evidence_on_check, "show_cramps": not check},
        )
        if minor:  # the wrong-test card, which holds no adult cut-point, and critical values at any age
            cards = cards if vitamin_d.wrong_test_only else []
            if electrolytes is not None and (critical := [f for f in electrolytes.abnormal if f.critical]):
                cards.append(self._abnormal_card(record, critical, patient_id, shared | {"show_cramps": False}))
            return by_severity(cards)
        if electrolytes is not None:
            blocked = [self._cards.view(r) for r in vitamin_d.unreadable] if vitamin_d.blocked else []
            cards += self._electrolyte_cards(
                record,
                electrolytes,
                wanted,
                to_order,
                patient_id,
                shared
                | {"vitamin_d_unreadable": blocked, "evidence": evidence_on_check, "show_cramps": not status_card},
            )
        return by_severity(cards)

    def _shown(self, kind: str) -> bool:
        return kind not in self._silent

    @staticmethod
    def _wanted(record: Record, electrolytes: ElectrolyteAssessment) -> tuple[str, ...]:
        return to_check(
            electrolytes,
            cramps=record.context.cramps,
            deficient=record.vitamin_d.status is Status.DEFICIENT,
            on_loop_or_thiazide=bool(record.context.electrolyte_drugs),
        )

    def _status_label(self, status: Status | None) -> str:
        return self._profile.insufficient_label if status is Status.INSUFFICIENT else str(status)

    @staticmethod
    def _low_remark(context: CrampContext, hypercalcaemia: Finding | None) -> str:
        """The one remark a low vitamin D card makes, most pressing first (catalogue.yaml)."""
        if hypercalcaemia is not None:
            return "hypercalcaemia"
        if context.ckd_advanced:
            return "ckd"
        if context.pregnant:
            return "pregnancy"
        return "on_treatment" if context.vitamin_d_products else "review"

    def _vitamin_d_cards(
        self,
        vitamin_d: VitaminDAssessment,
        hypercalcaemia: Finding | None,
        context: CrampContext,
        treated: bool,
        patient_id: str,
        as_of: datetime,
        shared: dict[str, Any],
    ) -> list[Card]:
        """The vitamin D status or wrong-test card; none for a low result once treatment has begun."""
        status_days = self._content.thresholds.windows.vitamin_d_status_days
        history = [self._cards.view(r, old=not within(r, as_of, status_days)) for r in vitamin_d.history]
        values = {
            "history": history,
            "unreadable": [self._cards.view(r) for r in vitamin_d.unreadable],
            "calcium": self._cards.finding_view(hypercalcaemia, context) if hypercalcaemia else None,
            "rows": self._cards.finding_rows(hypercalcaemia) if hypercalcaemia else [],
            **shared,
        }
        calcium_critical = hypercalcaemia is not None and hypercalcaemia.critical
        status, latest = vitamin_d.status, vitamin_d.latest
        if latest is not None and status in (Status.DEFICIENT, Status.INSUFFICIENT):
            if treated:
                return []
            return [
                self._cards.render(
                    "vitd-deficient" if status is Status.DEFICIENT else "vitd-insufficient",
                    patient_id,
                    critical=calcium_critical,
                    hypercalcaemia=hypercalcaemia is not None,
                    status_label=self._status_label(status),
                    remark=self._low_remark(context, hypercalcaemia),
                    latest=self._cards.view(latest),
                    **values,
                )
            ]
        if (high := vitamin_d.high) is not None:  # the deciding result, or the one before an unreadable repeat
            return [self._high_card(high, vitamin_d.blocked, calcium_critical, patient_id, values)]
        if vitamin_d.wrong_test_only:
            wrong = [self._cards.view(r) for r in vitamin_d.wrong_tests]
            return [
                self._cards.render(
                    "vitd-wrong-test", patient_id, latest=wrong[0], wrong_tests=wrong, history=history, **shared
                )
            ]
        return []

    def _high_card(
        self,
        high: tuple[LabResult, Status],
        blocked: bool,
        calcium_critical: bool,
        patient_id: str,
        values: dict[str, Any],
    ) -> Card:
        """`blocked`: an unreadable repeat came after `high`, which the card shows as superseded."""
        result, high_status = high
        very_high = high_status is Status.VERY_HIGH
        # Vitamin D taken while calcium is above range: a toxicity to stop now (rulebook, "vitd-high").
        toxic = values["calcium"] is not None and bool(values["context"].vitamin_d_supplements)
        return self._cards.render(
            "vitd-high",
            patient_id,
            critical=very_high or calcium_critical or toxic,
            very_high=very_high,
            latest=self._cards.view(result),
            superseded_by=values["unreadable"][0] if blocked else None,
            **values,
        )

    def _electrolyte_cards(
        self,
        record: Record,
        electrolytes: ElectrolyteAssessment,
        wanted: tuple[str, ...],
        to_order: tuple[str, ...],
        patient_id: str,
        shared: dict[str, Any],
    ) -> list[Card]:
        """The check card for `to_order` (what is wanted and not already pending), and the card of
        abnormal values."""
        cards: list[Card] = []
        unreadable = dict(electrolytes.unreadable)
        if to_order:
            vitamin_d = record.vitamin_d
            cards.append(
                self._cards.render(
                    "electrolytes-check",
                    patient_id,
                    order_for=to_order,
                    checking=self._cards.analyte_names(to_order),
                    missing=self._cards.analyte_names(e for e in to_order if e not in unreadable),
                    unreadable=[self._cards.view(unreadable[e]) for e in to_order if e in unreadable],
                    unreadable_names=self._cards.analyte_names(e for e in to_order if e in unreadable),
                    pending=self._cards.analyte_names(e for e in wanted if e in record.pending),
                    vitamin_d_status=self._status_label(vitamin_d.status),
                    vitamin_d=self._cards.view(vitamin_d.latest) if vitamin_d.latest else None,
                    diuretics=record.context.electrolyte_drugs,
                    window_days=self._content.thresholds.windows.electrolyte_recent_days,
                    recent=[self._cards.view(f.result) for f in electrolytes.findings],
                    **shared,
                )
            )
        if abnormal := electrolytes.abnormal:
            cards.append(self._abnormal_card(record, abnormal, patient_id, shared))
        return cards

    def _abnormal_card(
        self, record: Record, abnormal: tuple[Finding, ...] | list[Finding], patient_id: str, shared: dict[str, Any]
    ) -> Card:
        """Values outside their range. The card rests on the range; it cites the leg-cramp article
        only beside the cramp remark (cramps documented, no critical value), and a medicine list's
        sources only beside the medicines it names (rulebook, "electrolytes-abnormal")."""
        critical = any(f.critical for f in abnormal)
        views = [self._cards.finding_view(f, record.context) for f in abnormal]
        cramp_remark = record.context.cramps and not critical
        cite = ["aafp-2012"] if cramp_remark else []
        for view in views:
            if view.medicines:
                cite += self._content.cause_sources(view.electrolyte, view.flag)
        return self._cards.render(
            "electrolytes-abnormal",
            patient_id,
            critical=critical,
            order_for=["calcium"] if any(f.ionized_advised for f in abnormal) else (),
            cite=cite,
            abnormal=views,
            cramp_remark=cramp_remark,
            rows=[row for f in abnormal for row in self._cards.finding_rows(f)],
            **shared,
        )
