"""The response rules of CDS-HOOKS.md, checked on every hook response the API tests receive."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest

LOINC = "http://loinc.org"


def _walk(value: Any, path: str) -> None:
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for key, item in value.items():
            _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"empty array at {path}"
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]")


def check_response(body: dict[str, Any], patient_id: str | None = None) -> None:
    assert set(body) <= {"cards", "systemActions"}
    assert isinstance(body["cards"], list)
    for i, card in enumerate(body["cards"]):
        _walk(card, f"cards[{i}]")
        check_card(card, patient_id)


def check_card(card: dict[str, Any], patient_id: str | None) -> None:
    uuid.UUID(card["uuid"])
    assert 0 < len(card["summary"]) < 140, card["summary"]
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card["source"]["label"]
    assert card["source"]["topic"]["code"], "source.topic.code names the card kind"
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["display"]
    for link in card.get("links", []):
        assert link["label"] and link["url"].startswith("https://") and link["type"] in {"absolute", "smart"}
        assert "appContext" not in link or link["type"] == "smart"
    suggestions = card.get("suggestions", [])
    if suggestions:
        assert card["selectionBehavior"] in {"at-most-one", "any"}
    else:
        assert "selectionBehavior" not in card
    for suggestion in suggestions:
        uuid.UUID(suggestion["uuid"])
        assert suggestion["label"] and suggestion["actions"]
        for action in suggestion["actions"]:
            assert action["type"] in {"create", "update", "delete"} and action["description"]
            if action["type"] == "delete":
                assert "/" in action["resourceId"] and "resource" not in action
            else:
                check_service_request(action["resource"], patient_id)


def check_service_request(resource: dict[str, Any], patient_id: str | None) -> None:
    request = ServiceRequest.model_validate(resource)  # valid FHIR R4 (R4B models match R4 here)
    assert request.status == "draft" and request.intent == "order"
    assert request.subject.reference == f"Patient/{patient_id}"
    assert any(c.system == LOINC and c.code for c in request.code.coding)


def without_uuids(value: Any) -> Any:
    """A response with every uuid masked, to compare two calls (uuids are new on each)."""
    if isinstance(value, dict):
        return {k: "<uuid>" if k == "uuid" else without_uuids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value
