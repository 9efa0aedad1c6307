"""The few FHIR datatypes the readers validate, and the result of a read.

Only the fields the service reads are modelled (validating whole resources costs far more); a
resource that fails is counted as malformed and skipped, and one about another patient is counted
and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .references import names_patient

T = TypeVar("T")
M = TypeVar("M", bound="Resource")


class Lite(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


Number = Annotated[float, Field(allow_inf_nan=False)]


class Coding(Lite):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(Lite):
    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None


class Reference(Lite):
    reference: str | None = None
    display: str | None = None


class Quantity(Lite):
    value: Number | None = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Period(Lite):
    start: str | None = None
    end: str | None = None


class Resource(Lite):
    id: str | None = None
    subject: Reference | None = None


@dataclass(frozen=True)
class Read(Generic[T]):
    items: tuple[T, ...]
    malformed: int  # resources skipped because they were not valid
    other_patient: int  # resources about another patient (or none), ignored


@dataclass
class Tally:
    malformed: int = 0
    other_patient: int = 0

    def read(self, items: Iterable[T]) -> Read[T]:
        return Read(tuple(items), self.malformed, self.other_patient)


def own(resources: Iterable[Any], resource_type: str, model: type[M], patient_id: str, tally: Tally) -> Iterator[M]:
    """The valid resources of one type about this patient; the others are counted in `tally`."""
    for raw in resources:
        if not isinstance(raw, dict) or raw.get("resourceType") != resource_type:
            continue
        try:
            resource = model.model_validate(raw)
        except ValidationError:
            tally.malformed += 1
            continue
        if not names_patient(resource.subject.reference if resource.subject else None, patient_id):
            tally.other_patient += 1
            continue
        yield resource
