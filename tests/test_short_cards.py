"""Short cards (docs/clinical-rules.md, "Card text"; alert fatigue): every card kind, rendered for every demo
patient on patient-view and on order-sign, stays within the limits: a summary aimed at 90
characters, at most about 60 words of prose before the data table, the evidence sentence once per
response, sources as links and never a reference list, and no paragraph said twice in one response."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from cds_service.content.schema import CARD_KINDS
from cds_service.demo import hook_request, patients
from tests.builders import LOINC, RXNORM
from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio
TODAY = date(2026, 11, 25)
EVIDENCE = "**Evidence.**"
# What card text never says: the service speaking of itself or of its own rules.
SELF_REFERENCE = (
    "this card",
    "the service",
    "stays silent",
    "same patient, requester",
    "is inferred",
    "suggested again",
    "was decided",
    "prescribes nothing",
    "read as the total",
)


def prose(detail: str) -> list[str]:
    """The paragraphs of a detail that are prose: not the data table, its heading or a list."""
    return [
        p.strip() for p in detail.split("\n\n") if p.strip() and not p.strip().startswith(("**Data used**", "|", "- "))
    ]


def words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def order_sign(spec: dict[str, Any]) -> dict[str, Any]:
    """The demo patient's order-sign call: a 25(OH)D test, a 1,25 test and cholecalciferol drafted."""
    request = hook_request(spec, TODAY)
    pid = spec["id"]
    d3 = {"coding": [{"system": RXNORM, "display": "cholecalciferol 1000 UNT Oral Tablet"}]}
    drafts = [
        {"resourceType": "ServiceRequest", "id": "d-25", "status": "draft", "intent": "order",
         "code": {"coding": [{"system": LOINC, "code": "62292-8"}]}, "subject": {"reference": f"Patient/{pid}"}},
        {"resourceType": "ServiceRequest", "id": "d-125", "status": "draft", "intent": "order",
         "code": {"coding": [{"system": LOINC, "code": "1649-3"}]}, "subject": {"reference": f"Patient/{pid}"}},
        {"resourceType": "MedicationRequest", "id": "d-d3", "status": "draft", "intent": "order",
         "medicationCodeableConcept": d3,
         "subject": {"reference": f"Patient/{pid}"}},
        {"resourceType": "MedicationRequest", "id": "d-ca", "status": "draft", "intent": "order",
         "medicationCodeableConcept": {"text": "Calcium carbonate 500 MG Oral Tablet"},
         "subject": {"reference": f"Patient/{pid}"}},
    ]  # fmt: skip
    request["hook"] = "order-sign"
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]}
    return request


async def test_every_card_kind_is_short_and_says_each_thing_once(make_app: AppFactory) -> None:
    seen: set[str] = set()
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:
        for spec in patients():
            for url, body in (
                ("/cds-services/vitamin-d-cramps", hook_request(spec, TODAY)),
                ("/cds-services/vitamin-d-order-sign", order_sign(spec)),
            ):
                answer = await client.post(url, json=body)
                assert answer.status_code == 200, answer.text
                cards = answer.json()["cards"]
                paragraphs: list[str] = []
                for card in cards:
                    kind = card["source"]["topic"]["code"]
                    seen.add(kind)
                    assert len(card["summary"]) <= 100, (spec["id"], card["summary"])
                    said = prose(card.get("detail", ""))
                    assert words([p for p in said if not p.startswith(EVIDENCE)]) <= 65, (spec["id"], kind, said)
                    assert "**Sources**" not in card.get("detail", ""), kind  # sources are the card's links
                    text = f"{card['summary']}\n{card.get('detail', '')}".lower()
                    # Rulebook, "Card text": about the patient, never about the service or its rules.
                    assert not [p for p in SELF_REFERENCE if p in text], (spec["id"], kind, text)
                    rows = [
                        line
                        for line in card.get("detail", "").splitlines()
                        if line.startswith("| ") and "---" not in line
                    ]
                    assert len(rows) == len(set(rows)), (spec["id"], kind, rows)  # a data table lists each result once
                    paragraphs += said
                label = (spec["id"], url)
                assert sum(p.startswith(EVIDENCE) for p in paragraphs) <= 1, label
                assert len(paragraphs) == len(set(paragraphs)), label
                if spec["id"] == "demo-deficient-cramps" and url.endswith("cramps"):
                    assert len(cards) == 2 and words(paragraphs) < 150
    assert seen == set(CARD_KINDS)
