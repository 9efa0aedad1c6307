"""CDS Hooks 2.0.1 wire models: what EHRs send, what the service answers, and error bodies.

Response models leave optional fields as None and `dump()` drops them, because the specification
forbids nulls and empty arrays or objects in responses (`"cards": []` excepted).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refused here (400), not at the database (500)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


# Stored text from a caller.
Text = Annotated[str, AfterValidator(_no_nul)]
# A bearer token is visible ASCII (RFC 6750's b64token, leniently): anything else cannot be sent in
# an HTTP header.
BearerToken = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]+$")]


def is_fhir_id(value: str) -> bool:
    """An id that can stand in a FHIR URL path as one resource's id: not dots alone (`..` would
    climb to the server's base and turn a read into a search of every patient), no slash, percent,
    query, fragment, comma (a search's "or": `p1,p2` is two patients) or semicolon (a path
    parameter: `..;` is `..` to Tomcat), no space or control character, not a `$` operation or a
    `_` path (`$everything`, `_history`), at most 64 characters. Other characters pass (the
    specification's own example ids hold U+2011)."""
    return (
        0 < len(value) <= 64
        and value.strip(".") != ""
        and value[0] not in "$_"
        and not any(c in "/%?#\\,;" or c.isspace() or ord(c) < 32 for c in value)
    )


def _fhir_id(value: str) -> str:
    if not is_fhir_id(value):
        raise ValueError(
            "is not a FHIR id (at most 64 characters; no slash, percent sign, '?', '#', ',', ';' or space; "
            "not dots alone; not starting with '$' or '_')"
        )
    return value


FhirId = Annotated[str, StringConstraints(min_length=1), AfterValidator(_fhir_id)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class RequestError(Exception):
    """A request the service cannot accept: answered 400 with an OperationOutcome naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- requests -----------------------------------------------------------------------------------


def _bearer(value: str) -> str:
    """CDS Hooks 2.0.1 fixes `token_type` to "Bearer"; OAuth 2.0 (RFC 6749, 5.1) compares token
    types case-insensitively, so "bearer" (as some authorization servers write it) is the same."""
    if value.lower() != "bearer":
        raise ValueError("must be Bearer")
    return "Bearer"


class FhirAuthorization(_Wire):
    access_token: BearerToken
    token_type: Annotated[str, AfterValidator(_bearer)]
    expires_in: int
    scope: NonEmpty
    subject: NonEmpty
    patient: str | None = None

    def __repr__(self) -> str:  # never let a token reach a log line through a repr
        return "FhirAuthorization(...)"


class HookRequest(_Wire):
    hook: NonEmpty
    hookInstance: UUID
    fhirServer: AnyUrl | None = None  # which servers may be contacted is fhir/client.py's call
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("fhirAuthorization")
    @classmethod
    def _server_with_token(cls, value: FhirAuthorization | None, info: ValidationInfo) -> FhirAuthorization | None:
        if value is not None and info.data.get("fhirServer") is None:
            raise ValueError("needs fhirServer beside it")
        return value


class PatientViewContext(_Wire):
    userId: NonEmpty
    patientId: FhirId
    encounterId: NonEmpty | None = None


# The draft orders an order hook reads: more than a clinician signs at once (an admission order set
# is some tens), few enough that the cards they can draw stay a readable answer (docs/settings.md).
DRAFT_LIMIT = 250


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        entries = value.get("entry", [])
        if value.get("resourceType") != "Bundle" or not isinstance(entries, list):
            raise ValueError("must be a FHIR Bundle")
        if len(entries) > DRAFT_LIMIT:
            raise ValueError(f"holds {len(entries)} entries; at most {DRAFT_LIMIT} draft orders are read")
        return value


class OrderSelectContext(OrderSignContext):
    selections: Annotated[list[NonEmpty], Field(min_length=1)]


class AcceptedSuggestion(_Wire):
    id: UUID


# Feedback is bounded before the database sees it (the same on SQLite and PostgreSQL), each field to
# what the feedback table holds; a longer value is a 400 naming the field (docs/feedback.md).
USER_COMMENT_LIMIT = 4000


class FeedbackCoding(_Wire):
    system: Annotated[Text, StringConstraints(max_length=500)] | None = None
    code: Annotated[Text, StringConstraints(min_length=1, max_length=200)]
    display: Annotated[Text, StringConstraints(max_length=500)] | None = None


class OverrideReason(_Wire):
    reason: FeedbackCoding | None = None
    userComment: Annotated[Text, StringConstraints(max_length=USER_COMMENT_LIMIT)] | None = None


class FeedbackEntry(_Wire):
    card: UUID
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: Annotated[list[AcceptedSuggestion], Field(max_length=100)] | None = Field(
        default=None, validate_default=True
    )
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @field_validator("acceptedSuggestions")
    @classmethod
    def _with_accepted(
        cls, value: list[AcceptedSuggestion] | None, info: ValidationInfo
    ) -> list[AcceptedSuggestion] | None:
        """CDS Hooks 2.0.1, Feedback: acceptedSuggestions is "Required for `accepted` outcomes" (a
        card without suggestions, or a suggestion without a uuid, is never reported accepted)."""
        if info.data.get("outcome") == "accepted" and not value:
            raise ValueError("is required when the outcome is accepted: the suggestions the clinician accepted")
        return value

    @field_validator("outcomeTimestamp", mode="before")
    @classmethod
    def _instant_text(cls, value: object) -> object:
        """A FHIR instant is text with a date and a time ("2026-11-25T10:00:00Z"): a number, or
        digits alone, is not one (pydantic would read either as Unix seconds)."""
        if not isinstance(value, str) or "T" not in value:
            raise ValueError("must be an instant, such as 2026-11-25T10:00:00Z")
        return value

    @field_validator("outcomeTimestamp")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Stored in UTC: an instant that has none (0001-01-01T00:00+05:00) is refused, not a 500."""
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("not an instant that can be expressed in UTC") from None

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackEntry:
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("an accepted card has no overrideReason")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("an overridden card has no acceptedSuggestions")
        return self


class FeedbackRequest(_Wire):
    feedback: Annotated[list[FeedbackEntry], Field(min_length=1, max_length=1000)]


# --- responses ----------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Coding(_Response):
    system: str | None = None
    code: str
    display: str | None = None


class Source(_Response):
    label: NonEmpty
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Response):
    type: Literal["create", "update", "delete"]
    description: NonEmpty
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(_Response):
    label: NonEmpty
    uuid: UUID
    isRecommended: bool | None = None
    actions: Annotated[list[Action], Field(min_length=1)] | None = None


class Link(_Response):
    label: NonEmpty
    url: NonEmpty
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Response):
    uuid: UUID
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: Annotated[list[Suggestion], Field(min_length=1)] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: Annotated[list[Coding], Field(min_length=1)] | None = None
    links: Annotated[list[Link], Field(min_length=1)] | None = None
    extension: dict[str, Any] | None = None

    # What the card was built on (its results, as the card shows them), set by the renderer and
    # worked out only when asked (only snoozing asks); never sent. A snooze binds to it through a
    # keyed digest (pseudonyms.py).
    _basis: Callable[[], str] | None = PrivateAttr(default=None)

    @property
    def evidence(self) -> str:
        return self._basis() if self._basis is not None else ""

    def built_on(self, basis: Callable[[], str]) -> Card:
        self._basis = basis
        return self

    @model_validator(mode="after")
    def _selection_with_suggestions(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required whenever there are suggestions")
        return self


class CdsResponse(_Response):
    cards: list[Card]


class ServiceDefinition(_Response):
    hook: str
    id: str
    title: str | None = None
    description: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(_Response):
    services: list[ServiceDefinition]


class FeedbackAnswer(_Response):
    received: int  # entries in the request
    new: int  # entries not stored before (a repeated entry is stored once)
    # entries about cards issued to another EHR's call: not stored, acting on nothing (no snooze)
    issued_to_another_ehr: int | None = None


class Status(_Response):
    status: str
    content: str | None = None  # /readyz: the content version in use


# --- errors -------------------------------------------------------------------------------------


class Issue(_Response):
    severity: Literal["fatal", "error", "warning", "information"]
    code: NonEmpty
    diagnostics: NonEmpty
    expression: Annotated[list[NonEmpty], Field(min_length=1)] | None = None


class OperationOutcome(_Response):
    """The error body, documented; `operation_outcome` builds it."""

    resourceType: Literal["OperationOutcome"]
    issue: Annotated[list[Issue], Field(min_length=1)]


def operation_outcome(code: str, diagnostics: str, expression: list[str] | None = None) -> dict[str, Any]:
    """A FHIR OperationOutcome, the error body CDS Hooks 3.0 adopts; diagnostics never echo input."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}
