"""Reading Observations: statuses, values, comparators, units, dates, subjects and duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cds_service.clinical.results import LabResult
from cds_service.content.loader import Content
from cds_service.fhir.labs import LabReader, parse_fhir_datetime
from cds_service.fhir.models import Read
from tests.builders import LOINC, PATIENT, UCUM, obs


@pytest.fixture(scope="module")
def reader(content: Content) -> LabReader:
    return LabReader(content)


def read(reader: LabReader, *resources: Any) -> Read[LabResult]:
    return reader.read(resources, PATIENT)


def one(reader: LabReader, resource: dict[str, Any]) -> LabResult:
    (result,) = read(reader, resource).items
    return result


# --- units --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "ucum", "canonical"),
    [
        ("62292-8", 20, "ng/mL", True, 20.0),
        ("62292-8", 20, "ug/L", True, 20.0),
        ("62292-8", 49.92, "nmol/L", True, 20.0),  # nmol/L = ng/mL x 2.496
        ("62292-8", 50, "nmol/l", False, 50 / 2.496),  # unit text, any case
        ("62292-8", 30, "NG/ML", False, 30.0),
        ("14635-7", 75, "nmol/L", True, 75 / 2.496),  # the molar D3 code
        ("2823-3", 3.4, "mmol/L", True, 3.4),
        ("2823-3", 3.4, "meq/L", True, 3.4),  # monovalent: meq/L = mmol/L
        ("2823-3", 3.4, "mEq/L", False, 3.4),
        ("19123-9", 1.4, "meq/L", True, 1.4 / 2 / 0.4114),  # divalent: 1.4 meq/L = 0.7 mmol/L = 1.70 mg/dL
        ("19123-9", 1.4, "mEq/L", False, 1.4 / 2 / 0.4114),
        ("2601-3", 0.7, "mmol/L", True, 0.7 / 0.4114),
        ("17861-6", 4.3, "meq/L", True, 4.3 / 2 / 0.2495),  # 4.3 meq/L = 2.15 mmol/L = 8.62 mg/dL
        ("2000-8", 2.15, "mmol/L", True, 2.15 / 0.2495),
        ("1995-0", 4.8, "mg/dL", True, 4.8 / 4.008),  # ionized calcium is canonical in mmol/L
        ("1995-0", 2.4, "meq/L", True, 1.2),
        ("1751-7", 35, "g/L", True, 3.5),
    ],
)
def test_units_convert_to_canonical(
    reader: LabReader, code: str, value: float, unit: str, ucum: bool, canonical: float
) -> None:
    result = one(reader, obs(code, value, unit, ucum=ucum))
    assert result.value == pytest.approx(canonical)
    assert result.problem is None


def test_magnesium_meq_is_not_read_as_mmol(reader: LabReader) -> None:
    """The divalent trap: 1.4 meq/L magnesium is 1.70 mg/dL (normal), not 3.40 mg/dL (high)."""
    result = one(reader, obs("19123-9", 1.4, "meq/L"))
    assert result.value == pytest.approx(1.7016, abs=1e-3)
    assert (result.reported_value, result.reported_unit) == (1.4, "meq/L")


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [
        ({"value": 20}, "no unit"),
        ({"value": 20, "unit": "mg/L"}, "unit mg/L not recognised"),
        ({"value": 20, "unit": "IU", "system": UCUM, "code": "[IU]"}, "unit IU not recognised"),
        ({"value": 20, "unit": "<b>ng</b>"}, "unit not recognised"),  # FHIR text never reaches a card
        ({"value": 20, "unit": "[x](https://e.x)"}, "unit not recognised"),
        ({"unit": "ng/mL"}, "no numeric value"),
        ({"value": -1, "unit": "ng/mL"}, "zero or negative value"),
        ({"value": 0, "unit": "ng/mL"}, "zero or negative value"),
        ({"value": 1000.5, "unit": "ng/mL"}, "implausible value (outside 0-1000 ng/mL)"),
        ({"value": 2500, "unit": "nmol/L"}, "implausible value (outside 0-1000 ng/mL)"),
    ],
)
def test_unreadable_values_are_kept_with_the_reason(reader: LabReader, quantity: dict[str, Any], problem: str) -> None:
    result = one(reader, obs("62292-8", valueQuantity=quantity))
    assert result.value is None and result.problem == problem


def test_ucum_code_is_read_before_the_unit_text(reader: LabReader) -> None:
    quantity = {"value": 50, "unit": "ng/mL", "system": UCUM, "code": "nmol/L"}
    assert one(reader, obs("62292-8", valueQuantity=quantity)).value == pytest.approx(50 / 2.496)


def test_data_absent_reason_means_no_value(reader: LabReader) -> None:
    result = one(reader, obs("62292-8", dataAbsentReason={"coding": [{"code": "error"}]}))
    assert result.value is None and "absent" in (result.problem or "")


# --- comparators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "value", "comparator"),
    [
        ({"valueQuantity": {"value": 5, "comparator": "<", "system": UCUM, "code": "ng/mL"}}, 5, "<"),
        ({"valueQuantity": {"value": 150, "comparator": ">", "system": UCUM, "code": "ng/mL"}}, 150, ">"),
        ({"valueString": "<5 ng/mL"}, 5, "<"),
        ({"valueString": " >150 ng/ml "}, 150, ">"),
        ({"valueString": "<=12.5 ng/mL"}, 12.5, "<="),
        ({"valueString": "25 nmol/L"}, 25 / 2.496, None),
    ],
)
def test_comparators_from_quantity_and_string(
    reader: LabReader, fields: dict[str, Any], value: float, comparator: str | None
) -> None:
    result = one(reader, obs("62292-8", **fields))
    assert result.value == pytest.approx(value) and result.comparator == comparator


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<5", "a number without a unit"),  # never guess a unit
        ("low", "text, not a value"),
        ("5-10 ng/mL", "unit not recognised"),
        ("0 ng/mL", "zero or negative value"),
    ],
)
def test_value_strings_that_are_not_values(reader: LabReader, text: str, problem: str) -> None:
    result = one(reader, obs("62292-8", valueString=text))
    assert result.value is None and result.problem == problem


@pytest.mark.parametrize(
    ("code", "value", "unit", "inside"),
    [
        ("62292-8", 1000, "ng/mL", True),
        ("62292-8", 1001, "ng/mL", False),
        ("62292-8", 0.1, "ng/mL", True),
        ("2823-3", 1.0, "mmol/L", True),
        ("2823-3", 0.9, "mmol/L", False),
        ("2823-3", 12.0, "mmol/L", True),
        ("2823-3", 12.1, "mmol/L", False),
        ("19123-9", 0.2, "mg/dL", True),
        ("19123-9", 0.19, "mg/dL", False),
        ("19123-9", 10, "mg/dL", True),
        ("19123-9", 10.1, "mg/dL", False),
        ("17861-6", 2.0, "mg/dL", True),
        ("17861-6", 1.9, "mg/dL", False),
        ("17861-6", 20.0, "mg/dL", True),
        ("17861-6", 20.1, "mg/dL", False),
        ("2000-8", 5.1, "mmol/L", False),  # 20.4 mg/dL
        ("29265-6", 20.1, "mg/dL", False),  # a corrected calcium has the total's bounds
        ("1995-0", 0.3, "mmol/L", True),
        ("1995-0", 0.29, "mmol/L", False),
        ("1995-0", 3.0, "mmol/L", True),
        ("1995-0", 3.01, "mmol/L", False),
        ("1751-7", 0.5, "g/dL", True),
        ("1751-7", 0.4, "g/dL", False),
        ("1751-7", 7.0, "g/dL", True),
        ("1751-7", 71, "g/L", False),
    ],
)
def test_plausibility_bounds_per_analyte(reader: LabReader, code: str, value: float, unit: str, inside: bool) -> None:
    """Rulebook, "Units and precision": outside these, a value is a reporting error, kept and not interpreted."""
    result = one(reader, obs(code, value, unit))
    assert (result.value is not None) is inside
    assert inside or (result.problem or "").startswith("implausible value")


# What vendors really send (docs/clinical-rules.md, "Records as EHRs send them"): Oracle Health's sandbox sends
# potassium in g/dL, a negative potassium and valueString "Blank", all final; MEDITECH sends the
# number as text with no unit.
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"valueQuantity": {"value": 0.7, "unit": "g/dL", "system": UCUM, "code": "g/dL"}}, "unit g/dL not recognised"),
        (
            {"valueQuantity": {"value": -0.2, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}},
            "zero or negative value",
        ),
        ({"valueString": "Blank"}, "text, not a value"),
    ],
)
def test_vendor_potassium_that_cannot_be_interpreted_is_kept(
    reader: LabReader, fields: dict[str, Any], problem: str
) -> None:
    result = one(reader, obs("2823-3", **fields))
    assert result.value is None and result.problem == problem and result.effective is not None


# Revision 2026-12-07 (Values): potassium's accepted units are numerically identical (mmol/L =
# meq/L), so MEDITECH's "4.0" and Epic's unitless 4.1 are read, at the laboratory's precision; an
# analyte whose units differ (magnesium: mg/dL, mmol/L) is still not read without one.
@pytest.mark.parametrize(
    ("code", "fields", "value", "text"),
    [
        ("2823-3", {"valueString": "4.0"}, 4.0, "4.0"),
        ("2823-3", {"valueQuantity": {"value": 4.1}}, 4.1, "4.1"),
        ("6298-4", {"valueString": " 3.0 "}, 3.0, "3.0"),
        ("19123-9", {"valueString": "2.0"}, None, "2.0"),
        ("19123-9", {"valueQuantity": {"value": 2.0}}, None, "2.0"),
    ],
)
def test_a_unitless_number_is_read_only_where_every_unit_agrees(
    reader: LabReader, code: str, fields: dict[str, Any], value: float | None, text: str | None
) -> None:
    result = one(reader, obs(code, **fields))
    assert result.value == value and result.reported_text == text
    assert result.unit_unreported is (value is not None)


def test_a_value_string_with_its_unit_is_read(reader: LabReader) -> None:
    result = one(reader, obs("2823-3", valueString="4.0 mmol/L"))
    assert result.value == 4.0 and result.problem is None


# --- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("final", True),
        ("amended", True),
        ("corrected", True),
        ("unknown", True),
        ("registered", False),
        ("preliminary", False),
        ("cancelled", False),
        ("entered-in-error", False),
        # read trimmed and in any case (Oracle Health's documentation shows "entered-in-error ")
        ("entered-in-error ", False),
        (" Final", True),
        ("AMENDED", True),
        ("Preliminary ", False),
    ],
)
def test_statuses(reader: LabReader, status: str, counts: bool) -> None:
    assert bool(read(reader, obs("62292-8", 12, "ng/mL", status=status)).items) is counts


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"effectiveDateTime": "2026-11-01"}, datetime(2026, 11, 1, tzinfo=UTC)),
        ({"effectiveDateTime": "2026-11"}, datetime(2026, 11, 1, tzinfo=UTC)),
        ({"effectiveDateTime": "2026"}, datetime(2026, 1, 1, tzinfo=UTC)),
        ({"effectiveDateTime": "2026-11-01T08:30:00+02:00"}, datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ({"effectiveDateTime": "2026-11-01T08:30:00.123Z"}, datetime(2026, 11, 1, 8, 30, 0, 123000, tzinfo=UTC)),
        ({"effectivePeriod": {"start": "2026-10-01", "end": "2026-10-03"}}, datetime(2026, 10, 3, tzinfo=UTC)),
        ({"effectivePeriod": {"start": "2026-10-01"}}, datetime(2026, 10, 1, tzinfo=UTC)),
        ({"effectiveInstant": "2026-10-05T10:00:00Z"}, datetime(2026, 10, 5, 10, tzinfo=UTC)),
        ({"issued": "2026-10-06T10:00:00Z"}, datetime(2026, 10, 6, 10, tzinfo=UTC)),
        ({}, None),
    ],
)
def test_date_precedence(reader: LabReader, fields: dict[str, Any], expected: datetime | None) -> None:
    result = one(reader, obs("62292-8", 12, "ng/mL", when=None, **fields))
    assert result.effective == expected


def test_effective_date_time_wins_over_issued(reader: LabReader) -> None:
    result = one(reader, obs("62292-8", 12, "ng/mL", "2026-10-01", issued="2026-10-09T00:00:00Z"))
    assert result.effective == datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-01T08:30:00",
        "01/11/2026",
        "2026-13-01",
        "2026-11-01T25:00:00Z",
        "",
        # no UTC day before or after (from an attack run: a 500 for the whole call)
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T13:59:59+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01",
        "２０２６-11-01",  # digits FHIR does not write
    ],
)
def test_malformed_dates_make_the_resource_malformed(reader: LabReader, text: str) -> None:
    got = read(reader, obs("62292-8", 12, "ng/mL", when=text))
    assert got.items == () and got.malformed == 1


def test_parse_fhir_datetime_keeps_offsets() -> None:
    assert parse_fhir_datetime("2026-01-01T00:00:00-05:00").utcoffset() == timedelta(hours=-5)
    assert parse_fhir_datetime("2026-01-01T00:00:00-05:00").tzinfo == timezone(timedelta(hours=-5))


# --- subject, duplicates, selection, malformed --------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "ours"),
    [
        ({"reference": "Patient/p1"}, True),
        ({"reference": "https://ehr.example.org/fhir/Patient/p1"}, True),
        ({"reference": "Patient/p1/_history/3"}, True),
        ({"reference": "Patient/p2"}, False),
        ({"reference": "Patient/p12"}, False),
        ({"reference": "Group/p1"}, False),
        ({"display": "p1"}, False),
        (None, False),
    ],
)
def test_only_the_context_patients_results_count(reader: LabReader, subject: dict[str, Any] | None, ours: bool) -> None:
    resource = obs("62292-8", 12, "ng/mL", patient=None)
    if subject is not None:
        resource["subject"] = subject
    got = read(reader, resource)
    assert bool(got.items) is ours and got.other_patient == (0 if ours else 1)


def test_the_same_resource_twice_counts_once(reader: LabReader) -> None:
    twin = obs("62292-8", 12, "ng/mL", id="dup")
    got = read(reader, twin, dict(twin), obs("62292-8", 40, "ng/mL", id="other"))
    assert [r.resource_id for r in got.items] == ["dup", "other"]


def test_results_older_than_any_window_are_not_read(reader: LabReader) -> None:
    """Per analyte, the first day a rule looks at: an older result of it is left unread (counted as
    old); 25(OH)D, with no such day, is read whatever its age. A resource is read in full
    whenever its age is not certain from its JSON, and whenever its id is shared."""
    since = {"potassium": datetime(2026, 9, 1).date()}
    old_k = obs("2823-3", 4.0, "mmol/L", "2026-08-31", id="old-k")
    old_by_period = obs("2823-3", 4.0, "mmol/L", None, effectivePeriod={"end": "2026-08-30T23:00:00Z"})
    late_evening = obs("2823-3", 4.1, "mmol/L", "2026-08-31T22:00:00-03:00")  # 1 September in UTC
    new_k = obs("2823-3", 4.2, "mmol/L", "2026-09-01")
    old_d = obs("62292-8", 12, "ng/mL", "2020-01-01")
    undatable = obs("2823-3", 4.3, "mmol/L", "31/08/2026")  # malformed, and counted as such
    corrected = obs("2823-3", 3.0, "mmol/L", "2026-08-31", id="moved", status="corrected")
    original = obs("2823-3", 4.4, "mmol/L", "2026-09-02", id="moved")
    got = reader.read(
        [old_k, old_by_period, late_evening, new_k, old_d, undatable, corrected, original], PATIENT, since
    )
    assert sorted((r.analyte, r.value) for r in got.items) == [
        ("potassium", 3.0),  # the correction stands, although dated before the window
        ("potassium", 4.1),
        ("potassium", 4.2),
        ("vitamin_d", 12.0),
    ]
    assert (got.old, got.ignored, got.malformed) == (2, 1, 1)  # two unread; a version replaced; one malformed


def test_unrelated_and_non_loinc_observations_are_not_read(reader: LabReader) -> None:
    glucose = obs("2345-7", 99, "mg/dL")
    local = obs("62292-8", 12, "ng/mL")
    local["code"]["coding"][0]["system"] = "http://acme.example/labs"
    patient = {"resourceType": "Patient", "id": "p1"}
    got = read(reader, glucose, local, patient, "not a resource", 42, None)
    assert got.items == () and got.malformed == 0


@pytest.mark.parametrize(
    "broken",
    [
        {"valueQuantity": {"value": "12", "unit": "ng/mL"}},  # a string where FHIR has a number
        {"valueQuantity": {"value": 12, "comparator": "~"}},
        {"valueQuantity": {"value": True, "unit": "ng/mL"}},
        {"valueQuantity": {"value": float("nan"), "unit": "ng/mL"}},  # stdlib json reads NaN
        {"valueQuantity": {"value": float("inf"), "unit": "ng/mL"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "62292-8"}], "text": 5}},
        {"referenceRange": {"low": {"value": 1}}},
        {"status": 7},
        {"subject": "Patient/p1"},
        {"effectivePeriod": "2026"},
    ],
)
def test_malformed_selected_resources_are_skipped_and_counted(reader: LabReader, broken: dict[str, Any]) -> None:
    """Malformed where no result can be made (its code, status, subject or date) it is skipped and
    counted; malformed in its value, it is kept as a result that could not be read (revision
    2026-12-07, "Not interpretable is not absent"; rulebook, "Unreadable results")."""
    bad = obs("62292-8", 12, "ng/mL") | broken
    got = read(reader, bad, obs("62292-8", 40, "ng/mL"))
    if set(broken) <= {"valueQuantity", "referenceRange"}:
        assert [(r.value, r.problem) for r in got.items] == [(None, "malformed value"), (40, None)]
        assert got.malformed == 0
    else:
        assert [r.value for r in got.items] == [40] and got.malformed == 1


def test_roles_follow_the_code_lists(reader: LabReader) -> None:
    got = read(
        reader,
        obs("1989-3", 12, "ng/mL"),
        obs("1649-3", 40, "pg/mL"),
        obs("62290-2", 100, "pmol/L"),
        obs("1990-1", 3, "ng/mL"),
        obs("29265-6", 9, "mg/dL"),
    )
    assert [(r.analyte, r.role, r.value) for r in got.items] == [
        ("vitamin_d", "proxy", 12),
        ("vitamin_d_dihydroxy", "wrong_test", 40),  # read with its value and unit, never classified
        ("vitamin_d_dihydroxy", "wrong_test", pytest.approx(41.667, abs=1e-3)),
        ("vitamin_d_parent", "wrong_test", 3),
        ("calcium", "corrected", 9),
    ]


# --- D2 + D3 components ---------------------------------------------------------------------------


def component(code: str, value: float, unit: str = "ng/mL", comparator: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "system": UCUM, "code": unit}
    if comparator:
        q["comparator"] = comparator
    return {"code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": q}


def test_total_from_d2_and_d3_components(reader: LabReader) -> None:
    resource = obs("62292-8", component=[component("49054-0", 4), component("1989-3", 24.96, "nmol/L")])
    result = one(reader, resource)
    assert (result.role, result.value, result.code) == ("total", pytest.approx(14.0), "62292-8")


def test_components_under_a_local_panel_code(reader: LabReader) -> None:
    resource = obs("62292-8", component=[component("49054-0", 2, comparator="<"), component("1989-3", 10)])
    resource["code"] = {"coding": [{"system": "http://acme.example/labs", "code": "VITD"}]}
    result = one(reader, resource)
    assert (result.value, result.comparator, result.code) == (12, "<", "49054-0+1989-3")


def test_a_d3_component_alone_is_not_a_total(reader: LabReader) -> None:
    resource = obs("2345-7", component=[component("1989-3", 24)])
    assert read(reader, resource).items == ()


# --- reference ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        (
            [
                {
                    "low": {"value": 0, "system": UCUM, "code": "mmol/L"},
                    "high": {"value": 0, "system": UCUM, "code": "mmol/L"},
                }
            ],
            (None, None),
        ),
        (
            [
                {
                    "low": {"value": 3.6, "system": UCUM, "code": "mmol/L"},
                    "high": {"value": 5.2, "system": UCUM, "code": "mmol/L"},
                }
            ],
            (3.6, 5.2),
        ),
        ([{"low": {"value": 3.6, "unit": "mEq/L"}}], (3.6, None)),
        ([{"low": {"value": 3.6}, "high": {"value": 5.2}}], (None, None)),  # no unit: cannot convert
        (
            [
                {
                    "low": {"value": 5.2, "system": UCUM, "code": "mmol/L"},
                    "high": {"value": 3.6, "system": UCUM, "code": "mmol/L"},
                }
            ],
            (None, None),
        ),
        ([{"text": "3.5-5.0"}], (None, None)),
        (
            [
                {"type": {"coding": [{"code": "treatment"}]}, "low": {"value": 4, "system": UCUM, "code": "mmol/L"}},
                {"type": {"coding": [{"code": "normal"}]}, "low": {"value": 3.4, "system": UCUM, "code": "mmol/L"}},
            ],
            (3.4, None),
        ),
    ],
)
def test_reference_ranges(
    reader: LabReader, ranges: list[dict[str, Any]], expected: tuple[float | None, float | None]
) -> None:
    result = one(reader, obs("2823-3", 4.0, "mmol/L", referenceRange=ranges))
    assert (result.range_low, result.range_high) == expected


def test_reference_range_is_converted_like_the_value(reader: LabReader) -> None:
    rr = [
        {
            "low": {"value": 0.7, "system": UCUM, "code": "mmol/L"},
            "high": {"value": 1.0, "system": UCUM, "code": "mmol/L"},
        }
    ]
    result = one(reader, obs("19123-9", 0.8, "mmol/L", referenceRange=rr))
    assert result.range_low == pytest.approx(0.7 / 0.4114) and result.range_high == pytest.approx(1.0 / 0.4114)


def test_every_resource_is_accounted_for_once(reader: LabReader) -> None:
    """Kept, malformed, about another patient or of no interest: the four add up to what came in."""
    kept = obs("62292-8", 12, "ng/mL", id="a")
    resources = [
        kept,
        obs("62292-8", 12, "ng/mL", id="a"),  # the same result again
        obs("62292-8", 13, "ng/mL", status="preliminary"),  # a status that does not count
        obs("1234-5", 4.0, "mmol/L"),  # a code the rules do not read
        {"resourceType": "Condition", "id": "c"},  # another type
        "junk",  # not a resource
        obs("62292-8", 12, "ng/mL") | {"status": 7},  # malformed
        obs("62292-8", 12, "ng/mL") | {"effectiveDateTime": "yesterday"},  # a date that is no date
        obs("62292-8", 12, "ng/mL", patient="someone-else"),
    ]
    got = reader.read(resources, PATIENT)
    assert (len(got.items), got.malformed, got.other_patient, got.ignored) == (1, 2, 1, 5)
