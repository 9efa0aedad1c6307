"""The lab result the clinical core reasons about, already read and converted from FHIR, and the
rules that choose among results of one analyte (docs/clinical-rules.md, "Reading results")."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

Comparator = Literal["<", "<=", ">", ">="]
# How far a censored value ("<5") is moved past its bound so that it falls on the right side of a
# cut-point equal to the bound; far below any precision a laboratory reports.
_CENSOR_NUDGE = 1e-9
# Which of two reports of one result stands: a correction over the original (rulebook, "Corrections
# and ties").
_STATUS_RANK = {"corrected": 2, "amended": 2, "final": 1}


class LabFlag(msgspec.Struct, frozen=True):
    """The laboratory's own flag (Observation.interpretation), as the content names it."""

    code: str  # HH, L, A, ...
    display: str  # "critically high"
    direction: Literal["low", "high", "abnormal"] | None  # None: normal, or no direction to act on
    critical: bool = False


class LabResult(msgspec.Struct, frozen=True):
    """One Observation, reduced to what the rules need. A msgspec struct, not a dataclass: a
    record brings dozens, and a frozen dataclass takes ten times as long to build.

    `value` is in the analyte's canonical unit, or None when the result cannot be classified
    (`problem` then says why, for the card's data section).
    """

    analyte: str  # its analytes.yaml entry: vitamin_d, potassium, calcium, calcium_ionized, albumin, ...
    role: str  # its code's role in analytes.yaml: total, proxy, opt_in, wrong_test, corrected, measured
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
    reported_text: str | None = None  # the number as the laboratory wrote it ("3.0"), for display
    unit_unreported: bool = False  # read without a unit (every accepted unit gives the same reading)
    # A number sent without a unit: the canonical values it stands for in each accepted unit. The
    # clinical core reads it when every one of them gives the same judgement (a censored "<4").
    candidates: tuple[float, ...] = ()
    problem: str | None = None
    range_low: float | None = None  # the Observation's own referenceRange, canonical units
    range_high: float | None = None
    flag: LabFlag | None = None
    issued: datetime | None = None
    updated: datetime | None = None  # meta.lastUpdated

    @property
    def usable(self) -> bool:
        return self.value is not None and self.effective is not None

    @property
    def decision_value(self) -> float:
        """The value that decides a band: a censored value sits just past its bound."""
        assert self.value is not None
        return censored(self.value, self.comparator)


def censored(value: float, comparator: Comparator | None) -> float:
    """A bound moved just past itself, the side its comparator says ("<20" is below 20)."""
    if comparator == "<":
        return value - _CENSOR_NUDGE
    if comparator == ">":
        return value + _CENSOR_NUDGE
    return value


def settle_unitless(result: LabResult, judgement: Callable[[float], Hashable]) -> LabResult:
    """A number sent without a unit, read when `judgement` of every value it may stand for agrees
    (a 25(OH)D "<4" is deficient in ng/mL, nmol/L and ug/L alike); otherwise left unreadable."""
    if not result.candidates:
        return result
    verdicts = {judgement(censored(c, result.comparator)) for c in result.candidates}
    if len(verdicts) != 1:
        return result
    # The bound that claims least: below the highest, above the lowest.
    bound = min(result.candidates) if result.comparator in (">", ">=") else max(result.candidates)
    return msgspec.structs.replace(
        result, value=bound, unit_unreported=True, problem=None, candidates=(), reported_value=None
    )


def settle_censored(result: LabResult, away_from_normal: Callable[[float, Comparator], bool]) -> LabResult:
    """A censored value is read only when every value it allows lies on one side of normal, the
    side its comparator points to: "<5" and "<30" ng/mL are low whatever the true value, ">150" is
    very high, but ">5" or "<150" could be anything. Otherwise it is kept as a result that could
    not be interpreted (rulebook, "Values")."""
    if result.value is None or result.comparator is None:
        return result
    if away_from_normal(result.decision_value, result.comparator):
        return result
    bound = f"{result.comparator}{result.reported_text or ''}"
    return msgspec.structs.replace(
        result, value=None, problem=f"censored value {bound} allows a normal result", candidates=()
    )


def standing(results: Iterable[LabResult], concern: Callable[[LabResult], float]) -> list[LabResult]:
    """One result per analyte, role and effective time: results sharing them are one result reported
    twice, and the one that stands is a correction over the original, then the later `issued`,
    then the later `meta.lastUpdated`. Bundle order never decides: when nothing else tells them
    apart, the one of greater `concern` stands, so that a repeat never hides an abnormal value."""
    best: dict[tuple[str, str, datetime | None], LabResult] = {}
    undated: list[LabResult] = []
    for result in results:
        if result.effective is None:
            undated.append(result)
            continue
        key = (result.analyte, result.role, result.effective)
        held = best.get(key)
        if held is None or _precedence(result, concern) > _precedence(held, concern):
            best[key] = result
    return [*best.values(), *undated]


def precedence(result: LabResult) -> tuple[int, float, float]:
    """Which of two reports of one result stands: the greater (a correction, then the later
    `issued`, then the later `meta.lastUpdated`)."""
    never = float("-inf")
    return (
        _STATUS_RANK.get(result.status, 0),
        result.issued.timestamp() if result.issued else never,
        result.updated.timestamp() if result.updated else never,
    )


def _precedence(result: LabResult, concern: Callable[[LabResult], float]) -> tuple[int, float, float, float]:
    return (*precedence(result), concern(result))


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
