"""Electrolyte ranges, critical values, Payne's correction and the choice of calcium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from cds_service.clinical.electrolytes import ElectrolyteAssessment, Range, assess_electrolytes, judge, to_check
from cds_service.clinical.results import LabResult
from cds_service.content.loader import Content

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
        analytes=content.analytes,
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


@pytest.mark.parametrize(
    ("results", "measure", "flag"),
    [
        # the newest calcium of any kind decides: an old ionized one never hides a newer total
        ([lab("calcium", 13.0, 0, role="total"), lab("calcium_ionized", 1.20, 80)], "calcium", "high"),
        ([lab("calcium", 7.9, 2, role="total"), lab("calcium_ionized", 1.20, 10)], "calcium", "low"),
        ([lab("calcium", 9.4, 10, role="total"), lab("calcium_ionized", 1.40, 2)], "calcium_ionized", "high"),
        # the same day: the ionized one decides, whatever the hour
        ([lab("calcium", 7.9, 1.2, role="total"), lab("calcium_ionized", 1.20, 1.5)], "calcium_ionized", None),
        ([lab("calcium", 11.0, 1.5, role="total"), lab("calcium_ionized", 1.20, 1.2)], "calcium_ionized", None),
        # a corrected calcium the laboratory reported stands before the total of its day
        ([lab("calcium", 7.9, 5, role="total"), lab("calcium", 8.0, 5, role="corrected")], "calcium_corrected", "low"),
    ],
    ids=["old-ionized-new-total", "newer-total", "newer-ionized", "same-day-a", "same-day-b", "reported-corrected"],
)
def test_the_newest_calcium_of_any_kind_decides(
    content: Content, results: list[LabResult], measure: str, flag: str | None
) -> None:
    ca = assess(content, results).calcium
    assert ca is not None and (ca.measure, ca.flag) == (measure, flag)


@pytest.mark.parametrize(
    ("calcium", "albumin", "measure", "value", "flag", "critical"),
    [
        (7.9, 2.5, "calcium_corrected", 9.1, None, False),  # low as measured, normal corrected
        (8.0, 3.0, "calcium_corrected", 8.8, None, False),
        (8.0, 3.99, "calcium_corrected", 8.008, "low", False),
        (8.0, 4.0, "calcium", 8.0, "low", False),  # at 4.0 no correction
        (8.7, 4.2, "calcium", 8.7, None, False),  # never corrected downwards (was "8.54 low")
        (10.6, 4.8, "calcium", 10.6, "high", False),  # a high calcium stays high (was no card)
        (12.3, 4.5, "calcium", 12.3, "high", True),  # a critical one stays critical (was a warning)
        (10.0, 3.0, "calcium_corrected", 10.8, "high", False),  # the correction reveals a high calcium
        (11.6, 3.0, "calcium_corrected", 12.4, "high", True),
        (6.5, 2.0, "calcium", 6.5, "low", True),  # a measured critical value is judged as measured
        # Revision 2026-12-07 (very low albumin): below 2.5 g/dL a low total stays low, the
        # correction only an estimate beside it.
        (8.0, 2.4, "calcium", 8.0, "low", False),
        (12.5, 3.5, "calcium", 12.5, "high", True),
    ],
)
def test_payne_only_below_albumin_4_and_only_upwards(
    content: Content, calcium: float, albumin: float, measure: str, value: float, flag: str | None, critical: bool
) -> None:
    ca = assess(content, [lab("calcium", calcium, 5, role="total"), lab("albumin", albumin, 5)]).calcium
    assert ca is not None
    assert (ca.measure, ca.flag, ca.critical) == (measure, flag, critical)
    assert ca.value == pytest.approx(value)
    # The albumin is named where it corrected the value, or (below 2.5 g/dL) gave an estimate.
    assert (ca.albumin is not None) is (measure == "calcium_corrected" or (albumin < 2.5 and flag == "low"))
    assert (ca.estimate is not None) is (measure == "calcium" and albumin < 2.5 and flag == "low")
    assert ca.value >= calcium  # no correction ever lowers a calcium


def test_unreadable_albumin_or_censored_calcium_is_not_corrected(content: Content) -> None:
    albumin = LabResult("albumin", "measured", "1751-7", "albumin", None, "final", AS_OF - timedelta(days=5))
    ca = assess(content, [lab("calcium", 7.9, 5, role="total"), albumin]).calcium
    assert ca is not None and ca.measure == "calcium" and ca.flag == "low"
    censored = assess(content, [lab("calcium", 7.0, 5, role="total", comparator="<"), lab("albumin", 2.5, 5)]).calcium
    assert censored is not None and censored.measure == "calcium" and censored.albumin is None


def unreadable(analyte: str, days_ago: float, role: str = "measured") -> LabResult:
    return LabResult(analyte, role, "x", analyte, None, "final", AS_OF - timedelta(days=days_ago), problem="unit g/dL")


@pytest.mark.parametrize(
    ("results", "decided"),
    [
        ([unreadable("potassium", 2), lab("potassium", 2.9, 30)], "unreadable"),  # the older low K is not used
        ([lab("potassium", 4.1, 1), unreadable("potassium", 2)], "finding"),
        ([unreadable("potassium", 91), lab("potassium", 4.0, 95)], "not recent"),
        ([unreadable("potassium", 89)], "unreadable"),
    ],
)
def test_a_newer_unreadable_result_stops_judgement_from_older_ones(
    content: Content, results: list[LabResult], decided: str
) -> None:
    a = assess(content, results)
    got = (
        "finding"
        if any(f.electrolyte == "potassium" for f in a.findings)
        else "unreadable"
        if any(e == "potassium" for e, _ in a.unreadable)
        else "not recent"
        if "potassium" in a.not_recent
        else "?"
    )
    assert got == decided


def test_an_unreadable_calcium_on_the_newest_day_stops_older_ones(content: Content) -> None:
    a = assess(content, [unreadable("calcium_ionized", 1), lab("calcium", 13.0, 20, role="total")])
    assert a.calcium is None and [e for e, _ in a.unreadable] == ["calcium"] and "calcium" not in a.not_recent
    # the same day, a readable total stands in for an unreadable ionized one
    a = assess(content, [unreadable("calcium_ionized", 1), lab("calcium", 13.0, 1, role="total")])
    assert a.calcium is not None and a.calcium.measure == "calcium" and a.unreadable == ()


def test_ionized_calcium_has_its_own_critical_values(content: Content) -> None:
    (ca,) = assess(content, [lab("calcium_ionized", 0.85)]).findings
    assert ca.flag == "low" and ca.critical


def test_censored_values_are_judged_past_their_bound(content: Content) -> None:
    (k,) = assess(content, [lab("potassium", 3.5, comparator="<")]).findings
    assert k.flag == "low"


NONE_RECENT = ElectrolyteAssessment((), ("potassium", "magnesium", "calcium"))


@pytest.mark.parametrize(
    ("assessment", "cramps", "deficient", "diuretic", "wanted"),
    [
        (NONE_RECENT, True, False, False, ("potassium", "magnesium", "calcium")),
        (NONE_RECENT, False, True, False, ("calcium",)),
        (NONE_RECENT, False, True, True, ("potassium", "magnesium", "calcium")),
        (NONE_RECENT, False, False, True, ()),  # insufficient or sufficient, no cramps: no reason
        (NONE_RECENT, False, False, False, ()),
        (
            ElectrolyteAssessment((), ("magnesium",), (("potassium", unreadable("potassium", 2)),)),
            True,
            False,
            False,
            ("potassium", "magnesium"),
        ),  # an unreadable recent result counts as missing
        (ElectrolyteAssessment((), ("potassium", "magnesium")), False, True, False, ()),  # calcium is recent
    ],
)
def test_which_electrolytes_to_check(
    content: Content,
    assessment: ElectrolyteAssessment,
    cramps: bool,
    deficient: bool,
    diuretic: bool,
    wanted: tuple[str, ...],
) -> None:
    checked = to_check(assessment, content.analytes, cramps=cramps, deficient=deficient, on_loop_or_thiazide=diuretic)
    assert checked == wanted


def test_an_unreadable_repeat_never_hides_an_abnormal_result_before_it(content: Content) -> None:
    """The newest potassium could not be read: no status is inferred (it is not a finding), but the
    critical 6.5 of a week before is still shown, as what it is."""
    a = assess(content, [unreadable("potassium", 1), lab("potassium", 6.5, 7)])
    assert [e for e, _ in a.unreadable] == ["potassium"] and a.findings == ()
    (k,) = a.abnormal
    assert k.value == 6.5 and k.critical and k.superseded_by is a.unreadable[0][1]
    # a normal result before it stays quiet
    assert assess(content, [unreadable("potassium", 1), lab("potassium", 4.2, 7)]).abnormal == ()
    # a high calcium before an unreadable one still counts as hypercalcaemia (no vitamin D invited)
    hyper = assess(content, [unreadable("calcium", 1, role="total"), lab("calcium", 11.0, 7, role="total")])
    assert hyper.calcium is None and hyper.hypercalcaemia is not None and hyper.hypercalcaemia.value == 11.0


def _at(result: LabResult, written: str) -> LabResult:
    return msgspec.structs.replace(result, effective=datetime.fromisoformat(written))


@pytest.mark.parametrize(
    ("results", "measure", "value", "flag"),
    [
        # From an independent check: a high total at 23:00-05:00 (04:00Z) is newer than a normal one
        # at 01:00Z the next calendar day, and decides (it was hidden, and vitamin D suggested).
        (
            [
                _at(lab("calcium", 11.0, role="total"), "2026-11-20T23:00:00-05:00"),
                _at(lab("calcium", 9.5, role="total"), "2026-11-21T01:00:00+00:00"),
            ],
            "calcium",
            11.0,
            "high",
        ),
        # An ionized calcium three hours after a total, on the same UTC day, decides.
        (
            [
                _at(lab("calcium_ionized", 1.45), "2026-11-20T23:00:00-05:00"),
                _at(lab("calcium", 9.5, role="total"), "2026-11-21T01:00:00+00:00"),
            ],
            "calcium_ionized",
            1.45,
            "high",
        ),
        # A total and an ionized of one UTC day, written in different zones: the ionized decides.
        (
            [
                _at(lab("calcium", 11.0, role="total"), "2026-11-21T01:00:00+05:00"),
                _at(lab("calcium_ionized", 1.20), "2026-11-20T10:00:00+00:00"),
            ],
            "calcium_ionized",
            1.20,
            None,
        ),
    ],
)
def test_calcium_days_are_utc_days_whatever_zone_a_time_is_written_in(
    content: Content, results: list[LabResult], measure: str, value: float, flag: str | None
) -> None:
    ca = assess(content, results).calcium
    assert ca is not None and (ca.measure, ca.value, ca.flag) == (measure, value, flag)


def test_payne_albumin_of_the_same_utc_day_corrects(content: Content) -> None:
    """Albumin three and a half hours before a low total, the same UTC day although written in
    another zone, corrects it; albumin of another UTC day does not."""
    total = _at(lab("calcium", 7.9, role="total"), "2026-11-20T23:30:00-05:00")  # 04:30Z on the 21st
    same_day = _at(lab("albumin", 2.5), "2026-11-21T01:00:00+00:00")
    (ca,) = assess(content, [total, same_day]).findings
    assert ca.measure == "calcium_corrected"
    earlier = _at(lab("albumin", 2.5), "2026-11-20T18:00:00-05:00")  # 23:00Z on the 20th
    (ca,) = assess(content, [total, earlier]).findings
    assert ca.measure == "calcium" and ca.flag == "low"
