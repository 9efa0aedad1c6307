"""The three SMART sample patients, evaluated as of dates that make their results recent.

The expected cards were worked out by hand from the rulebook, docs/clinical-rules.md (every lab is
status `unknown` with a 0-0 referenceRange, so the default ranges apply; albumin is always drawn
with calcium, so Payne's correction applies; there is no magnesium).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parent / "fixtures" / "smart-sample"


def _resources(patient: str) -> list[dict[str, Any]]:
    bundle = json.loads((FIXTURES / f"r4-smart-{patient}.json").read_text())
    return [e["resource"] for e in bundle["entry"]]


def run_query(template: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """What a FHIR server answers to a prefetch search over these resources: type, codes, newest
    first, one page of _count."""
    resource_type, _, params = template.partition("?")
    query = parse_qs(params)
    found = [r for r in resources if r["resourceType"] == resource_type]
    if "code" in query:
        wanted = {token.split("|")[1] for token in query["code"][0].split(",")}
        found = [r for r in found if r["code"]["coding"][0]["code"] in wanted]
    if query.get("_sort") == ["-date"]:
        found.sort(key=lambda r: r["effectiveDateTime"], reverse=True)
    found = found[: int(query["_count"][0])]
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in found]}


def prefetch_like_an_ehr(templates: dict[str, str], patient: str) -> dict[str, Any]:
    """Every query of the service's prefetch, run over the patient's bundle as a server would: the
    searches, and the read of the Patient."""
    resources = _resources(patient)
    person = next(r for r in resources if r["resourceType"] == "Patient")
    return {key: run_query(t, resources) if "?" in t else person for key, t in templates.items()}


# (patient, as of, profile) -> card kinds, and for electrolytes-check the orders it offers. No
# Condition or MedicationRequest in the samples: no cramps and no diuretic, so the electrolyte check
# is for calcium alone, with vitamin D deficiency. Every albumin is at or above 4.0 g/dL, so no
# calcium is corrected (rulebook, "Calcium": Payne only below 4.0, and only upwards).
CASES = [
    # 25(OH)D 45 (2016-02-08) sufficient; K 4.5; Ca 9.3 with albumin 4.4: quiet
    ("8888801", "2016-03-01", "endocrine-2011", [], None),
    # 25(OH)D 52 sufficient; Ca 8.7 with albumin 4.2: in range as measured (was "corrected 8.54 low")
    ("8888803", "2016-07-01", "endocrine-2011", [], None),
    # 25(OH)D 45 (2015-07-12, 325 days) sufficient; K 3.9; Ca 9.0, albumin 4.3: quiet
    ("8888804", "2016-06-01", "endocrine-2011", [], None),
    # 25(OH)D 24 (2014-11-02) insufficient; no cramps: no electrolyte check
    ("8888801", "2014-12-01", "endocrine-2011", ["vitd-insufficient"], None),
    ("8888801", "2014-12-01", "iom-2011", [], None),  # 24 is sufficient under IOM
    # 25(OH)D 5 (2015-04-29) deficient under both profiles; Ca 8.9 the same day: nothing to check
    ("8888803", "2015-05-15", "endocrine-2011", ["vitd-deficient"], None),
    ("8888803", "2015-05-15", "iom-2011", ["vitd-deficient"], None),
    # 25(OH)D 18 (2015-07-27) deficient; the last calcium 108 days old: calcium alone
    ("8888803", "2015-08-15", "endocrine-2011", ["vitd-deficient", "electrolytes-check"], ["17861-6"]),
    # Ca 8.6 with albumin 4.1: in range as measured (was "corrected 8.52 low")
    ("8888804", "2015-11-15", "endocrine-2011", [], None),
    # everything older than its window: quiet
    ("8888801", "2018-01-01", "endocrine-2011", [], None),
]


async def evaluate(make_app: AppFactory, patient: str, as_of: str, profile: str = "endocrine-2011") -> list[Any]:
    """The cards for one sample patient, with prefetch built from the service's own discovery."""
    app = make_app(as_of=datetime.fromisoformat(as_of).replace(tzinfo=UTC), threshold_profile=profile)
    async with make_client(app) as client:
        templates = (await client.get("/cds-services")).json()["services"][0]["prefetch"]
        request = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/smart-Practitioner-71482713", "patientId": f"smart-{patient}"},
            "prefetch": prefetch_like_an_ehr(templates, patient),
        }
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200
    cards: list[Any] = response.json()["cards"]
    return cards


@pytest.mark.parametrize(("patient", "as_of", "profile", "expected", "orders"), CASES)
async def test_smart_sample_patient(
    make_app: AppFactory, patient: str, as_of: str, profile: str, expected: list[str], orders: list[str] | None
) -> None:
    cards = await evaluate(make_app, patient, as_of, profile)
    assert [c["source"]["topic"]["code"] for c in cards] == expected
    for c in cards:
        assert "did not report the result's status" in c["detail"]  # every SMART lab is `unknown`
    by_kind = {c["source"]["topic"]["code"]: c for c in cards}
    if orders is not None:
        suggestions = by_kind["electrolytes-check"]["suggestions"]
        assert [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in suggestions] == orders
    for c in cards:  # every sample patient is an adult with a birth date
        assert "Age unknown" not in c["detail"]
