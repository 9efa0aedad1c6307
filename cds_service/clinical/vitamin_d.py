"""Vitamin D status from serum 25-hydroxyvitamin D, by the chosen threshold profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..content.schema import Profile
from .results import LabResult, newest_first, recent, settle_censored, settle_unitless, standing, visible, within

STATUS_ROLES = frozenset({"total", "proxy"})


class Status(StrEnum):
    DEFICIENT = "deficient"
    INSUFFICIENT = "insufficient"
    SUFFICIENT = "sufficient"
    HIGH = "high"
    VERY_HIGH = "very high"


def classify(result: LabResult, profile: Profile) -> Status:
    """The band of a usable 25(OH)D result in ng/mL; `<20` is deficient, `>150` very high."""
    return band(result.decision_value, profile)


def band(value: float, profile: Profile) -> Status:
    """The band of a 25(OH)D value in ng/mL (rulebook, "Vitamin D status")."""
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
    status: Status | None  # None: no interpretable 25(OH)D decides within the status window
    latest: LabResult | None  # the result that decides the status
    history: tuple[LabResult, ...]  # the other interpretable 25(OH)D results, newest first
    unreadable: tuple[LabResult, ...]  # 25(OH)D results newer than any that decides, not interpretable
    wrong_tests: tuple[LabResult, ...]  # recent results of tests that never give a status
    # Blocked by an unreadable result: the latest readable one in the window, when it is high. It is
    # shown as what it is, never as the current status: an unreadable repeat hides no high level.
    high_before: LabResult | None = None
    high_before_status: Status | None = None

    @property
    def high(self) -> tuple[LabResult, Status] | None:
        """The high 25(OH)D a card must show: the deciding one, or the one before an unreadable repeat."""
        if self.latest is not None and self.status in (Status.HIGH, Status.VERY_HIGH):
            return self.latest, self.status
        if self.high_before is not None and self.high_before_status is not None:
            return self.high_before, self.high_before_status
        return None

    @property
    def blocked(self) -> bool:
        """The newest recent 25(OH)D could not be interpreted: no status is inferred past it."""
        return self.status is None and bool(self.unreadable)

    @property
    def wrong_test_only(self) -> bool:
        """Only tests that never give a status: no 25(OH)D at all in the window, read or not."""
        return self.status is None and not self.unreadable and bool(self.wrong_tests)


def assess_vitamin_d(
    results: Iterable[LabResult],
    *,
    as_of: datetime,
    profile: Profile,
    window_days: int,
    future_allowance: timedelta,
    accept_opt_in: bool = False,
) -> VitaminDAssessment:
    """The newest 25(OH)D in the window decides; when it could not be interpreted, nothing older
    does (rulebook, "Unreadable results")."""
    roles = STATUS_ROLES | {"opt_in"} if accept_opt_in else STATUS_ROLES
    seen = standing(
        (settled(r, profile) for r in visible(results, as_of, future_allowance)), lambda r: concern(r, profile)
    )
    dated = newest_first(r for r in seen if r.analyte == "vitamin_d" and r.role in roles)
    in_window = recent(dated, as_of, window_days)
    newest = in_window[0] if in_window else None
    deciding = newest if newest is not None and newest.value is not None else None
    status = classify(deciding, profile) if deciding is not None else None
    readable = [r for r in dated if r.value is not None]
    first_readable = readable[0] if readable else None
    earlier = next((r for r in in_window if r.value is not None), None) if deciding is None else None
    earlier_status = classify(earlier, profile) if earlier is not None else None
    high_before = earlier_status in (Status.HIGH, Status.VERY_HIGH)
    return VitaminDAssessment(
        status=status,
        latest=deciding,
        history=tuple(r for r in readable if r is not deciding),
        unreadable=tuple(
            r
            for r in in_window
            if r.value is None and (first_readable is None or r.effective > first_readable.effective)  # type: ignore[operator]
        ),
        wrong_tests=tuple(r for r in newest_first(seen) if r.role == "wrong_test" and within(r, as_of, window_days)),
        high_before=earlier if high_before else None,
        high_before_status=earlier_status if high_before else None,
    )


_LOW = (Status.DEFICIENT, Status.INSUFFICIENT)
_HIGH = (Status.HIGH, Status.VERY_HIGH)


def settled(result: LabResult, profile: Profile) -> LabResult:
    """A 25(OH)D without a unit read where every unit agrees, and a censored one only where it is
    low or high whatever its true value (rulebook, "Values")."""
    if result.analyte != "vitamin_d":
        return result
    if result.candidates:
        result = settle_unitless(result, lambda value: band(value, profile))
    return settle_censored(
        result, lambda value, comparator: band(value, profile) in (_LOW if comparator in ("<", "<=") else _HIGH)
    )


_TIER = {Status.SUFFICIENT: 0, Status.INSUFFICIENT: 2, Status.HIGH: 2, Status.DEFICIENT: 3, Status.VERY_HIGH: 3}


def concern(result: LabResult, profile: Profile) -> float:
    """How much a result would worry a clinician, to choose between two reports of one result that
    nothing else tells apart: an unreadable one over a normal one, an abnormal one over both, and
    the further outside the sufficient band the more."""
    if result.value is None:
        return 1.0
    status = classify(result, profile)
    distance = max(profile.insufficient_below - result.value, result.value - profile.high_above, 0.0)
    return _TIER[status] + distance / (distance + 1)


def treatment_begun(started: datetime | None, deciding: LabResult) -> bool:
    """A vitamin D product started after the deciding result (rulebook, "Treatment begun"):
    treatment has begun, and retesting is not useful sooner than three months after."""
    return started is not None and deciding.effective is not None and started > deciding.effective
