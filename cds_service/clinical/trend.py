"""The trend behind the cards, for the SMART app: each analyte's results over the years, judged as
the cards judge them, and the vitamin D and calcium products as courses in time (rulebook,
"The trend"). Pure: the results come read by the cards' reading rules (fhir/labs.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ..content.schema import AnalyteTable, Payne, Profile
from . import electrolytes, vitamin_d
from .electrolytes import judge, payne_corrected, result_range
from .results import LabResult, latest, newest_first, standing, visible
from .vitamin_d import STATUS_ROLES, Status, classify


@dataclass(frozen=True)
class Point:
    """One result. `value` None: it could not be interpreted, and it is shown as such, never dropped."""

    result: LabResult
    value: float | None  # canonical unit
    # Vitamin D: its status. An electrolyte: "low", "high" or None (in range); for one that could
    # not be interpreted, the laboratory's flag, as the cards judge it.
    judgement: str | None
    corrected: float | None = None  # calcium corrected for a same-day low albumin (Payne)
    critical: bool = False  # past a critical value, or flagged critical by the laboratory


@dataclass(frozen=True)
class Series:
    analyte: str
    unit: str
    points: tuple[Point, ...]  # oldest first
    low: float | None = None  # the content's range, for the chart's shading
    high: float | None = None


@dataclass(frozen=True)
class Band:
    """A vitamin D status band of the threshold profile; None: open at that end."""

    status: Status
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Course:
    """A medicine holding vitamin D or calcium, from its start to its end. `end` None: ongoing
    (active) or, for one no longer active, not recorded."""

    name: str  # the product, as the content names it: "cholecalciferol"
    holds: tuple[str, ...]  # "vitamin_d", "calcium"
    start: date | None
    end: date | None
    active: bool
    ordered: str = ""  # the medicine as the order names it, strength and form included


@dataclass(frozen=True)
class Trend:
    first_day: date
    last_day: date
    bands: tuple[Band, ...]
    vitamin_d: Series
    electrolytes: tuple[Series, ...]
    courses: tuple[Course, ...]
    undated: tuple[LabResult, ...] = ()  # no place on a time axis: listed beside the charts, never dropped
    malformed: int = 0  # resources that could not be read at all (a date no calendar holds): counted, said


def bands(profile: Profile) -> tuple[Band, ...]:
    """The profile's status bands, lowest first, with the cut-points `band` uses."""
    return (
        Band(Status.DEFICIENT, None, profile.deficient_below),
        Band(Status.INSUFFICIENT, profile.deficient_below, profile.insufficient_below),
        Band(Status.SUFFICIENT, profile.insufficient_below, profile.high_above),
        Band(Status.HIGH, profile.high_above, profile.very_high_above),
        Band(Status.VERY_HIGH, profile.very_high_above, None),
    )


def build_trend(
    labs: Iterable[LabResult],
    courses: Iterable[Course],
    *,
    as_of: datetime,
    years: int,
    profile: Profile,
    analytes: AnalyteTable,
    payne: Payne,
    future_allowance: timedelta,
    accept_opt_in: bool = False,
    malformed: int = 0,
) -> Trend:
    """The last `years` of results and courses. Reports of one result are one point, the one that
    stands (rulebook, "Corrections and ties"); a result dated after `as_of` did not exist yet; an
    undated result has no place on a time axis."""
    last_day = as_of.astimezone(UTC).date()
    first_day = last_day - timedelta(days=round(365.25 * years))
    seen = visible(labs, as_of, future_allowance)
    shown = [r for r in seen if r.effective is not None and r.effective.astimezone(UTC).date() >= first_day]
    # Every analyte with a range has its series, ionized calcium too: the cards judge it, and it
    # decides for calcium on its day (from an independent review: it was left off).
    ranged = tuple(analytes.ranges)
    charted = {"vitamin_d", *ranged}
    return Trend(
        first_day,
        last_day,
        bands(profile),
        _vitamin_d_series(shown, profile, analytes, accept_opt_in),
        tuple(_electrolyte_series(key, shown, analytes, payne) for key in ranged),
        tuple(
            sorted(
                (c for c in courses if c.end is None or c.end >= first_day),
                key=lambda c: (c.start or first_day, c.name),
            )
        ),
        tuple(r for r in seen if r.effective is None and r.analyte in charted),
        malformed,
    )


def _vitamin_d_series(results: Sequence[LabResult], profile: Profile, analytes: AnalyteTable, opt_in: bool) -> Series:
    roles = STATUS_ROLES | {"opt_in"} if opt_in else STATUS_ROLES
    mine = [vitamin_d.settled(r, profile) for r in results if r.analyte == "vitamin_d" and r.role in roles]
    points = [
        Point(r, r.value, classify(r, profile) if r.value is not None else None)
        for r in _oldest_first(standing(mine, lambda r: vitamin_d.concern(r, profile)))
    ]
    return Series("vitamin_d", analytes.units["vitamin_d"].canonical, tuple(points))


def _electrolyte_series(key: str, results: Sequence[LabResult], analytes: AnalyteTable, payne: Payne) -> Series:
    ranges = analytes.ranges
    mine = [electrolytes.settled(r, ranges) for r in results if r.analyte == key]
    albumin = [r for r in results if r.analyte == payne.albumin] if key == payne.corrects else []
    points = []
    for r in _oldest_first(standing(mine, lambda r: electrolytes.concern(r, ranges))):
        measure_range = result_range(r, ranges)
        if r.value is None:  # abnormal only by the laboratory's flag, as the cards read it
            judgement, critical = (r.flag.direction, r.flag.critical) if r.flag is not None else (None, False)
        elif measure_range is not None:
            judgement, critical = judge(r.decision_value, measure_range)
        else:
            judgement, critical = None, False
        corrected = _corrected(r, albumin, payne) if albumin and r.role != "corrected" else None
        points.append(Point(r, r.value, judgement, corrected, critical))
    spec = ranges.get(key)
    return Series(
        key,
        analytes.units[key].canonical,
        tuple(points),
        spec.low if spec else None,
        spec.high if spec else None,
    )


def _corrected(result: LabResult, albumin: Sequence[LabResult], payne: Payne) -> float | None:
    """The same-day correction the cards make, where they would make it (rulebook, "Calcium")."""
    if result.value is None or result.comparator is not None or result.effective is None:
        return None
    day = result.effective.astimezone(UTC).date()
    same_day = latest(a for a in albumin if a.effective is not None and a.effective.astimezone(UTC).date() == day)
    if same_day is None or same_day.value is None or same_day.comparator is not None:
        return None
    if same_day.value >= payne.reference_albumin:  # corrected upwards only
        return None
    return payne_corrected(result.value, same_day.value, payne)


def _oldest_first(results: Iterable[LabResult]) -> list[LabResult]:
    return newest_first(results)[::-1]
