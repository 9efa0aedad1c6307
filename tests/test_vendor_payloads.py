"""Payloads shaped as Epic, Oracle Health, MEDITECH, the US Core examples and the CDS Hooks
specification publish them (tests/fixtures/vendors/: each file names the public pages it follows
and the quirks it carries: docs/clinical-rules.md, "Records as EHRs send them"), sent through the
HTTP service as an EHR would: the right cards, nothing abnormal made up from an unreadable value,
no unreadable result hidden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio
VENDORS = Path(__file__).parent / "fixtures" / "vendors"
PAYLOADS = sorted(VENDORS.glob("*.json"))
SERVICES = {"patient-view": "vitamin-d-cramps", "order-sign": "vitamin-d-order-sign"}


def test_every_payload_names_its_sources() -> None:
    assert len(PAYLOADS) >= 4
    for path in PAYLOADS:
        payload = json.loads(path.read_text())
        assert payload["source"] and all(url.startswith("https://") for url in payload["source"]), path.name
        assert "Records as EHRs send them" in payload["follows"], path.name  # the rulebook section


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
async def test_vendor_payload(client: httpx.AsyncClient, path: Path) -> None:
    payload = json.loads(path.read_text())
    request, expected = payload["request"], payload["expected"]
    answer = await client.post(f"/cds-services/{SERVICES[request['hook']]}", json=request)
    assert answer.status_code == 200, answer.text
    cards: list[dict[str, Any]] = answer.json()["cards"]
    got = sorted([c["source"]["topic"]["code"], c["indicator"]] for c in cards)
    assert got == sorted(expected["cards"]), [c["summary"] for c in cards]
    by_kind = {c["source"]["topic"]["code"]: c for c in cards}
    for kind, phrases in expected.get("phrases", {}).items():
        text = f"{by_kind[kind]['summary']}\n{by_kind[kind]['detail']}".lower()
        for phrase in phrases:
            assert phrase.lower() in text, (kind, phrase)
    everything = "\n".join(f"{c['summary']}\n{c['detail']}" for c in cards).lower()
    for absent in expected.get("absent", []):
        assert absent not in by_kind and absent.lower() not in everything, absent
    if "orders" in expected:
        check = by_kind["electrolytes-check"]
        ordered = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in check["suggestions"]]
        assert ordered == expected["orders"]
    if "deletes" in expected:
        actions = [a for c in cards for s in c.get("suggestions", []) for a in s["actions"]]
        assert {"type": "delete", "description": "Delete the draft order", "resourceId": expected["deletes"]} in actions
