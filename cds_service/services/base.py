"""What every CDS service offers the app: a discovery entry, its prefetch, its answer to a hook call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from ..content.wording import and_list
from ..fhir.client import FhirClient
from ..fhir.prefetch import PrefetchKey
from ..protocol import Card, HookRequest, RequestError, ServiceDefinition
from ..validation import first

_Context = TypeVar("_Context", bound=BaseModel)

Clock = Callable[[], datetime]  # the instant recency is judged at; tests pin it


@dataclass(frozen=True)
class Outcome:
    """A service's answer and what the log line may say about it (counts, never data)."""

    cards: list[Card]  # shown
    log: dict[str, Any] = field(default_factory=dict)  # counts and reasons, never patient data
    silent: list[Card] = field(default_factory=list)  # decided, recorded, never shown


def outcome(cards: list[Card], log: dict[str, Any], silent_kinds: frozenset[str]) -> Outcome:
    """The cards to show and those of the kinds that run silent."""
    if not silent_kinds:
        return Outcome(cards, log)
    shown = [c for c in cards if kind_of(c) not in silent_kinds]
    return Outcome(shown, log, [c for c in cards if kind_of(c) in silent_kinds])


def kind_of(card: Card) -> str:
    return card.source.topic.code if card.source.topic is not None else "unknown"


class CdsService(Protocol):
    id: str
    hook: str
    title: str
    description: str
    prefetch: tuple[PrefetchKey, ...]

    @property
    def context_model(self) -> type[BaseModel]:
        """The hook's context, as parse_context reads it (and the OpenAPI document describes it)."""
        ...

    async def answer(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome: ...


def definition(service: CdsService) -> ServiceDefinition:
    """The service's discovery entry."""
    return ServiceDefinition(
        hook=service.hook,
        id=service.id,
        title=service.title,
        description=service.description,
        prefetch={k.name: k.template for k in service.prefetch},
        usageRequirements=usage_requirements(service),
    )


def usage_requirements(service: CdsService) -> str:
    """What an EHR must give the service (CDS Hooks 2.0.1, Discovery: "Human-friendly description
    of any preconditions for the use of this CDS Service"), from its prefetch keys: the JWT, the
    data or the FHIR access to read it, and where feedback goes."""
    read = {k.template.partition("?")[0].partition("/")[0] for k in service.prefetch}
    if "MedicationRequest" in read:  # a medicine named only by reference is read as Medication/<id>
        read.add("Medication")
    needed = [k.purpose for k in service.prefetch if k.required]
    return (
        "Every call (discovery included) carries a JWT signed by an issuer this deployment trusts. "
        "Data: the prefetch keys, or for those not prefetched a fhirServer with a fhirAuthorization "
        f"whose token may read {and_list(sorted(read))} for this patient (patient/<type>.read or .rs)"
        + (f"; without {and_list(needed)} the call is answered 412. " if needed else ". ")
        + f"Feedback on its cards goes to cds-services/{service.id}/feedback: the suggestions accepted, "
        "or the override reason chosen from those the card offers."
    )


def parse_context(model: type[_Context], request: HookRequest) -> _Context:
    """The hook's context, or a 400 naming the field (`context.patientId`). A token bound to
    another patient than the context's (CDS Hooks 2.0.1, "Passing the Access Token to the CDS
    Service": `patient` is the patient the token is restricted to) is refused before any query is
    made with it, whatever its scopes."""
    try:
        context = model.model_validate(request.context)
    except ValidationError as exc:
        raise RequestError(*first(exc, within="context")) from None
    bound = request.fhirAuthorization.patient if request.fhirAuthorization else None
    if bound is not None and bound != getattr(context, "patientId", None):
        raise RequestError("fhirAuthorization.patient", "is not context.patientId: the token is for another patient")
    return context
