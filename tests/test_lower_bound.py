"""bench/lower_bound.py, the sketch behind issue 17's lower bound: for workload (a) it must read and
decide what the service reads and decides, or its figure says nothing; and its measurement must
run. Compared as data, never as wording: editing the catalogue must not break this."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bench.lower_bound import Sketch, measure
from bench.workloads import workloads
from cds_service.content.loader import Content
from cds_service.fhir.client import FhirClient
from cds_service.protocol import HookRequest
from cds_service.rendering import CardRenderer
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.settings import Settings


def test_the_sketch_reads_and_decides_what_the_service_does(content: Content) -> None:
    raw = workloads("http://unused")["a-typical"]
    request, patient, as_of = HookRequest.model_validate(raw), raw["context"]["patientId"], datetime.now(UTC)
    settings = Settings(auth="off")
    reader = RecordReader(content, settings)
    service = VitaminDCramps(reader, CardRenderer(content, reader.profile), frozenset())
    fhir = FhirClient(None, settings)  # type: ignore[arg-type]  # full prefetch: no query is made
    record = asyncio.run(reader.read(request, service.prefetch, fhir, patient, as_of))
    cards = asyncio.run(service.answer(request, as_of, fhir)).cards

    sketch = Sketch(content)
    labs = sketch.labs(raw, patient)
    assert sorted((r.analyte, r.code, r.value, r.unit, r.when, r.low, r.high) for r in labs) == sorted(
        (r.analyte, r.code, r.value, r.unit, r.effective, r.range_low, r.range_high) for r in record.labs
    )
    assert sketch.context(raw, patient, as_of) == record.context
    decision = sketch.decide(labs, as_of)
    assert record.vitamin_d.latest is not None and record.electrolytes is not None
    assert decision.status == record.vitamin_d.status
    assert decision.vitamin_d[0].value == record.vitamin_d.latest.value
    assert decision.missing == record.electrolytes.not_recent

    sketched = sketch.answer(raw, as_of)["cards"]
    assert [c["source"]["topic"]["code"] for c in sketched] == [c.source.topic.code for c in cards if c.source.topic]
    assert [len(c.get("suggestions", [])) for c in sketched] == [len(c.suggestions or []) for c in cards]


def test_the_measurement_runs() -> None:
    timings = asyncio.run(measure(rounds=2, batch=2))
    assert set(timings) == {"baseline", "sketch", "service"}
    assert all(len(values) == 2 and all(v > 0 for v in values) for values in timings.values())
