"""`vitamin-d-order-select` and `vitamin-d-order-sign`: the moment a clinician orders vitamin D
tests or vitamin D itself. Duplicate and wrong tests, and vitamin D while levels or calcium are
already high."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Literal

from ..clinical.results import age_in_days, within
from ..clinical.vitamin_d import Status
from ..fhir.client import FhirClient
from ..fhir.medications import read_referenced
from ..fhir.orders import DraftOrder, DraftOrderReader
from ..protocol import (
    Card,
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    Suggestion,
)
from ..rendering import CardRenderer
from ..rendering.inputs import (
    CalciumCaution,
    CardInput,
    DihydroxyOrder,
    DuplicateOrder,
    DuplicateTherapy,
    SupplementCaution,
)
from .base import Outcome, outcome, parse_context
from .queries import CONDITIONS_KEY, ELECTROLYTES_KEY, MEDICATIONS_KEY, PENDING_ORDERS_KEY, VITAMIN_D_KEY
from .record import Record, RecordReader
from .vitamin_d_cramps import by_severity

OrderHook = Literal["order-select", "order-sign"]


class VitaminDOrders:
    def __init__(self, record: RecordReader, cards: CardRenderer, silent: frozenset[str], hook: OrderHook) -> None:
        self.hook: str = hook
        self.context_model: type[OrderSignContext] = OrderSelectContext if hook == "order-select" else OrderSignContext
        self.id = f"vitamin-d-{hook}"
        self.title = f"Vitamin D orders ({hook})"
        repeat_days = record.content.thresholds.windows.repeat_test_days
        self.description = (
            "When vitamin D tests or vitamin D are ordered: flags a 25-hydroxyvitamin D test repeated within "
            f"{repeat_days} days of a result, a 1,25-dihydroxyvitamin D test ordered to assess status, any "
            "vitamin D product ordered while 25-hydroxyvitamin D or calcium is already high, and one ordered "
            "while another is active, and calcium ordered while calcium is already high."
        )
        self._record = record
        self._content = record.content
        self._cards = cards
        self._silent = silent  # the card kinds that run silent
        self._drafts = DraftOrderReader(record.content, record.accept_opt_in)
        self.prefetch = record.prefetch(
            VITAMIN_D_KEY, ELECTROLYTES_KEY, CONDITIONS_KEY, MEDICATIONS_KEY, PENDING_ORDERS_KEY
        )

    async def answer(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = parse_context(self.context_model, request)
        selections = context.selections if isinstance(context, OrderSelectContext) else None
        deadline = fhir.deadline()
        entries = [e.get("resource") for e in context.draftOrders.get("entry", []) if isinstance(e, dict)]
        medications = await read_referenced(entries, request, fhir, deadline)
        every = self._drafts.read(context.draftOrders, medications)
        chosen = None if selections is None else set(selections)
        drafts = every if chosen is None else [d for d in every if d.reference in chosen]
        if not drafts:  # nothing about vitamin D is being ordered: no need to read the record
            return Outcome([], {"drafts": 0})
        record = await self._record.read(request, self.prefetch, fhir, context.patientId, as_of, deadline)
        # A 25(OH)D drafted anywhere in the order, selected or not, is being ordered.
        total_drafted = any(d.kind == "vitamin_d_test" for d in every)
        cards = [card for draft in drafts for card in self._cards_for(draft, record, context, as_of, total_drafted)]
        return outcome(by_severity(cards), record.log | {"drafts": len(drafts)}, self._silent)

    def _cards_for(
        self, draft: DraftOrder, record: Record, context: OrderSignContext, as_of: datetime, total_drafted: bool
    ) -> list[Card]:
        # What an order has pending matters to the 1,25-D card's suggestion alone.
        pending = self._record.keys[PENDING_ORDERS_KEY].purpose
        shared = CardInput(context=record.context, unavailable=[u for u in record.unavailable if u != pending])
        found: list[Card | None]
        if draft.kind == "vitamin_d_test":
            found = [self._duplicate(draft, record, context.patientId, as_of, shared)]
        elif draft.kind == "dihydroxy_test":
            found = [
                self._dihydroxy(
                    draft, record, context, as_of, total_drafted, replace(shared, unavailable=record.unavailable)
                )
            ]
        elif draft.kind == "calcium_medication":
            found = [self._calcium_caution(draft, record, context.patientId, shared)]
        else:
            found = [
                self._supplement_caution(draft, record, context.patientId, shared),
                self._duplicate_therapy(draft, record, context.patientId, shared),
            ]
        return [card for card in found if card is not None]

    def _duplicate(
        self, draft: DraftOrder, record: Record, patient_id: str, as_of: datetime, shared: CardInput
    ) -> Card | None:
        latest = record.vitamin_d.latest
        window = self._content.thresholds.windows.repeat_test_days
        if latest is None or latest.effective is None or not within(latest, as_of, window):
            return None
        inputs = DuplicateOrder(
            **vars(shared),
            latest=self._cards.view(latest),
            history=[self._cards.view(r) for r in record.vitamin_d.history],
            days_ago=age_in_days(latest, as_of),
            window_days=window,
        )
        return self._cards.render(
            "vitd-duplicate-order", patient_id, inputs, suggestions=self._remove(draft, "vitd-duplicate-order")
        )

    def _dihydroxy(
        self,
        draft: DraftOrder,
        record: Record,
        context: OrderSignContext,
        as_of: datetime,
        total_drafted: bool,
        shared: CardInput,
    ) -> Card | None:
        """A 1,25-dihydroxyvitamin D order, unless it is the right test: CKD stage 4-5 or dialysis,
        a calcium above range (a hypercalcaemia work-up), a granulomatous disease or
        hypophosphataemia (rulebook, "vitd-order-1-25"). The suggestion drafts a 25(OH)D in its
        place only when none is recent, drafted beside it, or pending."""
        facts = record.context
        hypercalcaemia = record.electrolytes.hypercalcaemia if record.electrolytes else None
        if facts.ckd_advanced or facts.dihydroxy_indications or hypercalcaemia is not None:
            return None
        latest = record.vitamin_d.latest
        window = self._content.thresholds.windows.repeat_test_days
        recent = latest if latest is not None and within(latest, as_of, window) else None
        pending = "vitamin_d" in record.pending
        if recent is None and not total_drafted and not pending:
            suggestions: list[Suggestion] | None = [
                self._cards.replace_suggestion(
                    "vitd-order-1-25",
                    draft.actionable,
                    draft.references.get("subject", {"reference": f"Patient/{context.patientId}"}),
                    **{k: v for k, v in draft.references.items() if k in ("requester", "encounter")},
                )
            ]
        else:
            suggestions = self._remove(draft, "vitd-order-1-25", label="delete_label")
        inputs = DihydroxyOrder(
            **vars(shared),
            recent=self._cards.view(recent) if recent is not None else None,
            drafted=total_drafted,
            pending=pending,
            conditions_unknown=not record.conditions_known,
            calcium_unknown=record.electrolytes is None,
        )
        return self._cards.render("vitd-order-1-25", context.patientId, inputs, suggestions=suggestions)

    def _remove(self, draft: DraftOrder, kind: str, label: str = "suggestion_label") -> list[Suggestion] | None:
        """The card's suggestion to delete the draft, when the draft has an id to name."""
        if draft.actionable is None:
            return None
        return [self._cards.delete_suggestion(kind, draft.actionable, label)]

    def _supplement_caution(self, draft: DraftOrder, record: Record, patient_id: str, shared: CardInput) -> Card | None:
        """Any vitamin D product while the latest 25(OH)D is high or the deciding calcium is above
        range; critical past very high 25(OH)D or a critical calcium."""
        vitamin_d = record.vitamin_d
        high, high_status = vitamin_d.high or (None, None)
        calcium = record.electrolytes.hypercalcaemia if record.electrolytes else None
        if high is None and calcium is None:
            return None
        rows = ([self._cards.view(high)] if high else []) + (self._cards.finding_rows(calcium) if calcium else [])
        assert draft.product is not None
        inputs = SupplementCaution(
            **vars(shared)
            | {"critical": high_status is Status.VERY_HIGH or (calcium is not None and calcium.critical)},
            medication=draft.product.name,
            vitamin_d=self._cards.view(high) if high else None,
            vitamin_d_status=str(high_status),
            calcium=self._cards.finding_view(calcium, record.context) if calcium else None,
            rows=rows,
        )
        return self._cards.render(
            "vitd-supplement-caution", patient_id, inputs, suggestions=self._remove(draft, "vitd-supplement-caution")
        )

    def _calcium_caution(self, draft: DraftOrder, record: Record, patient_id: str, shared: CardInput) -> Card | None:
        """A calcium-only product while the deciding calcium is above range; critical past its
        critical value."""
        calcium = record.electrolytes.hypercalcaemia if record.electrolytes else None
        if calcium is None:
            return None
        assert draft.product is not None
        inputs = CalciumCaution(
            **vars(shared) | {"critical": calcium.critical},
            medication=draft.product.name,
            calcium=self._cards.finding_view(calcium, record.context),
            rows=self._cards.finding_rows(calcium),
        )
        return self._cards.render(
            "calcium-supplement-caution",
            patient_id,
            inputs,
            suggestions=self._remove(draft, "calcium-supplement-caution"),
        )

    def _duplicate_therapy(self, draft: DraftOrder, record: Record, patient_id: str, shared: CardInput) -> Card | None:
        """A vitamin D product drafted while another is active on the medication list."""
        active = record.context.vitamin_d_products
        if not active:
            return None
        inputs = DuplicateTherapy(
            **vars(shared), medication=draft.product.name if draft.product else "", active=list(active)
        )
        return self._cards.render(
            "vitd-duplicate-therapy", patient_id, inputs, suggestions=self._remove(draft, "vitd-duplicate-therapy")
        )
