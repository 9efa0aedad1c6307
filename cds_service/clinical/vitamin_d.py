"""Vitamin D status from serum 25-hydroxyvitamin D, by the chosen threshold profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..content import Profile
from .results import LabResult, newest_first, visible, within

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
    history: tuple[LabResult, ...]  # the other usable 25(OH)D results, newest first
    unreadable: tuple[LabResult, ...]  # newer 25(OH)D results that could not be classified
    wrong_tests: tuple[LabResult, ...]  # recent results of tests that never give a status

    @property
    def wrong_test_only(self) -> bool:
        return self.status is None and bool(self.wrong_tests)


def assess_vitamin_d(
    results: Iterable[LabResult],
    *,
    as_of: datetime,
    profile: Profile,
    window_days: int,
    future_allowance: timedelta,
    accept_opt_in: bool = False,
) -> VitaminDAssessment:
    roles = STATUS_ROLES | {"opt_in"} if accept_opt_in else STATUS_ROLES
    seen = visible((r for r in results if r.analyte == "vitamin_d"), as_of, future_allowance)
    dated = newest_first(r for r in seen if r.role in roles)
    usable = [r for r in dated if r.value is not None]
    newest = usable[0] if usable else None
    status = classify(newest, profile) if newest is not None and within(newest, as_of, window_days) else None
    deciding = newest if status is not None else None
    return VitaminDAssessment(
        status=status,
        latest=deciding,
        history=tuple(r for r in usable if r is not deciding),
        unreadable=tuple(r for r in dated if r.value is None and (newest is None or r.effective > newest.effective)),  # type: ignore[operator]
        wrong_tests=tuple(r for r in newest_first(seen) if r.role == "wrong_test" and within(r, as_of, window_days)),
    )
