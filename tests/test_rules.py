"""The response-rule checker that guards every API test, and the longest summaries."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.builders import hook_request, obs
from tests.rules import check_response

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"


async def _full_response(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(URL, json=hook_request([obs("62292-8", 12, "ng/mL")], None))
    return response.json()


BREAKAGES = [
    ("a null", lambda b: b["cards"][0].update(detail=None)),
    ("an empty array", lambda b: b["cards"][0].update(links=[])),
    ("an empty object", lambda b: b["cards"][0]["source"].update(topic={})),
    ("a long summary", lambda b: b["cards"][0].update(summary="x" * 140)),
    ("no uuid", lambda b: b["cards"][0].pop("uuid")),
    ("suggestions without selectionBehavior", lambda b: b["cards"][1].pop("selectionBehavior")),
    (
        "a ServiceRequest that is not draft",
        lambda b: b["cards"][1]["suggestions"][0]["actions"][0]["resource"].update(status="active"),
    ),
    (
        "an invalid ServiceRequest",
        lambda b: b["cards"][1]["suggestions"][0]["actions"][0]["resource"].update(intent="maybe"),
    ),
    ("a bad indicator", lambda b: b["cards"][0].update(indicator="danger")),
]


@pytest.mark.parametrize(("name", "breakage"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
async def test_the_checker_catches_each_violation(client: httpx.AsyncClient, name: str, breakage: Any) -> None:
    body = await _full_response(client)
    check_response(body, "p1")  # the real response passes
    broken = copy.deepcopy(body)
    breakage(broken)
    with pytest.raises(AssertionError):  # only: a checker that crashes has caught nothing
        check_response(broken, "p1")


async def test_longest_summaries_stay_under_140(client: httpx.AsyncClient) -> None:
    """The wordiest cases: converted and censored values, every electrolyte critical."""
    vitamin_d = [obs("14635-7", 375.123, "nmol/L", "2026-11-20", comparator=">=")]
    electrolytes = [
        obs("6298-4", 1.25, "meq/L", "2026-11-20", comparator="<"),
        obs("2601-3", 0.355, "mmol/L", "2026-11-20", comparator="<="),
        obs("1994-3", 1.615, "meq/L", "2026-11-20"),
    ]
    response = await client.post(URL, json=hook_request(vitamin_d, electrolytes))
    summaries = [c["summary"] for c in response.json()["cards"]]
    assert len(summaries) == 2
    for summary in summaries:
        assert len(summary) < 140 and not summary.endswith("…"), summary
    wrong = await client.post(URL, json=hook_request([obs("1649-3", 60, "pg/mL", "2026-11-20")], None))
    assert all(len(c["summary"]) < 140 for c in wrong.json()["cards"])
