"""Electrolyte ranges, critical values, Payne's correction and the choice of calcium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_service.clinical.electrolytes import Range, assess_electrolytes, judge
from cds_service.clinical.results import LabResult
from cds_service.content import Content

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
UNITS = {
    "potassium": "mmol/L",
    "magnesium": "mg/dL",
    "calcium": "mg/dL",
    "calcium_ionized": "mmol/L",
    "albumin": "g/dL",
}


def lab(
    analyte: str,
    value: float,
    days_ago: float = 5,
    *,
    role: str = "measured",
    low: float | None = None,
    high: float | None = None,
    comparator: str | None = None,
) -> LabResult:
    return LabResult(
        analyte=analyte,
        role=role,
        code="x",
        name=analyte,
        resource_id=None,
        status="final",
        effective=AS_OF - timedelta(days=days_ago),
        value=value,
        comparator=comparator,  # type: ignore[arg-type]
        unit=UNITS[analyte],
        range_low=low,
        range_high=high,
    )


def assess(content: Content, results: list[LabResult]):
    t = content.thresholds
    return assess_electrolytes(
        results,
        as_of=AS_OF,
        ranges=t.electrolyte_ranges,
        windows=t.windows,
        payne=t.payne,
        future_allowance=timedelta(hours=24),
    )


DEFAULT_K = Range(3.5, 5.0, 2.5, 6.0, False)


@pytest.mark.parametrize(
    ("value", "flag", "critical"),
    [
        (2.4, "low", True),
        (2.5, "low", False),
        (3.49, "low", False),
        (3.5, None, False),
        (5.0, None, False),
        (5.01, "high", False),
        (6.0, "high", False),
        (6.01, "high", True),
    ],
)
def test_judge_potassium_boundaries(value: float, flag: str | None, critical: bool) -> None:
    assert judge(value, DEFAULT_K) == (flag, critical)


def test_critical_value_flags_even_inside_a_wide_laboratory_range() -> None:
    assert judge(2.0, Range(1.5, 5.0, 2.5, 6.0, True)) == ("low", True)


def test_laboratory_range_wins_over_default(content: Content) -> None:
    # 1.6 mg/dL is low by the default magnesium range (1.7) but normal for a lab whose range is 1.5-2.5
    a = assess(
        content, [lab("magnesium", 1.6, low=1.5, high=2.5), lab("potassium", 4), lab("calcium", 9.5, role="total")]
    )
    (mg,) = [f for f in a.findings if f.electrolyte == "magnesium"]
    assert mg.flag is None and mg.range.from_laboratory
    a = assess(content, [lab("magnesium", 1.6)])
    (mg,) = [f for f in a.findings if f.electrolyte == "magnesium"]
    assert mg.flag == "low" and not mg.range.from_laboratory


@pytest.mark.parametrize(("days", "recent"), [(89, True), (90, True), (91, False)])
def test_recent_means_within_90_days(content: Content, days: float, recent: bool) -> None:
    a = assess(content, [lab("potassium", 4.0, days)])
    assert ("potassium" not in a.not_recent) is recent
    assert a.not_recent[-2:] == ("magnesium", "calcium")


def test_latest_electrolyte_decides(content: Content) -> None:
    a = assess(content, [lab("potassium", 2.9, 30), lab("potassium", 4.1, 3)])
    (k,) = a.findings
    assert k.value == 4.1 and k.flag is None


def test_payne_correction_with_same_day_albumin(content: Content) -> None:
    # 7.9 + 0.8 x (4.0 - 2.5) = 9.1: low as measured, normal once corrected
    a = assess(content, [lab("calcium", 7.9, 5, role="total"), lab("albumin", 2.5, 5)])
    (ca,) = a.findings
    assert ca.measure == "calcium_corrected" and ca.value == pytest.approx(9.1) and ca.flag is None
    assert ca.albumin is not None


def test_no_payne_correction_when_albumin_is_from_another_day(content: Content) -> None:
    a = assess(content, [lab("calcium", 7.9, 5, role="total"), lab("albumin", 2.5, 6)])
    (ca,) = a.findings
    assert ca.measure == "calcium" and ca.value == 7.9 and ca.flag == "low" and ca.albumin is None


def test_corrected_calcium_as_reported_is_used(content: Content) -> None:
    a = assess(
        content,
        [lab("calcium", 7.9, 5, role="total"), lab("calcium", 8.0, 5, role="corrected"), lab("albumin", 2.5, 5)],
    )
    (ca,) = a.findings
    assert ca.measure == "calcium_corrected" and ca.value == 8.0 and ca.flag == "low" and ca.albumin is None


def test_recent_ionized_calcium_is_preferred(content: Content) -> None:
    a = assess(content, [lab("calcium", 7.9, 2, role="total"), lab("calcium_ionized", 1.20, 10)])
    (ca,) = a.findings
    assert ca.measure == "calcium_ionized" and ca.flag is None
    # an old ionized calcium does not displace a recent total
    a = assess(content, [lab("calcium", 7.9, 2, role="total"), lab("calcium_ionized", 1.20, 120)])
    (ca,) = a.findings
    assert ca.measure == "calcium" and ca.flag == "low"


def test_ionized_calcium_has_its_own_critical_values(content: Content) -> None:
    (ca,) = assess(content, [lab("calcium_ionized", 0.85)]).findings
    assert ca.flag == "low" and ca.critical


def test_censored_values_are_judged_past_their_bound(content: Content) -> None:
    (k,) = assess(content, [lab("potassium", 3.5, comparator="<")]).findings
    assert k.flag == "low"
