"""Potassium, magnesium and calcium: are they recent, and are they within range?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..content import Payne, RangeSpec, Windows
from .results import LabResult, latest, visible, within

# The three electrolytes tied to cramps, in the order cards name them.
ELECTROLYTES = ("potassium", "magnesium", "calcium")
Flag = Literal["low", "high"]


@dataclass(frozen=True)
class Range:
    low: float | None
    high: float | None
    critical_low: float
    critical_high: float
    from_laboratory: bool  # the Observation's own referenceRange, not the service's default


@dataclass(frozen=True)
class Finding:
    """The recent value that stands for one electrolyte, judged against its range."""

    electrolyte: str  # potassium, magnesium, calcium
    measure: str  # potassium, magnesium, calcium, calcium_ionized, calcium_corrected
    result: LabResult
    value: float  # canonical unit; for calcium corrected by Payne, the corrected value
    unit: str
    range: Range
    flag: Flag | None
    critical: bool
    albumin: LabResult | None = None  # set when this value was corrected by Payne


@dataclass(frozen=True)
class ElectrolyteAssessment:
    findings: tuple[Finding, ...]  # one per electrolyte with a recent usable result
    not_recent: tuple[str, ...]  # electrolytes with no usable result in the window, card order

    @property
    def abnormal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag is not None)


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


def _finding(electrolyte: str, measure: str, result: LabResult, default: RangeSpec) -> Finding:
    assert result.value is not None and result.unit is not None
    measure_range = _range(result, default)
    flag, critical = judge(result.decision_value, measure_range)
    return Finding(electrolyte, measure, result, result.value, result.unit, measure_range, flag, critical)


def _calcium(
    results: list[LabResult],
    as_of: datetime,
    ranges: dict[str, RangeSpec],
    windows: Windows,
    payne: Payne,
) -> Finding | None:
    """Ionized if recent; else the latest total or reported corrected, corrected by Payne when
    a same-day albumin exists and no corrected value was reported that day."""
    ionized = latest(r for r in results if r.analyte == "calcium_ionized")
    if ionized is not None and within(ionized, as_of, windows.ionized_calcium_recent_days):
        return _finding("calcium", "calcium_ionized", ionized, ranges["calcium_ionized"])

    calcium = [r for r in results if r.analyte == "calcium" and r.usable]
    newest = latest(calcium)
    if newest is None or not within(newest, as_of, windows.electrolyte_recent_days):
        return None
    day = newest.effective.date()  # type: ignore[union-attr]
    if newest.role == "total":
        reported = latest(r for r in calcium if r.role == "corrected" and r.effective.date() == day)  # type: ignore[union-attr]
        if reported is not None:
            newest = reported
    if newest.role == "corrected":
        return _finding("calcium", "calcium_corrected", newest, ranges["calcium"])

    albumin = latest(r for r in results if r.analyte == "albumin" and r.usable and r.effective.date() == day)  # type: ignore[union-attr]
    if albumin is None or newest.comparator is not None or albumin.comparator is not None:
        return _finding("calcium", "calcium", newest, ranges["calcium"])
    assert newest.value is not None and albumin.value is not None and newest.unit is not None
    corrected = newest.value + payne.factor * (payne.reference_albumin - albumin.value)
    measure_range = _range(newest, ranges["calcium"])
    flag, critical = judge(corrected, measure_range)
    return Finding(
        "calcium", "calcium_corrected", newest, corrected, newest.unit, measure_range, flag, critical, albumin
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
    seen = visible(results, as_of, future_allowance)
    findings: list[Finding] = []
    not_recent: list[str] = []
    for electrolyte in ELECTROLYTES:
        if electrolyte == "calcium":
            finding = _calcium(seen, as_of, ranges, windows, payne)
        else:
            newest = latest(r for r in seen if r.analyte == electrolyte)
            finding = None
            if newest is not None and within(newest, as_of, windows.electrolyte_recent_days):
                finding = _finding(electrolyte, electrolyte, newest, ranges[electrolyte])
        if finding is None:
            not_recent.append(electrolyte)
        else:
            findings.append(finding)
    return ElectrolyteAssessment(tuple(findings), tuple(not_recent))
