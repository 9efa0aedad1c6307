"""The response rules of CDS Hooks 2.0.1, checked on every hook response the API tests receive. A
broken rule raises AssertionError and nothing else, so that a checker that crashes (a KeyError, a
TypeError) is never taken for one that caught a violation."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

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
    assert isinstance(body.get("cards"), list), "a response without its cards"
    for i, card in enumerate(body["cards"]):
        _walk(card, f"cards[{i}]")
        check_card(card, patient_id)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def check_card(card: dict[str, Any], patient_id: str | None) -> None:
    missing = {"uuid", "summary", "indicator", "source"} - set(card)
    assert not missing, f"a card without {', '.join(sorted(missing))}"
    assert _is_uuid(card["uuid"]), f"not a uuid: {card['uuid']!r}"
    assert 0 < len(card["summary"]) < 140, card["summary"]
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card["source"].get("label"), "source.label"
    assert card["source"].get("topic", {}).get("code"), "source.topic.code names the card kind"
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["display"]
    for link in card.get("links", []):
        assert link["label"] and link["url"].startswith("https://") and link["type"] in {"absolute", "smart"}
        assert "appContext" not in link or link["type"] == "smart"
    suggestions = card.get("suggestions", [])
    if suggestions:
        assert card.get("selectionBehavior") in {"at-most-one", "any"}, "suggestions need selectionBehavior"
    else:
        assert "selectionBehavior" not in card
    for suggestion in suggestions:
        assert _is_uuid(suggestion.get("uuid")), "a suggestion without a uuid"
        assert suggestion["label"] and suggestion["actions"]
        for action in suggestion["actions"]:
            assert action["type"] in {"create", "update", "delete"} and action["description"]
            if action["type"] == "delete":
                assert "/" in action["resourceId"] and "resource" not in action
            else:
                check_service_request(action["resource"], patient_id)


def check_service_request(resource: dict[str, Any], patient_id: str | None) -> None:
    try:
        request = ServiceRequest.model_validate(resource)  # valid FHIR R4 (R4B models match R4 here)
    except ValidationError as exc:
        raise AssertionError(f"not a valid ServiceRequest: {exc.error_count()} errors") from None
    assert request.status == "draft" and request.intent == "order"
    assert request.subject is not None and request.subject.reference == f"Patient/{patient_id}"
    assert request.code is not None and any(c.system == LOINC and c.code for c in request.code.coding or [])


def without_uuids(value: Any) -> Any:
    """A response with every uuid masked, to compare two calls (uuids are new on each)."""
    if isinstance(value, dict):
        return {k: "<uuid>" if k == "uuid" else without_uuids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value
