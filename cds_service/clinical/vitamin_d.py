"""Vitamin D status from serum 25-hydroxyvitamin D, by the chosen threshold profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..content import Profile
from .results import LabResult, latest, visible, within

STATUS_ROLES = frozenset({"total", "proxy"})


class Status(StrEnum):
    DEFICIENT = "deficient"
    INSUFFICIENT = "insufficient"
    SUFFICIENT = "sufficient"
    HIGH = "high"
    VERY_HIGH = "very high"


def classify(result: LabResult, profile: Profile) -> Status:
    """The band of a usable 25(OH)D result in ng/mL; `<20` is deficient, `>150` very high."""
    value = result.decision_value
    if value < profile.deficient_below:
        return Status.DEFICIENT
    if value < profile.insufficient_below:
        return Status.INSUFFICIENT
    if value > profile.very_high_above:
        return Status.VERY_HIGH
    if value > profile.high_above:
        return Status.HIGH
    return Status.SUFFICIENT


@dataclass(frozen=True)
class VitaminDAssessment:
    status: Status | None  # None: no usable 25(OH)D within the status window
    latest: LabResult | None  # the result that decides the status
    history: tuple[LabResult, ...]  # earlier usable 25(OH)D results, newest first
    unreadable: tuple[LabResult, ...]  # 25(OH)D results that could not be classified, newest first
    wrong_tests: tuple[LabResult, ...]  # recent results of tests that never give a status

    @property
    def wrong_test_only(self) -> bool:
        return self.status is None and bool(self.wrong_tests)


def assess_vitamin_d(
    results: list[LabResult],
    *,
    as_of: datetime,
    profile: Profile,
    window_days: int,
    future_allowance: timedelta,
    accept_opt_in: bool = False,
) -> VitaminDAssessment:
    roles = STATUS_ROLES | {"opt_in"} if accept_opt_in else STATUS_ROLES
    seen = visible((r for r in results if r.analyte == "vitamin_d"), as_of, future_allowance)
    candidates = [r for r in seen if r.role in roles]
    newest = latest(candidates)
    status = None
    if newest is not None and within(newest, as_of, window_days):
        status = classify(newest, profile)
    history = sorted(
        (r for r in candidates if r.usable and r is not newest),
        key=lambda r: r.effective,  # type: ignore[arg-type, return-value]
        reverse=True,
    )
    unreadable = [r for r in candidates if r.value is None and r.effective is not None]
    unreadable.sort(key=lambda r: r.effective, reverse=True)  # type: ignore[arg-type, return-value]
    wrong = [r for r in seen if r.role == "wrong_test" and r.effective is not None and within(r, as_of, window_days)]
    wrong.sort(key=lambda r: r.effective, reverse=True)  # type: ignore[arg-type, return-value]
    return VitaminDAssessment(
        status=status,
        latest=newest if status is not None else None,
        history=tuple(history if status is not None else ([newest, *history] if newest else [])),
        unreadable=tuple(unreadable),
        wrong_tests=tuple(wrong),
    )
