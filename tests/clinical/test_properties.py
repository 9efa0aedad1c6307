"""Properties of the clinical core, over arbitrary Observations (hypothesis).

Whatever the EHR sends (any status or unit text, comparators, huge, negative, non-finite and
string values, missing fields, dates in every FHIR format and time zone, components), reading and
deciding never raise, every answer obeys the response rules, and: a value converted to canonical
units and back is unchanged; classification is monotonic in the value; another patient's data and
a duplicated resource never change the outcome.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.electrolytes import Range, judge
from cds_service.clinical.results import LabResult
from cds_service.clinical.vitamin_d import Status, classify
from cds_service.content.loader import Content, load_content
from cds_service.fhir.client import FhirClient
from cds_service.fhir.labs import LabReader
from cds_service.protocol import HookRequest
from cds_service.rendering import CardRenderer
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.settings import Settings
from tests.builders import ICD10, LOINC, RXNORM, UCUM, hook_request
from tests.conftest import AS_OF
from tests.rules import check_response, without_uuids

CONTENT: Content = load_content()
SETTINGS = Settings(auth="off")
_RECORD = RecordReader(CONTENT, SETTINGS)
SERVICE = VitaminDCramps(_RECORD, CardRenderer(CONTENT, _RECORD.profile_name), frozenset())
READER = LabReader(CONTENT)


class _EveryResultRead(RecordReader):
    """The record read without skipping what no window reaches: what the service must equal."""

    def _since(self, as_of: Any) -> dict[str, date]:
        return {}


_EVERYTHING = _EveryResultRead(CONTENT, SETTINGS)
EVERY_RESULT_READ = VitaminDCramps(_EVERYTHING, CardRenderer(CONTENT, _EVERYTHING.profile_name), frozenset())
FHIR = FhirClient(httpx.AsyncClient(), SETTINGS)  # full prefetch: never used
OURS, OTHER = "p1", "p2"

_ROLE_CODES = sorted(CONTENT.code_roles)
_COMPONENT_CODES = [*CONTENT.analytes.vitamin_d.component_d2, *CONTENT.analytes.vitamin_d.component_d3]
_UNITS = sorted({unit for spec in CONTENT.analytes.units.values() for unit in spec.factors()})

# -- strategies ----------------------------------------------------------------------------------

_recent = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))
_offset = st.integers(-14 * 60, 14 * 60).map(lambda m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}")
_time = st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.sampled_from(["", ".5", ".123456"]))
fhir_dates = st.one_of(
    _recent.map(lambda d: d.isoformat()),  # date
    st.builds(
        lambda d, t, tz: f"{d.isoformat()}T{t[0]:02d}:{t[1]:02d}:{t[2]:02d}{t[3]}{tz}",
        _recent,
        _time,
        st.one_of(st.just("Z"), _offset),
    ),  # dateTime and instant, any zone
    st.integers(1900, 2100).map(lambda y: f"{y:04d}"),  # year
    st.tuples(st.integers(1900, 2100), st.integers(1, 12)).map(lambda ym: f"{ym[0]:04d}-{ym[1]:02d}"),  # year-month
    st.text(max_size=25),  # anything
    st.integers(),  # not even a string
)
values = st.one_of(
    st.floats(min_value=0, max_value=500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(1e308),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
unit_texts = st.one_of(
    st.sampled_from([*_UNITS, "NG/ML", "nmol / l", "µg/L", "mcg/L", "meq/L", "mEq/L"]), st.text(max_size=10)
)
comparators = st.one_of(st.none(), st.sampled_from(["<", "<=", ">", ">=", "~", ""]))
statuses = st.one_of(
    st.sampled_from(["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error"]),
    st.sampled_from(["unknown", "FINAL", ""]),
)


def _concept(codes: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    coding = st.fixed_dictionaries({"code": codes}, optional={"system": st.sampled_from([LOINC, "urn:local"])})
    return st.fixed_dictionaries({"coding": st.lists(coding, max_size=2)}, optional={"text": st.text(max_size=5)})


quantities = st.fixed_dictionaries(
    {},
    optional={
        "value": values,
        "unit": unit_texts,
        "code": st.sampled_from(_UNITS),
        "system": st.sampled_from([UCUM, "urn:other"]),
        "comparator": comparators,
    },
)
value_strings = st.one_of(
    st.builds(lambda c, v, u: f"{c or ''}{v} {u}", comparators, st.floats(0, 500, allow_nan=False), unit_texts),
    st.text(max_size=12),
)
subjects = st.one_of(
    st.sampled_from([{"reference": f"Patient/{OURS}"}, {"reference": f"https://ehr.example/fhir/Patient/{OURS}"}]),
    st.just({"reference": f"Patient/{OTHER}"}),
    st.just({}),
    st.just({"reference": 5}),
)
components = st.fixed_dictionaries(
    {"code": _concept(st.sampled_from(_COMPONENT_CODES))},
    optional={"valueQuantity": quantities, "valueString": value_strings},
)
observations = st.fixed_dictionaries(
    {"resourceType": st.just("Observation"), "code": _concept(st.sampled_from([*_ROLE_CODES, "1234-5"]))},
    optional={
        "id": st.text(alphabet="abc", min_size=1, max_size=2),
        "status": statuses,
        "subject": subjects,
        "effectiveDateTime": fhir_dates,
        "effectivePeriod": st.fixed_dictionaries({}, optional={"start": fhir_dates, "end": fhir_dates}),
        "effectiveInstant": fhir_dates,
        "issued": fhir_dates,
        "valueQuantity": quantities,
        "valueString": value_strings,
        "dataAbsentReason": _concept(st.just("not-performed")),
        "referenceRange": st.lists(
            st.fixed_dictionaries({}, optional={"low": quantities, "high": quantities}), max_size=2
        ),
        "component": st.lists(components, max_size=3),
    },
)


_ANALYTE_UNITS = [(a, u) for a, spec in CONTENT.analytes.units.items() for u in spec.factors()]
_analyte_units = st.sampled_from(_ANALYTE_UNITS)
_last_year = st.dates(min_value=date(2025, 11, 1), max_value=date(2026, 11, 25)).map(lambda d: d.isoformat())


@st.composite
def plausible(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed result of one of the analytes, in any of its units, often without an id: the
    data that reaches the decisions (arbitrary Observations seldom get that far)."""
    vitamin_d = [(a, u) for a, u in _ANALYTE_UNITS if a == "vitamin_d"]
    analyte, unit = draw(st.one_of(st.sampled_from(vitamin_d), _analyte_units))  # half of them vitamin D
    code = draw(st.sampled_from([c for c, (a, _, _) in CONTENT.code_roles.items() if a == analyte]))
    quantity: dict[str, Any] = {"value": draw(st.floats(0, 300)), "unit": unit, "system": UCUM, "code": unit}
    if comparator := draw(st.sampled_from([None, None, "<", ">"])):
        quantity["comparator"] = comparator
    resource = {
        "resourceType": "Observation",
        "status": draw(st.sampled_from(["final", "amended", "preliminary", "unknown"])),
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{OURS}"},
        "effectiveDateTime": draw(st.one_of(_last_year, fhir_dates)),
        "valueQuantity": quantity,
    }
    if draw(st.booleans()):
        resource["id"] = draw(st.text(alphabet="abcdef", min_size=1, max_size=3))
    return resource


def _about(patient: str) -> st.SearchStrategy[dict[str, Any]]:
    """Observations, Conditions and MedicationRequests that all name `patient`."""
    subject = st.just({"reference": f"Patient/{patient}"})
    conditions = st.fixed_dictionaries(
        {
            "resourceType": st.just("Condition"),
            "code": st.sampled_from(["R25.2", "E83.42", "N18.5", "I10"]).map(
                lambda c: {"coding": [{"system": ICD10, "code": c}]}
            ),
            "clinicalStatus": st.just({"coding": [{"code": "active"}]}),
            "subject": subject,
        }
    )
    medications = st.fixed_dictionaries(
        {
            "resourceType": st.just("MedicationRequest"),
            "status": st.just("active"),
            "medicationCodeableConcept": st.sampled_from(["furosemide 40 mg", "cholecalciferol", "aspirin"]).map(
                lambda name: {"coding": [{"system": RXNORM, "display": name}]}
            ),
            "subject": subject,
        }
    )
    return st.one_of(
        observations.map(lambda o: o | {"subject": {"reference": f"Patient/{patient}"}}),
        plausible().map(lambda o: o | {"subject": {"reference": f"Patient/{patient}"}}),
        conditions,
        medications,
    )


records = st.lists(st.one_of(plausible(), observations, _about(OURS)), max_size=12)

# -- the pipeline --------------------------------------------------------------------------------


def cards_for(resources: list[Any], service: VitaminDCramps = SERVICE) -> list[dict[str, Any]]:
    """The cards for a record whose resources all come in every prefetch key (a sloppy EHR)."""
    labs = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Observation"]
    request = hook_request(
        labs,
        labs,
        conditions=[r for r in resources if r.get("resourceType") == "Condition"],
        medications=[r for r in resources if r.get("resourceType") == "MedicationRequest"],
        patient=OURS,
    )
    outcome = asyncio.run(service.answer(HookRequest.model_validate(request), AS_OF, FHIR))
    body = {"cards": [card.model_dump(mode="json", exclude_none=True) for card in outcome.cards]}
    check_response(body, OURS)
    return without_uuids(body["cards"])  # type: ignore[no-any-return]


@given(records)
def test_any_record_is_read_and_decided_within_the_rules(resources: list[dict[str, Any]]) -> None:
    cards_for(resources)


@settings(max_examples=300)
@given(records)
def test_results_no_window_reaches_are_never_missed_unread(resources: list[dict[str, Any]]) -> None:
    """The service leaves unread the results of an analyte judged on recent results alone that are
    older than its window (rulebook, "Reading results"): its cards are those of reading them all."""
    assert cards_for(resources) == cards_for(resources, EVERY_RESULT_READ)


@given(st.lists(observations, max_size=20))
def test_reading_never_raises_and_accounts_for_every_observation(resources: list[dict[str, Any]]) -> None:
    read = READER.read(resources, OURS)
    assert len(read.items) + read.malformed + read.other_patient + read.ignored + read.old == len(resources)
    for result in read.items:
        assert result.value is None or (math.isfinite(result.value) and result.value >= 0)
        assert result.effective is None or result.effective.tzinfo is not None


@given(records, st.lists(_about(OTHER), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_another_patients_data_never_changes_the_outcome(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], rnd: Any
) -> None:
    mixed = list(ours)
    for resource in theirs:  # anywhere, ours keeping their order
        mixed.insert(rnd.randint(0, len(mixed)), resource)
    assert cards_for(mixed) == cards_for(ours)


@settings(max_examples=300)
@given(records.filter(bool), st.data())
def test_a_duplicated_resource_never_changes_the_outcome(resources: list[dict[str, Any]], data: st.DataObject) -> None:
    again = data.draw(st.sampled_from(resources))
    assert cards_for([*resources, again]) == cards_for(resources)


# -- units and classification ----------------------------------------------------------------------


@given(_analyte_units, st.floats(min_value=1e-6, max_value=1e6))
def test_a_value_converted_to_canonical_and_back_is_unchanged(analyte_unit: tuple[str, str], value: float) -> None:
    """Or, outside the analyte's plausible bounds, kept as a result that could not be interpreted."""
    analyte, unit = analyte_unit
    code = next(c for c, (a, _, _) in CONTENT.code_roles.items() if a == analyte)
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    observation = {"resourceType": "Observation", "status": "final", "valueQuantity": quantity}
    observation |= {"code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{OURS}"}}
    (result,) = READER.read([observation], OURS).items
    spec = CONTENT.analytes.units[analyte]
    canonical = value / spec.factors()[unit]
    if spec.plausible is not None and not spec.plausible[0] <= canonical <= spec.plausible[1]:
        assert result.value is None and result.problem is not None and result.problem.startswith("implausible")
        return
    assert result.value is not None and result.unit == spec.canonical
    back = result.value * spec.factors()[unit]
    assert math.isclose(back, value, rel_tol=1e-12)
    if result.reported_value is not None:
        assert result.reported_value == value and result.reported_unit == unit


_ORDER = [Status.DEFICIENT, Status.INSUFFICIENT, Status.SUFFICIENT, Status.HIGH, Status.VERY_HIGH]


def _vitamin_d(value: float, comparator: Any = None) -> LabResult:
    return LabResult("vitamin_d", "total", "62292-8", "25(OH)D", "x", "final", AS_OF, value, comparator, "ng/mL")


@pytest.mark.parametrize("profile", sorted(CONTENT.thresholds.vitamin_d_profiles))
@given(st.floats(0, 1000), st.floats(0, 1000), st.sampled_from([None, "<", "<=", ">", ">="]))
def test_vitamin_d_status_is_monotonic_in_the_value(profile: str, a: float, b: float, comparator: Any) -> None:
    low, high = sorted((a, b))
    bands = CONTENT.profile(profile)
    assert _ORDER.index(classify(_vitamin_d(low, comparator), bands)) <= _ORDER.index(
        classify(_vitamin_d(high, comparator), bands)
    )


_FLAGS = ["low", None, "high"]


@given(
    st.floats(0, 100),
    st.floats(0, 100),
    st.one_of(st.none(), st.floats(0, 50)),
    st.one_of(st.none(), st.floats(0, 50)),
)
def test_electrolyte_flags_are_monotonic_in_the_value(a: float, b: float, lo: float | None, hi: float | None) -> None:
    low, high = sorted((a, b))
    for spec in CONTENT.analytes.ranges.values():
        measure_range = Range(lo, hi, spec.critical_low, spec.critical_high, lo is not None or hi is not None)
        flag_low, critical_low = judge(low, measure_range)
        flag_high, critical_high = judge(high, measure_range)
        assert _FLAGS.index(flag_low) <= _FLAGS.index(flag_high)
        if critical_low and low >= spec.critical_low:  # critical only above: so is every higher value
            assert critical_high
