"""Potassium, magnesium and calcium: are they recent, and are they within range?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from ..content.schema import Payne, RangeSpec, Windows
from .results import LabResult, latest, newest, recent, settle_censored, settle_unitless, standing, visible

# The three electrolytes tied to cramps, in the order cards name them.
ELECTROLYTES = ("potassium", "magnesium", "calcium")
Flag = Literal["low", "high", "abnormal"]
# The content range each analyte is judged by (total and corrected calcium share one).
_RANGE_OF = {
    "potassium": "potassium",
    "magnesium": "magnesium",
    "calcium": "calcium",
    "calcium_ionized": "calcium_ionized",
}


@dataclass(frozen=True)
class Range:
    low: float | None
    high: float | None
    critical_low: float
    critical_high: float
    from_laboratory: bool  # the Observation's own referenceRange, not the service's default


@dataclass(frozen=True)
class Finding:
    """The recent result that stands for one electrolyte, judged against its range; or, when its
    value could not be read, as the laboratory flagged it."""

    electrolyte: str  # potassium, magnesium, calcium
    measure: str  # potassium, magnesium, calcium, calcium_ionized, calcium_corrected
    result: LabResult
    value: float | None  # canonical unit; for calcium corrected by Payne, the corrected value
    unit: str | None
    range: Range
    flag: Flag | None
    critical: bool
    albumin: LabResult | None = None  # set when this value was corrected by Payne, or estimated
    superseded_by: LabResult | None = None  # a newer result of the electrolyte that could not be read
    # With albumin too low for Payne's correction to call a low calcium normal: the measured total
    # decides, and the corrected value is shown beside it as an estimate, with an ionized calcium.
    estimate: float | None = None

    @property
    def by_laboratory(self) -> bool:
        """Abnormal by the laboratory's flag alone: the value could not be read."""
        return self.value is None

    @property
    def ionized_advised(self) -> bool:
        return self.estimate is not None


@dataclass(frozen=True)
class ElectrolyteAssessment:
    # One per electrolyte whose deciding recent result was interpreted, or flagged abnormal by the
    # laboratory when it could not be.
    findings: tuple[Finding, ...]
    not_recent: tuple[str, ...]  # electrolytes with no result in the window, card order
    unreadable: tuple[tuple[str, LabResult], ...] = ()  # (electrolyte, its deciding result, not interpretable)
    # Abnormal recent results older than an unreadable one: shown as what they are, never as the
    # current state, so that an unreadable repeat never hides them.
    superseded: tuple[Finding, ...] = ()

    @property
    def abnormal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag is not None) + self.superseded

    @property
    def calcium(self) -> Finding | None:
        return next((f for f in self.findings if f.electrolyte == "calcium"), None)

    @property
    def hypercalcaemia(self) -> Finding | None:
        """The deciding calcium when it is above its range (by value, or by the laboratory's flag
        when the value could not be read); or, when the newest could not be read, a recent high one
        before it (no vitamin D is invited past a high calcium)."""
        return next(
            (f for f in (*self.findings, *self.superseded) if f.electrolyte == "calcium" and f.flag == "high"), None
        )


def judge(value: float, measure_range: Range) -> tuple[Flag | None, bool]:
    """Flag low/high against the range and say whether a critical value is passed."""
    critical = value < measure_range.critical_low or value > measure_range.critical_high
    if (measure_range.low is not None and value < measure_range.low) or value < measure_range.critical_low:
        return "low", critical
    if (measure_range.high is not None and value > measure_range.high) or value > measure_range.critical_high:
        return "high", critical
    return None, critical


def _range(result: LabResult, default: RangeSpec) -> Range:
    if result.range_low is not None or result.range_high is not None:
        return Range(result.range_low, result.range_high, default.critical_low, default.critical_high, True)
    return Range(default.low, default.high, default.critical_low, default.critical_high, False)


def result_range(result: LabResult, ranges: dict[str, RangeSpec]) -> Range | None:
    """The range a result is judged by: its own referenceRange, else the content's default."""
    name = _RANGE_OF.get(result.analyte)
    return _range(result, ranges[name]) if name is not None else None


def _finding(electrolyte: str, measure: str, result: LabResult, default: RangeSpec) -> Finding:
    measure_range = _range(result, default)
    if result.value is None:  # unreadable: abnormal only by the laboratory's flag
        lab = result.flag
        flag = lab.direction if lab is not None else None
        return Finding(electrolyte, measure, result, None, None, measure_range, flag, flag is not None and lab.critical)  # type: ignore[union-attr]
    flag, critical = judge(result.decision_value, measure_range)
    return Finding(electrolyte, measure, result, result.value, result.unit, measure_range, flag, critical)


def _day(result: LabResult) -> date:
    """The laboratory's calendar day of a dated result."""
    assert result.effective is not None
    return result.effective.date()


# On the newest day with a calcium result, which kind decides: ionized, then a corrected calcium the
# laboratory reported, then the measured total.
_CALCIUM_ORDER = {("calcium_ionized", "measured"): 0, ("calcium", "corrected"): 1, ("calcium", "total"): 2}


def _calcium(
    in_window: list[LabResult], seen: list[LabResult], ranges: dict[str, RangeSpec], payne: Payne
) -> Finding | LabResult | None:
    """The deciding calcium (rulebook, "Calcium"): the newest recent result of any kind, ionized
    first on the same day; a measured total corrected by Payne only with a same-day albumin below
    the reference, so only upwards, and never past a critical value it already shows. With albumin
    below the reliable limit a low measured total stays low, the correction shown as an estimate.
    A LabResult when the deciding result could not be interpreted; None when there is no recent
    calcium."""
    candidates = [r for r in in_window if (r.analyte, r.role) in _CALCIUM_ORDER]
    if not candidates:
        return None
    day = max(_day(r) for r in candidates)
    that_day = sorted(
        (r for r in candidates if _day(r) == day),
        key=lambda r: (_CALCIUM_ORDER[r.analyte, r.role], -r.effective.timestamp()),  # type: ignore[union-attr]
    )
    deciding = next((r for r in that_day if r.value is not None), None)
    if deciding is None:
        return that_day[0]
    if deciding.analyte == "calcium_ionized":
        return _finding("calcium", "calcium_ionized", deciding, ranges["calcium_ionized"])
    if deciding.role == "corrected":
        return _finding("calcium", "calcium_corrected", deciding, ranges["calcium"])
    measured = _finding("calcium", "calcium", deciding, ranges["calcium"])
    albumin = latest(r for r in seen if r.analyte == "albumin" and r.effective is not None and _day(r) == day)
    if (
        albumin is None
        or albumin.value is None
        or albumin.value >= payne.reference_albumin
        or deciding.comparator is not None
        or albumin.comparator is not None
    ):
        return measured
    assert measured.value is not None
    corrected = measured.value + payne.factor * (payne.reference_albumin - albumin.value)
    if measured.flag == "low" and albumin.value < payne.reliable_albumin:
        return replace(measured, albumin=albumin, estimate=corrected)
    if measured.critical:
        return measured
    flag, critical = judge(corrected, measured.range)
    return Finding(
        "calcium", "calcium_corrected", deciding, corrected, measured.unit, measured.range, flag, critical, albumin
    )


def concern(result: LabResult, ranges: dict[str, RangeSpec]) -> float:
    """How much a result would worry a clinician, to choose between two reports of one result that
    nothing else tells apart: unreadable over normal, abnormal over both, critical over abnormal,
    and the further outside the range the more."""
    measure_range = result_range(result, ranges)
    if measure_range is None:
        return 0.0
    if result.value is None:
        lab = result.flag
        return 1.0 if lab is None or lab.direction is None else 3.0 if lab.critical else 2.0
    value = result.decision_value
    flag, critical = judge(value, measure_range)
    low = measure_range.low if measure_range.low is not None else measure_range.critical_low
    high = measure_range.high if measure_range.high is not None else measure_range.critical_high
    distance = max(low - value, value - high, 0.0) / (high - low if high > low else 1.0)
    return (3.0 if critical else 2.0 if flag else 0.0) + distance / (distance + 1)


def _settled(result: LabResult, ranges: dict[str, RangeSpec]) -> LabResult:
    """Without a unit, read where every unit agrees; censored, read only where it is low (or high)
    whatever its true value (rulebook, "Values")."""
    if result.comparator is None and not result.candidates:
        return result
    measure_range = result_range(result, ranges)
    if measure_range is None:
        return result
    if result.candidates:
        result = settle_unitless(result, lambda value: judge(value, measure_range))
    return settle_censored(
        result,
        lambda value, comparator: judge(value, measure_range)[0] == ("low" if comparator in ("<", "<=") else "high"),
    )


def assess_electrolytes(
    results: Iterable[LabResult],
    *,
    as_of: datetime,
    ranges: dict[str, RangeSpec],
    windows: Windows,
    payne: Payne,
    future_allowance: timedelta,
) -> ElectrolyteAssessment:
    """Per electrolyte, the newest recent result decides; one that could not be interpreted is
    named as such (and is abnormal when the laboratory flagged it so), and no older result stands
    in for it."""
    seen = standing(
        (_settled(r, ranges) for r in visible(results, as_of, future_allowance)), lambda r: concern(r, ranges)
    )
    in_window = recent(seen, as_of, windows.electrolyte_recent_days)
    readable = [r for r in in_window if r.value is not None]
    findings: list[Finding] = []
    not_recent: list[str] = []
    unreadable: list[tuple[str, LabResult]] = []
    superseded: list[Finding] = []
    for electrolyte in ELECTROLYTES:
        decided = _decide(electrolyte, in_window, seen, ranges, payne)
        if decided is None:
            not_recent.append(electrolyte)
        elif isinstance(decided, Finding):
            findings.append(decided)
        else:
            unreadable.append((electrolyte, decided))
            flagged = _finding(electrolyte, _measure(decided), decided, ranges[_RANGE_OF[decided.analyte]])
            if flagged.flag is not None:
                findings.append(flagged)
            earlier = _decide(electrolyte, readable, seen, ranges, payne)
            if isinstance(earlier, Finding) and earlier.flag is not None:
                superseded.append(replace(earlier, superseded_by=decided))
    return ElectrolyteAssessment(tuple(findings), tuple(not_recent), tuple(unreadable), tuple(superseded))


def _measure(result: LabResult) -> str:
    if result.analyte == "calcium" and result.role == "corrected":
        return "calcium_corrected"
    return result.analyte


def _decide(
    electrolyte: str, in_window: list[LabResult], seen: list[LabResult], ranges: dict[str, RangeSpec], payne: Payne
) -> Finding | LabResult | None:
    """The finding of the electrolyte's deciding result; the result itself when it could not be
    read; None without a result in the window."""
    if electrolyte == "calcium":
        return _calcium(in_window, seen, ranges, payne)
    decided = newest(r for r in in_window if r.analyte == electrolyte)
    if decided is not None and decided.value is not None:
        return _finding(electrolyte, electrolyte, decided, ranges[electrolyte])
    return decided


def to_check(
    assessment: ElectrolyteAssessment, *, cramps: bool, deficient: bool, on_loop_or_thiazide: bool
) -> tuple[str, ...]:
    """The electrolytes without a recent interpretable result worth checking (rulebook, "Which
    electrolytes to check"): each of them with leg cramps documented; otherwise, with 25(OH)D
    deficient, calcium, and potassium and magnesium on a loop or thiazide diuretic; else none."""
    unreadable = {electrolyte for electrolyte, _ in assessment.unreadable}
    gaps = [e for e in ELECTROLYTES if e in assessment.not_recent or e in unreadable]
    if cramps:
        return tuple(gaps)
    if deficient:
        return tuple(e for e in gaps if e == "calcium" or on_loop_or_thiazide)
    return ()
