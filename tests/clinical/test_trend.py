"""The trend behind the cards (docs/clinical-rules.md, "The trend"): results read by the cards'
reading rules, judged as the cards judge them, at the boundaries of each band and window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cds_service.clinical.trend import Course, Trend, build_trend
from cds_service.content.loader import Content, load_content
from cds_service.fhir.facts import courses
from cds_service.fhir.labs import LabReader
from tests.builders import PATIENT, interpretation, medication, obs, ref_range

CONTENT: Content = load_content()
PROFILE = CONTENT.profile("endocrine-2011")
AS_OF = datetime(2026, 12, 7, 12, tzinfo=UTC)
VITAMIN_D, CALCIUM, ALBUMIN, POTASSIUM = "62292-8", "17861-6", "1751-7", "2823-3"


def _day(days_ago: int) -> str:
    return (AS_OF.date() - timedelta(days=days_ago)).isoformat()


def trend(*resources: dict[str, Any], years: int = 5, course: tuple[Course, ...] = ()) -> Trend:
    labs = LabReader(CONTENT).read(resources, PATIENT).items
    thresholds = CONTENT.thresholds
    return build_trend(
        labs,
        course,
        as_of=AS_OF,
        years=years,
        profile=PROFILE,
        analytes=CONTENT.analytes,
        payne=thresholds.payne,
        future_allowance=timedelta(hours=thresholds.windows.future_allowance_hours),
    )


def test_the_bands_are_the_profile_s_cut_points() -> None:
    assert [(b.status, b.low, b.high) for b in trend().bands] == [
        ("deficient", None, 20),
        ("insufficient", 20, 30),
        ("sufficient", 30, 100),
        ("high", 100, 150),
        ("very high", 150, None),
    ]


@pytest.mark.parametrize(
    ("value", "unit", "status", "canonical"),
    [
        (19.9, "ng/mL", "deficient", 19.9),
        (20, "ng/mL", "insufficient", 20),
        (29.9, "ng/mL", "insufficient", 29.9),
        (30, "ng/mL", "sufficient", 30),
        (100, "ng/mL", "sufficient", 100),
        (100.1, "ng/mL", "high", 100.1),
        (150, "ng/mL", "high", 150),
        (150.1, "ng/mL", "very high", 150.1),
        (49.9, "nmol/L", "deficient", 49.9 / 2.496),  # converted as the cards convert
    ],
)
def test_each_point_is_judged_as_the_cards_judge_it(value: float, unit: str, status: str, canonical: float) -> None:
    (point,) = trend(obs(VITAMIN_D, value, unit, _day(10))).vitamin_d.points
    assert point.judgement == status
    assert point.value == pytest.approx(canonical, rel=1e-3)


def test_a_result_that_cannot_be_read_is_a_point_without_a_value() -> None:
    points = trend(
        obs(VITAMIN_D, 14, "ng/mL", _day(40)),
        obs(VITAMIN_D, None, None, _day(20), valueString="see comment"),
        obs(VITAMIN_D, 5, "mg", _day(10)),  # a unit no 25(OH)D is given in
    ).vitamin_d.points
    assert [(p.value, p.judgement) for p in points] == [(14, "deficient"), (None, None), (None, None)]
    assert points[1].result.problem == "text, not a value"
    assert points[2].result.problem is not None


def test_a_censored_value_that_allows_a_normal_result_is_unreadable() -> None:
    (point,) = trend(obs(VITAMIN_D, 150, "ng/mL", _day(10), comparator="<")).vitamin_d.points
    assert point.value is None and "allows a normal result" in str(point.result.problem)


def test_the_period_holds_the_years_asked_for_and_nothing_of_the_future() -> None:
    t = trend(
        obs(VITAMIN_D, 12, "ng/mL", _day(2 * 365 + 10)),
        obs(VITAMIN_D, 13, "ng/mL", _day(2 * 365 - 10)),
        obs(VITAMIN_D, 14, "ng/mL", (AS_OF + timedelta(days=3)).isoformat()),
        years=2,
    )
    assert [p.value for p in t.vitamin_d.points] == [13]
    assert t.first_day == date(2024, 12, 7) and t.last_day == date(2026, 12, 7)


def test_points_are_oldest_first_and_a_correction_stands_for_its_original() -> None:
    t = trend(
        obs(VITAMIN_D, 40, "ng/mL", _day(5), id="a"),
        obs(VITAMIN_D, 12, "ng/mL", "2026-11-27", id="b", status="final"),
        obs(VITAMIN_D, 18, "ng/mL", "2026-11-27", id="c", status="corrected"),
        obs(VITAMIN_D, 25, "ng/mL", _day(300), id="d"),
    )
    assert [p.value for p in t.vitamin_d.points] == [25, 18, 40]


def test_an_undated_result_is_listed_apart_never_dropped() -> None:
    t = trend(obs(VITAMIN_D, 14, "ng/mL", None))
    assert t.vitamin_d.points == () and [r.value for r in t.undated] == [14]


def test_a_wrong_test_is_no_point_of_the_25ohd_trend() -> None:
    assert trend(obs("62290-2", 40, "pg/mL", _day(10))).vitamin_d.points == ()


@pytest.mark.parametrize(("value", "judgement"), [(3.4, "low"), (3.5, None), (5.0, None), (5.1, "high")])
def test_an_electrolyte_is_judged_against_its_range(value: float, judgement: str | None) -> None:
    series = {s.analyte: s for s in trend(obs(POTASSIUM, value, "mmol/L", _day(10))).electrolytes}
    (point,) = series["potassium"].points
    assert point.judgement == judgement
    assert (series["potassium"].low, series["potassium"].high) == (3.5, 5.0)


def test_a_laboratory_range_judges_its_own_result() -> None:
    series = {
        s.analyte: s
        for s in trend(
            obs(POTASSIUM, 5.3, "mmol/L", _day(10), referenceRange=ref_range(3.5, 5.5, "mmol/L"))
        ).electrolytes
    }
    assert series["potassium"].points[0].judgement is None


@pytest.mark.parametrize(
    ("albumin", "albumin_day", "corrected"),
    [
        (3.0, 10, 8.8),  # Payne: 8.0 + 0.8 x (4.0 - 3.0)
        (4.0, 10, None),  # albumin not below the reference: only upwards
        (3.0, 11, None),  # another day's albumin corrects nothing
    ],
)
def test_calcium_is_corrected_as_the_cards_correct_it(
    albumin: float, albumin_day: int, corrected: float | None
) -> None:
    t = trend(obs(CALCIUM, 8.0, "mg/dL", _day(10)), obs(ALBUMIN, albumin, "g/dL", _day(albumin_day)))
    (point,) = {s.analyte: s for s in t.electrolytes}["calcium"].points
    assert point.value == 8.0
    assert point.corrected == (pytest.approx(corrected) if corrected is not None else None)


def test_every_analyte_with_a_range_has_a_series_even_without_results() -> None:
    assert [s.analyte for s in trend().electrolytes] == ["potassium", "magnesium", "calcium", "calcium_ionized"]
    assert all(s.points == () for s in trend().electrolytes)


@pytest.mark.parametrize(
    ("code", "value", "unit", "analyte", "judgement", "critical"),
    [
        ("1995-0", 0.85, "mmol/L", "calcium_ionized", "low", True),  # ionized calcium is never left off
        ("1995-0", 1.45, "mmol/L", "calcium_ionized", "high", False),
        (POTASSIUM, 6.8, "mmol/L", "potassium", "high", True),
        (POTASSIUM, 2.3, "mmol/L", "potassium", "low", True),
        (CALCIUM, 12.5, "mg/dL", "calcium", "high", True),
        (POTASSIUM, 5.8, "mmol/L", "potassium", "high", False),
    ],
)
def test_an_electrolyte_past_a_critical_value_is_shown_critical(
    code: str, value: float, unit: str, analyte: str, judgement: str, critical: bool
) -> None:
    """From an independent review: ionized calcium was left off the page, even critical, and a
    critical value was shown as merely high or low."""
    series = {s.analyte: s for s in trend(obs(code, value, unit, _day(3))).electrolytes}
    (point,) = series[analyte].points
    assert (point.judgement, point.critical) == (judgement, critical)


def test_a_result_without_a_value_is_judged_by_the_laboratory_s_flag() -> None:
    flagged = obs(
        POTASSIUM, None, None, _day(3), dataAbsentReason={"text": "see report"}, interpretation=interpretation("HH")
    )
    (point,) = {s.analyte: s for s in trend(flagged).electrolytes}["potassium"].points
    assert (point.value, point.judgement, point.critical) == (None, "high", True)


def _course(*resources: dict[str, Any]) -> list[Course]:
    return list(courses(resources, PATIENT, CONTENT.context).items)


def test_courses_are_the_vitamin_d_and_calcium_products_taken() -> None:
    stopped = medication("calcium carbonate 500 MG Oral Tablet", status="stopped")
    stopped["dispenseRequest"] = {"validityPeriod": {"start": "2025-01-01", "end": "2025-06-30T20:00:00-05:00"}}
    found = _course(
        medication("cholecalciferol 50000 UNT Oral Capsule", "316965", authored="2026-09-01"),
        stopped,
        medication("furosemide 40 MG Oral Tablet", "313988"),  # neither vitamin D nor calcium
        medication("ergocalciferol 50000 UNT Oral Capsule", status="cancelled"),  # never taken
        medication("ergocalciferol 50000 UNT Oral Capsule", status="entered-in-error"),
    )
    assert [(c.name, c.holds, c.start, c.end, c.active, c.ordered) for c in found] == [
        ("cholecalciferol", ("vitamin_d",), date(2026, 9, 1), None, True, "cholecalciferol 50000 UNT Oral Capsule"),
        # the end's UTC day; the strength as ordered, which tells a weekly course from a daily one
        (
            "calcium carbonate",
            ("calcium",),
            date(2025, 1, 1),
            date(2025, 7, 1),
            False,
            "calcium carbonate 500 MG Oral Tablet",
        ),
    ]


def test_a_course_with_a_malformed_period_is_undated_not_lost() -> None:
    request = medication("cholecalciferol 1000 UNT Oral Tablet", authored="not a date")
    request["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": "2026"}}}]
    assert [(c.name, c.start, c.end) for c in _course(request)] == [("cholecalciferol", None, None)]


def test_a_course_that_ended_before_the_period_is_left_out() -> None:
    old = Course("cholecalciferol", ("vitamin_d",), date(2019, 1, 1), date(2020, 1, 1), False)
    running = Course("calcium carbonate", ("calcium",), None, None, True)
    assert trend(course=(old, running)).courses == (running,)
