"""Orders: the drafts of order-select and order-sign (`context.draftOrders`), and the tests
already ordered and pending (the `pendingOrders` prefetch).

Only what the cards need: which vitamin D test, vitamin D or calcium product a draft orders, its id
(for a delete action) and the references a replacement order keeps; which analytes a pending order
will measure. A draft without a usable code is ignored, never an error; which drafts are selected on
order-select is the service's business (a 25(OH)D drafted but not selected still counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from ..clinical.cramp_context import Product, product
from ..content.loader import Content
from ..protocol import is_fhir_id
from .facts import medication_fact, medications_by_reference
from .models import CodeableConcept, Lite, MedicationRequest, Read, Reference, Resource, Tally, own, read_as

# The analyte (analytes.yaml) whose draft orders get the vitd-order-1-25 card.
DIHYDROXY = "vitamin_d_dihydroxy"
OrderKind = Literal["vitamin_d_test", "dihydroxy_test", "vitamin_d_medication", "calcium_medication"]


class _ServiceRequest(Lite):
    id: str | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    requester: Reference | None = None
    encounter: Reference | None = None


class _PendingRequest(Resource, kw_only=True):
    status: str
    code: CodeableConcept | None = None


class PendingOrderReader:
    """The analytes that active ServiceRequests of the content's orderable tests will measure."""

    def __init__(self, content: Content) -> None:
        self._loinc = content.analytes.system
        self._covers = {test.code: test.covers for test in content.analytes.orderables.values()}

    def read(self, resources: Iterable[Any], patient_id: str) -> Read[str]:
        tally = Tally()
        analytes: dict[str, None] = {}
        for request in own(resources, "ServiceRequest", _PendingRequest, patient_id, tally):
            if request.status != "active" or request.code is None:
                continue
            for coding in request.code.coding:
                if coding.system == self._loinc and coding.code in self._covers:
                    analytes.update(dict.fromkeys(self._covers[coding.code]))
        return tally.read(analytes)


@dataclass(frozen=True)
class DraftOrder:
    kind: OrderKind
    resource_type: str
    id: str | None
    product: Product | None = None  # the vitamin D and calcium a medication draft orders
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject, requester, encounter

    @property
    def reference(self) -> str | None:
        return f"{self.resource_type}/{self.id}" if self.id else None

    @property
    def actionable(self) -> str | None:
        """The reference a suggestion may act on (delete the draft): only for an id that stands for
        one resource (protocol.is_fhir_id); `../Patient/p1` would lead an EHR to another resource.
        A draft without one is still judged and carded, without that action."""
        return self.reference if self.id is not None and is_fhir_id(self.id) else None


class DraftOrderReader:
    def __init__(self, content: Content, accept_opt_in: bool) -> None:
        analytes = content.analytes
        self._loinc = analytes.system
        self._tests = set(analytes.codes("vitamin_d", "total", "proxy", *(("opt_in",) if accept_opt_in else ())))
        self._dihydroxy = set(analytes.codes(DIHYDROXY))
        self._rxnorm = content.context.systems.rxnorm
        self._rules = content.context

    def read(self, bundle: dict[str, Any], medications: Iterable[dict[str, Any]] = ()) -> list[DraftOrder]:
        """The drafts that order vitamin D tests, vitamin D or calcium products, selected or not; a
        draft's medicationReference is resolved from the Medications in the same Bundle or
        given (read from the FHIR server)."""
        resources = [e.get("resource") for e in bundle.get("entry", []) if isinstance(e, dict)]
        included = medications_by_reference([*resources, *medications])
        drafts: list[DraftOrder] = []
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            try:
                draft = self._draft(resource, included)
            except msgspec.ValidationError:
                continue
            if draft is not None:
                drafts.append(draft)
        return drafts

    def _draft(self, resource: dict[str, Any], included: dict[str, Any]) -> DraftOrder | None:
        kind = resource.get("resourceType")
        if kind == "ServiceRequest":
            request = read_as(_ServiceRequest, resource)
            codes = {c.code for c in request.code.coding if c.system == self._loinc} if request.code else set()
            order: OrderKind | None = (
                "dihydroxy_test" if codes & self._dihydroxy else "vitamin_d_test" if codes & self._tests else None
            )
            if order is None:
                return None
            references = {
                name: msgspec.to_builtins(ref)
                for name, ref in (
                    ("subject", request.subject),
                    ("requester", request.requester),
                    ("encounter", request.encounter),
                )
                if ref is not None and ref.reference
            }
            return DraftOrder(order, kind, request.id, references=references)
        if kind == "MedicationRequest":
            med = read_as(MedicationRequest, resource)
            fact = medication_fact(
                med.medicationCodeableConcept,
                med.medicationReference,
                med.contained,
                self._rxnorm,
                included=included,
                routes=med.routes(),
            )
            held = product(fact, self._rules)
            if held is None:
                return None
            return DraftOrder(
                "vitamin_d_medication" if held.vitamin_d else "calcium_medication", kind, med.id, product=held
            )
        return None
