"""The demo patients give the cards their descriptions promise, whatever day the demo runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_service.demo import hook_request, patients, smart_resources
from tests.conftest import AppFactory, make_client
from tests.test_smart_samples import run_query

pytestmark = pytest.mark.anyio

EXPECTED = {
    "demo-deficient-cramps": ["vitd-deficient", "electrolytes-check"],
    "demo-insufficient-stale": ["vitd-insufficient"],
    "demo-high-supplement": ["vitd-high", "electrolytes-abnormal"],
    "demo-calcitriol-only": ["vitd-wrong-test"],
    "demo-low-magnesium-meq": ["electrolytes-abnormal"],
    "demo-low-calcium-low-albumin": [],
    "demo-low-calcium": ["electrolytes-abnormal"],
    "demo-ckd4": ["vitd-deficient"],
    "demo-nmol": ["vitd-deficient"],
    "demo-normal": [],
    "demo-hypercalcaemia-low-d": ["vitd-deficient", "electrolytes-abnormal"],
    "demo-unreadable": ["electrolytes-check"],
    "demo-treatment-begun": [],
}


def test_every_patient_view_card_kind_is_shown() -> None:
    shown = {kind for kinds in EXPECTED.values() for kind in kinds}
    assert shown == {
        "vitd-deficient",
        "vitd-insufficient",
        "vitd-high",
        "vitd-wrong-test",
        "electrolytes-check",
        "electrolytes-abnormal",
    }
    assert [p["id"] for p in patients()] == list(EXPECTED)


@pytest.mark.parametrize("today", [date(2026, 11, 25), date(2031, 2, 28)])
async def test_demo_patients(make_app: AppFactory, today: date) -> None:
    app = make_app(as_of=datetime(today.year, today.month, today.day, 12, tzinfo=UTC))
    async with make_client(app) as client:
        for spec in patients():
            response = await client.post("/cds-services/vitamin-d-cramps", json=hook_request(spec, today))
            kinds = [c["source"]["topic"]["code"] for c in response.json()["cards"]]
            assert kinds == EXPECTED[spec["id"]], spec["id"]


@pytest.mark.parametrize(
    ("number", "expected"),
    [("8888801", []), ("8888803", []), ("8888804", [])],
)
async def test_smart_sample_patients_in_the_demo(make_app: AppFactory, number: str, expected: list[str]) -> None:
    """Shifted to end 30 days ago: 8888803's calcium 8.7 with albumin 4.2 is in range (no correction
    lowers a calcium), and every 25(OH)D is sufficient: quiet."""
    today = date(2027, 3, 1)
    resources = smart_resources(number, today)
    dates = [r["effectiveDateTime"] for r in resources if r["resourceType"] == "Observation"]
    assert max(dates) == "2027-01-30"
    async with make_client(make_app(as_of=datetime(2027, 3, 1, 12, tzinfo=UTC))) as client:
        templates = (await client.get("/cds-services")).json()["services"][0]["prefetch"]
        prefetch = {key: run_query(t, resources) for key, t in templates.items() if "?" in t}
        request = {
            "hook": "patient-view",
            "hookInstance": "3f1d6a52-3c39-4a7b-9d4e-9a8c2b1e0f11",
            "context": {"userId": "Practitioner/demo", "patientId": f"smart-{number}"},
            "prefetch": prefetch,
        }
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == expected


async def test_the_new_demo_patients_show_the_safety_rules(make_app: AppFactory) -> None:
    today = date(2026, 11, 25)
    by_id = {p["id"]: p for p in patients()}
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:

        async def cards(patient: str) -> dict[str, dict[str, str]]:
            response = await client.post("/cds-services/vitamin-d-cramps", json=hook_request(by_id[patient], today))
            return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}

        hyper = await cards("demo-hypercalcaemia-low-d")
        low = hyper["vitd-deficient"]
        assert "hypercalcaemia needs evaluation before any vitamin D is given" in low["detail"]
        assert "supplementation review" not in low["summary"] + low["detail"]
        unreadable = (await cards("demo-unreadable"))["electrolytes-check"]
        assert "could not be interpreted: unit g/dL not recognised" in unreadable["detail"]
        assert "could not be interpreted: no unit" in unreadable["detail"]  # the 25(OH)D that blocks
