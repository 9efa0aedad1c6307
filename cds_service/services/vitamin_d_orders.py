"""`vitamin-d-order-select` and `vitamin-d-order-sign`: the moment a clinician orders vitamin D
tests or vitamin D itself. Duplicate and wrong tests, and vitamin D while levels or calcium are
already high."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ..cards import CardRenderer
from ..clinical.results import age_in_days, within
from ..clinical.vitamin_d import Status
from ..fhir.client import FhirClient
from ..fhir.medications import bare_references, read_referenced
from ..fhir.orders import DraftOrder, DraftOrderReader
from ..protocol import (
    Card,
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    Suggestion,
)
from .base import Outcome, outcome, parse_context
from .queries import CONDITIONS, ELECTROLYTES, MEDICATIONS, VITAMIN_D
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
            "while another is active."
        )
        self._record = record
        self._content = record.content
        self._cards = cards
        self._silent = silent  # the card kinds that run silent
        self._drafts = DraftOrderReader(record.content, record.accept_opt_in)
        self.prefetch = record.prefetch(VITAMIN_D, ELECTROLYTES, CONDITIONS, MEDICATIONS)

    async def answer(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome:
        context = parse_context(self.context_model, request)
        selections = context.selections if isinstance(context, OrderSelectContext) else None
        deadline = fhir.deadline()
        entries = [e.get("resource") for e in context.draftOrders.get("entry", []) if isinstance(e, dict)]
        medications = await read_referenced(bare_references(entries), request, fhir, deadline)
        drafts = self._drafts.read(context.draftOrders, selections, medications)
        if not drafts:  # nothing about vitamin D is being ordered: no need to read the record
            return Outcome([], {"drafts": 0})
        record = await self._record.read(request, self.prefetch, fhir, context.patientId, as_of, deadline)
        cards = [card for draft in drafts for card in self._cards_for(draft, record, context, as_of)]
        return outcome(by_severity(cards), record.log | {"drafts": len(drafts)}, self._silent)

    def _cards_for(self, draft: DraftOrder, record: Record, context: OrderSignContext, as_of: datetime) -> list[Card]:
        shared: dict[str, Any] = {"context": record.context, "unavailable": record.unavailable}
        found: list[Card | None]
        if draft.kind == "vitamin_d_test":
            found = [self._duplicate(draft, record, context.patientId, as_of, shared)]
        elif draft.kind == "dihydroxy_test":
            found = [None if record.context.ckd_advanced else self._dihydroxy(draft, record, context, shared)]
        else:
            found = [
                self._supplement_caution(draft, record, context.patientId, shared),
                self._duplicate_therapy(draft, record, context.patientId, shared),
            ]
        return [card for card in found if card is not None]

    def _duplicate(
        self, draft: DraftOrder, record: Record, patient_id: str, as_of: datetime, shared: dict[str, Any]
    ) -> Card | None:
        latest = record.vitamin_d.latest
        window = self._content.thresholds.windows.repeat_test_days
        if latest is None or latest.effective is None or not within(latest, as_of, window):
            return None
        return self._cards.render(
            "vitd-duplicate-order",
            patient_id,
            suggestions=self._remove(draft, "vitd-duplicate-order"),
            latest=self._cards.view(latest),
            history=[self._cards.view(r) for r in record.vitamin_d.history],
            days_ago=age_in_days(latest, as_of),
            window_days=window,
            **shared,
        )

    def _dihydroxy(self, draft: DraftOrder, record: Record, context: OrderSignContext, shared: dict[str, Any]) -> Card:
        suggestion = self._cards.replace_suggestion(
            "vitd-order-1-25",
            draft.reference,
            draft.references.get("subject", {"reference": f"Patient/{context.patientId}"}),
            **{k: v for k, v in draft.references.items() if k in ("requester", "encounter")},
        )
        return self._cards.render(
            "vitd-order-1-25",
            context.patientId,
            suggestions=[suggestion],
            conditions_unknown=not record.conditions_known,
            **shared,
        )

    def _remove(self, draft: DraftOrder, kind: str) -> list[Suggestion] | None:
        """The card's suggestion to delete the draft, when the draft has an id to name."""
        return [self._cards.delete_suggestion(kind, draft.reference)] if draft.reference is not None else None

    def _supplement_caution(
        self, draft: DraftOrder, record: Record, patient_id: str, shared: dict[str, Any]
    ) -> Card | None:
        """Any vitamin D product while the latest 25(OH)D is high or the deciding calcium is above
        range; critical past very high 25(OH)D or a critical calcium."""
        vitamin_d = record.vitamin_d
        high, high_status = vitamin_d.high or (None, None)
        calcium = record.electrolytes.hypercalcaemia if record.electrolytes else None
        if high is None and calcium is None:
            return None
        rows = ([self._cards.view(high)] if high else []) + (self._cards.finding_rows(calcium) if calcium else [])
        return self._cards.render(
            "vitd-supplement-caution",
            patient_id,
            critical=high_status is Status.VERY_HIGH or (calcium is not None and calcium.critical),
            suggestions=self._remove(draft, "vitd-supplement-caution"),
            medication=draft.product,
            vitamin_d=self._cards.view(high) if high else None,
            vitamin_d_status=str(high_status),
            calcium=self._cards.finding_view(calcium) if calcium else None,
            rows=rows,
            **shared,
        )

    def _duplicate_therapy(
        self, draft: DraftOrder, record: Record, patient_id: str, shared: dict[str, Any]
    ) -> Card | None:
        """A vitamin D product drafted while another is active on the medication list."""
        active = record.context.vitamin_d_products
        if not active:
            return None
        return self._cards.render(
            "vitd-duplicate-therapy",
            patient_id,
            suggestions=self._remove(draft, "vitd-duplicate-therapy"),
            medication=draft.product,
            active=active,
            **shared,
        )
