"""The clinical pipeline, raw Bundles in and cards out (workload (a) of bench/). CI runs it once
as a smoke test (pytest-benchmark disabled); `make bench` times it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.workloads import workloads
from cds_service.content.loader import Content
from cds_service.fhir.client import FhirClient
from cds_service.protocol import HookRequest
from cds_service.rendering import CardRenderer
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.settings import Settings


def test_pipeline(benchmark: Any, content: Content) -> None:
    settings = Settings(auth="off")
    record = RecordReader(content, settings)
    service = VitaminDCramps(record, CardRenderer(content, record.profile_name), frozenset())
    request = HookRequest.model_validate(workloads("http://unused")["a-typical"])
    fhir = FhirClient(None, settings)  # type: ignore[arg-type]  # full prefetch: no query is made
    as_of = datetime.now(UTC)

    def answer() -> list[str]:
        outcome = asyncio.run(service.answer(request, as_of, fhir))
        return [c.source.topic.code for c in outcome.cards if c.source.topic]

    assert benchmark(answer) == ["vitd-deficient", "electrolytes-check"]
