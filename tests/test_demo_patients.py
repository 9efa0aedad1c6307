"""The demo patients give the cards their descriptions promise, whatever day the demo runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_service.demo import hook_request, patients
from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio

EXPECTED = {
    "demo-deficient-cramps": ["vitd-deficient", "electrolytes-check"],
    "demo-insufficient-stale": ["vitd-insufficient", "electrolytes-check"],
    "demo-high-supplement": ["vitd-high", "electrolytes-abnormal"],
    "demo-calcitriol-only": ["vitd-wrong-test"],
    "demo-low-magnesium-meq": ["electrolytes-abnormal"],
    "demo-low-calcium-low-albumin": [],
    "demo-low-calcium": ["electrolytes-abnormal"],
    "demo-ckd4": ["vitd-deficient"],
    "demo-nmol": ["vitd-deficient"],
    "demo-normal": [],
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
