"""`vitamin-d-cramps` (patient-view): vitamin D status and the cramp-related electrolytes."""

from __future__ import annotations

from datetime import datetime

from ..clinical.card_plan import Planned, plan_chart
from ..clinical.electrolytes import Finding
from ..clinical.patient import is_minor
from ..clinical.results import within
from ..clinical.vitamin_d import Status
from ..content.wording import and_list
from ..fhir.client import FhirClient
from ..protocol import Card, HookRequest, PatientViewContext
from ..rendering import CardRenderer
from ..rendering.inputs import (
    CardInput,
    ElectrolytesAbnormal,
    ElectrolytesCheck,
    HighVitaminD,
    LowVitaminD,
    WrongTest,
)
from ..rendering.views import ResultView
from .base import Outcome, outcome, parse_context
from .queries import (
    CONDITIONS_KEY,
    ELECTROLYTES_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
    PENDING_ORDERS_KEY,
    VITAMIN_D_KEY,
)
from .record import Record, RecordReader

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def by_severity(cards: list[Card]) -> list[Card]:
    return sorted(cards, key=lambda c: _SEVERITY[c.indicator])


class VitaminDCramps:
    id = "vitamin-d-cramps"
    hook = "patient-view"
    context_model = PatientViewContext
    title = "Vitamin D and leg cramps"
    reads = (PATIENT_KEY, VITAMIN_D_KEY, ELECTROLYTES_KEY, CONDITIONS_KEY, MEDICATIONS_KEY, PENDING_ORDERS_KEY)

    def __init__(self, record: RecordReader, cards: CardRenderer, silent: frozenset[str]) -> None:
        self._record = record
        self._content = record.content
        self._profile = record.profile
        self._cards = cards
        self._silent = silent  # the card kinds that run silent
        analytes = self._content.analytes
        flagged, with_cramps, with_deficiency = (
            and_list(cards.analyte_names(keys))
            for keys in (analytes.judged, analytes.checked("cramps"), analytes.checked("deficient"))
        )
        self.description = (  # the analytes as the content lists them
            "Classifies the latest serum 25-hydroxyvitamin D of an adult and suggests a supplementation review "
            "when it is low (never with high calcium, in pregnancy, or once treatment has begun) or a review "
            f"when it is high, flags {flagged} out of range, and suggests checking {with_cramps} when leg cramps "
            f"are documented, or {with_deficiency} with vitamin D deficiency, and no recent result or pending "
            "order exists."
        ) + (" Its cards link to a SMART app that shows the trend behind them." if cards.trend_url else "")
        self.prefetch = record.prefetch(*self.reads)

    async def answer(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = parse_context(self.context_model, request)
        record = await self._record.read(request, self.prefetch, fhir, context.patientId, as_of)
        return outcome(self.decide(record, context.patientId, as_of), record.log, self._silent)

    def decide(self, record: Record, patient_id: str, as_of: datetime) -> list[Card]:
        """The cards for this record, most severe first; none when nothing is actionable. Which
        cards, and what each carries, is the plan's (clinical/card_plan.py); this renders them."""
        minor = is_minor(record.birth, as_of, self._content.thresholds.adult_age_years)
        plan = plan_chart(
            record.vitamin_d,
            record.electrolytes,
            record.context,
            self._content.analytes,
            minor=minor,
            pending=record.pending,
            silent=self._silent,
        )
        return by_severity([self._render(planned, record, patient_id, as_of) for planned in plan])

    def _render(self, planned: Planned, record: Record, patient_id: str, as_of: datetime) -> Card:
        shared = CardInput(
            critical=planned.critical,
            context=record.context,
            unavailable=record.unavailable,
            age_unknown=record.birth is None,
        )
        kind = planned.kind
        if kind in ("vitd-deficient", "vitd-insufficient", "vitd-high"):
            return self._status_card(planned, record, patient_id, as_of, shared)
        if kind == "vitd-wrong-test":
            vitamin_d = record.vitamin_d
            wrong = [self._cards.view(r) for r in vitamin_d.wrong_tests]
            inputs: CardInput = WrongTest(
                **vars(shared), latest=wrong[0], wrong_tests=wrong, history=self._history(record, as_of)
            )
            return self._cards.render(kind, patient_id, inputs)
        if kind == "electrolytes-check":
            return self._check_card(planned, record, patient_id, shared)
        return self._abnormal_card(planned, record, patient_id, shared)

    def _history(self, record: Record, as_of: datetime) -> list[ResultView]:
        status_days = self._content.thresholds.windows.vitamin_d_status_days
        return [self._cards.view(r, old=not within(r, as_of, status_days)) for r in record.vitamin_d.history]

    def _status_label(self, status: Status | None) -> str:
        return self._profile.insufficient_label if status is Status.INSUFFICIENT else str(status)

    def _calcium(self, record: Record) -> Finding | None:
        return record.electrolytes.hypercalcaemia if record.electrolytes is not None else None

    def _status_card(
        self, planned: Planned, record: Record, patient_id: str, as_of: datetime, shared: CardInput
    ) -> Card:
        """A low or high vitamin D card; a high one shows a newer unreadable 25(OH)D as superseding it."""
        vitamin_d = record.vitamin_d
        hypercalcaemia = self._calcium(record)
        cards = self._cards
        common = {
            **vars(shared),
            "history": self._history(record, as_of),
            "unreadable": [cards.view(r) for r in vitamin_d.unreadable],
            "calcium": cards.finding_view(hypercalcaemia, record.context) if hypercalcaemia else None,
            "rows": cards.finding_rows(hypercalcaemia) if hypercalcaemia else [],
            "show_cramps": planned.show_cramps,
        }
        if planned.kind == "vitd-high":
            assert vitamin_d.high is not None
            result, status = vitamin_d.high
            inputs: CardInput = HighVitaminD(
                **common,
                latest=cards.view(result),
                very_high=status is Status.VERY_HIGH,
                superseded_by=common["unreadable"][0] if vitamin_d.blocked else None,
            )
            return cards.render(planned.kind, patient_id, inputs)
        assert vitamin_d.latest is not None and planned.remark is not None
        inputs = LowVitaminD(
            **common,
            latest=cards.view(vitamin_d.latest),
            status_label=self._status_label(vitamin_d.status),
            remark=planned.remark,
            evidence=planned.evidence,
        )
        return cards.render(planned.kind, patient_id, inputs, hypercalcaemia=hypercalcaemia is not None)

    def _vitamin_d_unreadable(self, record: Record) -> list[ResultView]:
        vitamin_d = record.vitamin_d
        return [self._cards.view(r) for r in vitamin_d.unreadable] if vitamin_d.blocked else []

    def _check_card(self, planned: Planned, record: Record, patient_id: str, shared: CardInput) -> Card:
        """The check card for what is wanted and not already pending; its data table shows the
        recent results of what it checks."""
        assert record.electrolytes is not None
        electrolytes, cards = record.electrolytes, self._cards
        to_order = planned.order_for
        checked = {a for a in self._content.analytes.judged if self._content.analytes.analytes[a].check}
        unreadable = dict(electrolytes.unreadable)
        vitamin_d = record.vitamin_d
        inputs = ElectrolytesCheck(
            **vars(shared),
            checking=cards.analyte_names(to_order),
            missing=cards.analyte_names(e for e in to_order if e not in unreadable),
            unreadable=[cards.view(unreadable[e]) for e in to_order if e in unreadable],
            unreadable_names=cards.analyte_names(e for e in to_order if e in unreadable),
            pending=cards.analyte_names(planned.pending),
            vitamin_d_status=self._status_label(vitamin_d.status),
            vitamin_d=cards.view(vitamin_d.latest) if vitamin_d.latest else None,
            vitamin_d_unreadable=self._vitamin_d_unreadable(record),
            diuretics=record.context.electrolyte_drugs,
            window_days=self._content.thresholds.windows.electrolyte_recent_days,
            recent=[cards.view(f.result) for f in electrolytes.findings if f.electrolyte in checked],
            evidence=planned.evidence,
        )
        return cards.render(planned.kind, patient_id, inputs, order_for=to_order)

    def _abnormal_card(self, planned: Planned, record: Record, patient_id: str, shared: CardInput) -> Card:
        """Values outside their range. The card rests on the range; it cites the leg-cramp article
        only beside the cramp remark, and a medicine list's sources only beside the medicines it
        names (rulebook, "electrolytes-abnormal")."""
        views = [self._cards.finding_view(f, record.context) for f in planned.abnormal]
        cite = ["aafp-2012"] if planned.cramp_remark else []
        for view in views:
            if view.medicines:
                cite += self._content.cause_sources(view.electrolyte, view.flag)
        inputs = ElectrolytesAbnormal(
            **vars(shared),
            abnormal=views,
            cramp_remark=planned.cramp_remark,
            show_cramps=planned.show_cramps,
            rows=[row for f in planned.abnormal for row in self._cards.finding_rows(f)],
            vitamin_d_unreadable=self._vitamin_d_unreadable(record),
        )
        return self._cards.render(planned.kind, patient_id, inputs, order_for=planned.order_for, cite=cite)
