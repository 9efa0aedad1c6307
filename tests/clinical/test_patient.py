"""Who the cards are for: the age from Patient.birthDate, at its boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_service.clinical.patient import age_in_years, is_minor
from cds_service.fhir.facts import birth_date

AS_OF = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        (date(2008, 11, 25), 18),  # the eighteenth birthday
        (date(2008, 11, 26), 17),  # the day before it
        (date(2008, 2, 29), 18),
        (date(1961, 4, 2), 65),
        (date(2026, 11, 25), 0),
    ],
)
def test_age_in_whole_years(birth: date, age: int) -> None:
    assert age_in_years(birth, AS_OF) == age


def test_the_evaluation_day_is_taken_in_utc() -> None:
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert age_in_years(date(2008, 11, 25), late) == 17


@pytest.mark.parametrize(("birth", "minor"), [(date(2008, 11, 25), False), (date(2008, 11, 26), True), (None, False)])
def test_minor_under_18_and_unknown_treated_as_adult(birth: date | None, minor: bool) -> None:
    assert is_minor(birth, AS_OF, 18) is minor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1961-04-02", date(1961, 4, 2)),
        ("2008-11", date(2008, 11, 30)),  # a partial date: its latest day, never older than the patient
        ("2008", date(2008, 12, 31)),
        ("2000-02", date(2000, 2, 29)),
        ("2008-13", None),
        ("2008-02-30", None),
        ("25/11/2008", None),
        ("", None),
    ],
)
def test_birth_date_from_the_patient(text: str, expected: date | None) -> None:
    assert birth_date({"resourceType": "Patient", "id": "p1", "birthDate": text}, "p1") == expected


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Patient", "id": "p2", "birthDate": "1961-04-02"},  # another patient
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Patient", "id": "p1", "birthDate": 1961},  # malformed
        {"resourceType": "OperationOutcome"},
        None,
    ],
)
def test_no_birth_date_is_unknown(resource: object) -> None:
    assert birth_date(resource, "p1") is None
