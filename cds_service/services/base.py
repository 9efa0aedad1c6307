"""What every CDS service offers the app: a discovery entry, its prefetch, an evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..fhir.client import FhirClient
from ..fhir.prefetch import PrefetchKey
from ..protocol import Card, HookRequest, ServiceDefinition


@dataclass(frozen=True)
class Outcome:
    """A service's answer and what the log line may say about it (counts, never data)."""

    cards: list[Card]
    log: dict[str, Any] = field(default_factory=dict)  # counts and reasons, never patient data


class CdsService(Protocol):
    id: str
    hook: str
    prefetch: tuple[PrefetchKey, ...]

    def definition(self) -> ServiceDefinition: ...

    async def evaluate(self, request: HookRequest, as_of: datetime, fhir: FhirClient) -> Outcome: ...
