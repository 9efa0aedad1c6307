"""Prefetch keys: given, known empty (null), or not had (missing or an OperationOutcome)."""

from __future__ import annotations

import pytest

from cds_service.fhir.prefetch import PrefetchKey, PrefetchUnavailable, resolve
from cds_service.protocol import RequestError
from tests.builders import bundle, obs

KEYS = (
    PrefetchKey("patient", "Patient/{{context.patientId}}", "the patient", required=False),
    PrefetchKey("labs", "Observation?patient={{context.patientId}}", "labs"),
)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


def test_given_and_null() -> None:
    labs = bundle(obs("62292-8", 12, "ng/mL"))
    got = resolve(KEYS, {"patient": None, "labs": labs})
    assert got.values == {"patient": None, "labs": labs} and got.unavailable == ()
    assert got.resources("patient") == ([], 0)
    assert got.resources("labs") == ([labs["entry"][0]["resource"]], 0)


@pytest.mark.parametrize("given", [{}, {"labs": OUTCOME}, None])
def test_required_key_not_had_is_unavailable(given: dict | None) -> None:
    with pytest.raises(PrefetchUnavailable) as exc:
        resolve(KEYS, given)
    assert [k.name for k in exc.value.keys] == ["labs"]


def test_optional_key_not_had_is_listed() -> None:
    got = resolve(KEYS, {"labs": None, "patient": OUTCOME})
    assert [k.name for k in got.unavailable] == ["patient"] and "patient" not in got.values


def test_single_resource_and_entries_without_resources() -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    labs = {
        "resourceType": "Bundle",
        "entry": [{"fullUrl": "x"}, "junk", {"resource": {"resourceType": "Observation"}}],
    }
    got = resolve(KEYS, {"patient": patient, "labs": labs})
    assert got.resources("patient") == ([patient], 0)
    assert got.resources("labs") == ([{"resourceType": "Observation"}], 2)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "prefetch.labs"),
        ("Bundle", "prefetch.labs"),
        ({"entry": []}, "prefetch.labs"),
        ({"resourceType": "Bundle", "entry": {}}, "prefetch.labs.entry"),
    ],
)
def test_values_that_are_not_resources_are_bad_requests(value: object, field: str) -> None:
    with pytest.raises(RequestError) as exc:
        resolve(KEYS, {"labs": value})
    assert exc.value.field == field
