"""The judged analytes of the content (the electrolytes: potassium, magnesium and calcium by
default): are they recent, and are they within range?"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from ..content.schema import AnalyteTable, Payne, RangeSpec, Windows, corrected_measure
from .results import LabResult, latest, newest, recent, settle_censored, settle_unitless, standing, visible

Flag = Literal["low", "high", "abnormal"]


@dataclass(frozen=True)
class Range:
    low: float | None
    high: float | None
    critical_low: float | None  # None: no value is critical on that side
    critical_high: float | None
    from_laboratory: bool  # the Observation's own referenceRange, not the service's default


@dataclass(frozen=True)
class Finding:
    """The recent result that stands for one electrolyte, judged against its range; or, when its
    value could not be read, as the laboratory flagged it."""

    electrolyte: str  # the judged analyte it stands for: potassium, magnesium, calcium
    measure: str  # what cards name: the analyte measured (calcium_ionized), or calcium_corrected
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
    not_recent: tuple[str, ...]  # electrolytes with no result in the window, the table's order
    unreadable: tuple[tuple[str, LabResult], ...] = ()  # (electrolyte, its deciding result, not interpretable)
    # Abnormal recent results older than an unreadable one: shown as what they are, never as the
    # current state, so that an unreadable repeat never hides them.
    superseded: tuple[Finding, ...] = ()

    @property
    def abnormal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag is not None) + self.superseded

    # The analyte whose high value is a hypercalcaemia: the one Payne's formula corrects.
    calcium_analyte: str = "calcium"

    @property
    def calcium(self) -> Finding | None:
        return next((f for f in self.findings if f.electrolyte == self.calcium_analyte), None)

    @property
    def hypercalcaemia(self) -> Finding | None:
        """The deciding calcium when it is above its range (by value, or by the laboratory's flag
        when the value could not be read); or, when the newest could not be read, a recent high one
        before it (no vitamin D is invited past a high calcium)."""
        return next(
            (
                f
                for f in (*self.findings, *self.superseded)
                if f.electrolyte == self.calcium_analyte and f.flag == "high"
            ),
            None,
        )


def payne_corrected(calcium: float, albumin: float, payne: Payne) -> float:
    """A total calcium corrected for albumin by Payne's formula (rulebook, "Calcium")."""
    return calcium + payne.factor * (payne.reference_albumin - albumin)


def judge(value: float, measure_range: Range) -> tuple[Flag | None, bool]:
    """Flag low/high against the range and say whether a critical value is passed."""
    low = _below(value, measure_range.low)
    high = _above(value, measure_range.high)
    critical_low = _below(value, measure_range.critical_low)
    critical_high = _above(value, measure_range.critical_high)
    critical = critical_low or critical_high
    if low or critical_low:
        return "low", critical
    if high or critical_high:
        return "high", critical
    return None, critical


def _below(value: float, bound: float | None) -> bool:
    return bound is not None and value < bound


def _above(value: float, bound: float | None) -> bool:
    return bound is not None and value > bound


def _range(result: LabResult, default: RangeSpec) -> Range:
    if result.range_low is not None or result.range_high is not None:
        return Range(result.range_low, result.range_high, default.critical_low, default.critical_high, True)
    return Range(default.low, default.high, default.critical_low, default.critical_high, False)


def result_range(result: LabResult, ranges: Mapping[str, RangeSpec]) -> Range | None:
    """The range a result is judged by: its own referenceRange, else the content's default."""
    default = ranges.get(result.analyte)
    return _range(result, default) if default is not None else None


def _finding(electrolyte: str, measure: str, result: LabResult, default: RangeSpec) -> Finding:
    measure_range = _range(result, default)
    if result.value is None:  # unreadable: abnormal only by the laboratory's flag
        lab = result.flag
        flag = lab.direction if lab is not None else None
        return Finding(electrolyte, measure, result, None, None, measure_range, flag, flag is not None and lab.critical)  # type: ignore[union-attr]
    flag, critical = judge(result.decision_value, measure_range)
    return Finding(electrolyte, measure, result, result.value, result.unit, measure_range, flag, critical)


def _day(result: LabResult) -> date:
    """The UTC day of a dated result, as every window counts days: two results written in different
    time zones are placed by the instant they name, so that an older one can never pass for the
    newer (a total at 23:00-05:00 is newer than one at 01:00Z the next day)."""
    assert result.effective is not None
    return result.effective.astimezone(UTC).date()


def _day_order(electrolyte: str, analytes: AnalyteTable) -> dict[tuple[str, str], int]:
    """Which kind of result decides on a day when several are measured: an analyte deciding for the
    electrolyte (ionized calcium) first, then a value the laboratory corrected, then as measured."""
    order = {(other, "measured"): i for i, other in enumerate(analytes.deciding_for(electrolyte))}
    first = len(order)
    return order | {
        (electrolyte, "corrected"): first,
        (electrolyte, "total"): first + 1,
        (electrolyte, "measured"): first + 1,
    }


def _several_kinds(
    electrolyte: str,
    in_window: list[LabResult],
    seen: list[LabResult],
    analytes: AnalyteTable,
    payne: Payne,
) -> Finding | LabResult | None:
    """The deciding result of an electrolyte measured in several ways (rulebook, "Calcium"): the
    newest recent result of any kind, in the day's order of kinds; a measured total corrected by
    Payne only with a same-day albumin below the reference, so only upwards, and never past a
    critical value it already shows. With albumin below the reliable limit a low measured total
    stays low, the correction shown as an estimate. A LabResult when the deciding result could not
    be interpreted; None when there is no recent result."""
    order = _day_order(electrolyte, analytes)
    candidates = [r for r in in_window if (r.analyte, r.role) in order]
    if not candidates:
        return None
    day = max(_day(r) for r in candidates)
    that_day = sorted(
        (r for r in candidates if _day(r) == day),
        key=lambda r: (order[r.analyte, r.role], -r.effective.timestamp()),  # type: ignore[union-attr]
    )
    deciding = next((r for r in that_day if r.value is not None), None)
    if deciding is None:
        return that_day[0]
    ranges = analytes.ranges
    if deciding.analyte != electrolyte:
        return _finding(electrolyte, deciding.analyte, deciding, ranges[deciding.analyte])
    if deciding.role == "corrected":
        return _finding(electrolyte, corrected_measure(electrolyte), deciding, ranges[electrolyte])
    measured = _finding(electrolyte, electrolyte, deciding, ranges[electrolyte])
    if electrolyte != payne.corrects:
        return measured
    albumin = latest(r for r in seen if r.analyte == payne.albumin and r.effective is not None and _day(r) == day)
    if (
        albumin is None
        or albumin.value is None
        or albumin.value >= payne.reference_albumin
        or deciding.comparator is not None
        or albumin.comparator is not None
    ):
        return measured
    assert measured.value is not None
    corrected = payne_corrected(measured.value, albumin.value, payne)
    if measured.flag == "low" and albumin.value < payne.reliable_albumin:
        return replace(measured, albumin=albumin, estimate=corrected)
    if measured.critical:
        return measured
    flag, critical = judge(corrected, measured.range)
    return Finding(
        electrolyte,
        corrected_measure(electrolyte),
        deciding,
        corrected,
        measured.unit,
        measured.range,
        flag,
        critical,
        albumin,
    )


def concern(result: LabResult, ranges: Mapping[str, RangeSpec]) -> float:
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
    below = low - value if low is not None else 0.0
    above = value - high if high is not None else 0.0
    width = high - low if low is not None and high is not None and high > low else 1.0
    distance = max(below, above, 0.0) / width
    return (3.0 if critical else 2.0 if flag else 0.0) + distance / (distance + 1)


def settled(result: LabResult, ranges: Mapping[str, RangeSpec]) -> LabResult:
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
    analytes: AnalyteTable,
    windows: Windows,
    payne: Payne,
    future_allowance: timedelta,
) -> ElectrolyteAssessment:
    """Per judged analyte, the newest recent result decides; one that could not be interpreted is
    named as such (and is abnormal when the laboratory flagged it so), and no older result stands
    in for it."""
    ranges = analytes.ranges
    seen = standing(
        (settled(r, ranges) for r in visible(results, as_of, future_allowance)), lambda r: concern(r, ranges)
    )
    in_window = recent(seen, as_of, windows.electrolyte_recent_days)
    readable = [r for r in in_window if r.value is not None]
    findings: list[Finding] = []
    not_recent: list[str] = []
    unreadable: list[tuple[str, LabResult]] = []
    superseded: list[Finding] = []
    for electrolyte in analytes.judged:
        decided = _decide(electrolyte, in_window, seen, analytes, payne)
        if decided is None:
            not_recent.append(electrolyte)
        elif isinstance(decided, Finding):
            findings.append(decided)
        else:
            unreadable.append((electrolyte, decided))
            flagged = _finding(electrolyte, _measure(decided), decided, ranges[decided.analyte])
            if flagged.flag is not None:
                findings.append(flagged)
            earlier = _decide(electrolyte, readable, seen, analytes, payne)
            if isinstance(earlier, Finding) and earlier.flag is not None:
                superseded.append(replace(earlier, superseded_by=decided))
    return ElectrolyteAssessment(
        tuple(findings), tuple(not_recent), tuple(unreadable), tuple(superseded), calcium_analyte=payne.corrects
    )


def _measure(result: LabResult) -> str:
    return corrected_measure(result.analyte) if result.role == "corrected" else result.analyte


def _decide(
    electrolyte: str, in_window: list[LabResult], seen: list[LabResult], analytes: AnalyteTable, payne: Payne
) -> Finding | LabResult | None:
    """The finding of the electrolyte's deciding result; the result itself when it could not be
    read; None without a result in the window. Measured one way, the newest result decides."""
    if analytes.deciding_for(electrolyte) or "corrected" in analytes.analytes[electrolyte].codes:
        return _several_kinds(electrolyte, in_window, seen, analytes, payne)
    decided = newest(r for r in in_window if r.analyte == electrolyte)
    if decided is not None and decided.value is not None:
        return _finding(electrolyte, electrolyte, decided, analytes.ranges[electrolyte])
    return decided


def to_check(
    assessment: ElectrolyteAssessment,
    analytes: AnalyteTable,
    *,
    cramps: bool,
    deficient: bool,
    on_loop_or_thiazide: bool,
) -> tuple[str, ...]:
    """The electrolytes without a recent interpretable result worth checking (rulebook, "Which
    electrolytes to check"), each for a reason the table gives it: leg cramps documented; 25(OH)D
    deficient (calcium by default); a loop or thiazide diuretic taken with 25(OH)D deficient
    (potassium and magnesium by default); else none."""
    unreadable = {electrolyte for electrolyte, _ in assessment.unreadable}
    gaps = [e for e in analytes.judged if e in assessment.not_recent or e in unreadable]
    if cramps:
        return tuple(e for e in gaps if "cramps" in analytes.analytes[e].check)
    if deficient:
        reasons = {"deficient", "diuretic"} if on_loop_or_thiazide else {"deficient"}
        return tuple(e for e in gaps if reasons & set(analytes.analytes[e].check))
    return ()
