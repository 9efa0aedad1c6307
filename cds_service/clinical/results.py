"""The lab result the clinical core reasons about, already read and converted from FHIR."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

Comparator = Literal["<", "<=", ">", ">="]
# How far a censored value ("<5") is moved past its bound so that it falls on the right side of a
# cut-point equal to the bound; far below any precision a laboratory reports.
_CENSOR_NUDGE = 1e-9


class LabResult(msgspec.Struct, frozen=True):
    """One Observation, reduced to what the rules need. A msgspec struct, not a dataclass: a
    record brings dozens, and a frozen dataclass takes ten times as long to build.

    `value` is in the analyte's canonical unit, or None when the result cannot be classified
    (`problem` then says why, for the card's data section).
    """

    analyte: str  # units.yaml entry: vitamin_d, potassium, magnesium, calcium, calcium_ionized, albumin
    role: str  # codes.yaml role: total, proxy, opt_in, wrong_test, corrected, measured
    code: str  # LOINC code
    name: str  # short name for cards
    resource_id: str | None
    status: str
    effective: datetime | None  # timezone-aware
    value: float | None = None
    comparator: Comparator | None = None
    unit: str | None = None  # canonical unit
    reported_value: float | None = None  # as reported, when the unit was converted
    reported_unit: str | None = None
    problem: str | None = None
    range_low: float | None = None  # the Observation's own referenceRange, canonical units
    range_high: float | None = None

    @property
    def usable(self) -> bool:
        return self.value is not None and self.effective is not None

    @property
    def decision_value(self) -> float:
        """The value that decides a band: a censored value sits just past its bound."""
        assert self.value is not None
        if self.comparator == "<":
            return self.value - _CENSOR_NUDGE
        if self.comparator == ">":
            return self.value + _CENSOR_NUDGE
        return self.value


def visible(results: Iterable[LabResult], as_of: datetime, allowance: timedelta) -> list[LabResult]:
    """Drop results dated after the evaluation instant: as of then, they did not exist yet."""
    limit = as_of + allowance
    return [r for r in results if r.effective is None or r.effective <= limit]


def newest_first(results: Iterable[LabResult]) -> list[LabResult]:
    """Dated results, newest first; an undated result has no place in a trend."""
    dated = [r for r in results if r.effective is not None]
    return sorted(dated, key=lambda r: r.effective, reverse=True)  # type: ignore[arg-type, return-value]


def newest(results: Iterable[LabResult]) -> LabResult | None:
    """The most recent dated result, whether or not its value could be interpreted: a newer result
    that could not be read stops any judgement from older ones."""
    dated = [r for r in results if r.effective is not None]
    return max(dated, key=lambda r: r.effective) if dated else None  # type: ignore[arg-type, return-value]


def latest(results: Iterable[LabResult]) -> LabResult | None:
    """The most recent usable result; an undated result never counts as the latest."""
    dated = [r for r in results if r.usable]
    return max(dated, key=lambda r: r.effective) if dated else None  # type: ignore[arg-type, return-value]


def age_in_days(result: LabResult, as_of: datetime) -> int:
    """Calendar days (UTC) from the result to the evaluation: a result dated 2026-08-27 is 90 days
    old all through 2026-11-25, whatever the time of day."""
    assert result.effective is not None
    return (as_of.astimezone(UTC).date() - result.effective.astimezone(UTC).date()).days


def within(result: LabResult, as_of: datetime, days: int) -> bool:
    return age_in_days(result, as_of) <= days


def recent(results: Iterable[LabResult], as_of: datetime, days: int) -> list[LabResult]:
    """The dated results at most `days` old (as `within` counts them), the first day found once."""
    first_day = as_of.astimezone(UTC).date() - timedelta(days=days)
    return [r for r in results if r.effective is not None and r.effective.astimezone(UTC).date() >= first_day]
