"""25(OH)D status at every boundary of both profiles, and which result decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_service.clinical.results import LabResult
from cds_service.clinical.vitamin_d import Status, assess_vitamin_d, classify, treatment_begun
from cds_service.content.loader import Content

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
D, IN, S, H, VH = Status.DEFICIENT, Status.INSUFFICIENT, Status.SUFFICIENT, Status.HIGH, Status.VERY_HIGH


def vitd(
    value: float | None,
    days_ago: float = 10,
    *,
    comparator: str | None = None,
    role: str = "total",
    code: str = "62292-8",
) -> LabResult:
    return LabResult(
        analyte="vitamin_d",
        role=role,
        code=code,
        name="25(OH)D",
        resource_id=None,
        status="final",
        effective=AS_OF - timedelta(days=days_ago),
        value=value,
        comparator=comparator,  # type: ignore[arg-type]
        unit="ng/mL" if value is not None else None,
    )


@pytest.mark.parametrize(
    ("value", "comparator", "endocrine", "iom"),
    [
        (0, None, D, D),
        (11.9, None, D, D),
        (12, None, D, IN),
        (19.9, None, D, IN),
        (20, None, IN, S),
        (29.9, None, IN, S),
        (30, None, S, S),
        (100, None, S, S),
        (100.1, None, H, H),
        (150, None, H, H),
        (150.1, None, VH, VH),
        # censored results sit just past their bound
        (5, "<", D, D),
        (20, "<", D, IN),
        (20, "<=", IN, S),
        (30, "<", IN, S),
        (150, ">", VH, VH),
        (150, ">=", H, H),
        (100, ">", H, H),
    ],
)
def test_classify_boundaries(
    content: Content, value: float, comparator: str | None, endocrine: Status, iom: Status
) -> None:
    result = vitd(value, comparator=comparator)
    assert classify(result, content.profile("endocrine-2011")) is endocrine
    assert classify(result, content.profile("iom-2011")) is iom


def assess(content: Content, results: list[LabResult], profile: str = "endocrine-2011", opt_in: bool = False):
    return assess_vitamin_d(
        results,
        as_of=AS_OF,
        profile=content.profile(profile),
        window_days=365,
        future_allowance=timedelta(hours=24),
        accept_opt_in=opt_in,
    )


def test_latest_result_decides_and_earlier_ones_are_history(content: Content) -> None:
    old, mid, new = vitd(45, 300), vitd(25, 200), vitd(12, 20)
    a = assess(content, [mid, new, old])
    assert a.status is D and a.latest is new
    assert a.history == (mid, old)


@pytest.mark.parametrize(("days", "decides"), [(364, True), (365, True), (365.01, False), (366, False)])
def test_status_window_is_365_days(content: Content, days: float, decides: bool) -> None:
    a = assess(content, [vitd(12, days)])
    assert (a.status is D) is decides
    if not decides:
        assert a.latest is None and len(a.history) == 1  # shown as history only


def test_results_after_the_as_of_instant_are_not_seen(content: Content) -> None:
    future = vitd(50, -3)  # three days after as of
    a = assess(content, [vitd(12, 30), future])
    assert a.status is D
    assert future not in a.history


def test_undated_results_never_decide(content: Content) -> None:
    undated = LabResult("vitamin_d", "total", "62292-8", "x", None, "final", None, value=5.0, unit="ng/mL")
    a = assess(content, [vitd(40, 50), undated])
    assert a.status is S and a.unreadable == ()


@pytest.mark.parametrize(
    ("results", "status", "blocked"),
    [
        # a newer result that could not be read stops any status from older ones (was: deficient)
        ([vitd(None, 5), vitd(15, 200)], None, True),
        ([vitd(None, 5), vitd(15, 6)], None, True),
        ([vitd(15, 5), vitd(None, 6)], D, False),  # an older unreadable result changes nothing
        ([vitd(None, 364), vitd(15, 365)], None, True),
        ([vitd(None, 366), vitd(15, 30)], D, False),  # the unreadable one is older than the deciding one
        ([vitd(None, 366)], None, False),  # outside the window: nothing to block
        ([vitd(None, 366), vitd(15, 400)], None, False),
    ],
    ids=["200-days", "a-day-older", "older-unreadable", "window-edge", "old-unreadable", "alone-old", "both-old"],
)
def test_a_newer_unreadable_result_blocks_older_ones(
    content: Content, results: list[LabResult], status: Status | None, blocked: bool
) -> None:
    a = assess(content, results)
    assert a.status is status and a.blocked is blocked
    if blocked:
        assert a.latest is None and a.unreadable[0] is results[0] and not a.wrong_test_only


def test_proxy_code_classifies_and_opt_in_codes_only_when_enabled(content: Content) -> None:
    assert assess(content, [vitd(15, role="proxy", code="1989-3")]).status is D
    d2_only = vitd(15, role="opt_in", code="49054-0")
    assert assess(content, [d2_only]).status is None
    assert assess(content, [d2_only], opt_in=True).status is D


def test_wrong_test_only_when_no_usable_25ohd_in_window(content: Content) -> None:
    calcitriol = vitd(40, 10, role="wrong_test", code="1649-3")
    assert assess(content, [calcitriol]).wrong_test_only
    assert assess(content, [calcitriol, vitd(50, 400)]).wrong_test_only  # the 25(OH)D is too old
    assert not assess(content, [calcitriol, vitd(50, 100)]).wrong_test_only
    assert not assess(content, [vitd(40, 400, role="wrong_test", code="1649-3")]).wrong_test_only  # old
    # a 25(OH)D that could not be read is still a 25(OH)D: the wrong-test card would say there is none
    assert not assess(content, [calcitriol, vitd(None, 20)]).wrong_test_only


@pytest.mark.parametrize(
    ("started", "begun"),
    [
        (None, False),  # on vitamin D, start unknown: the card reviews dose and adherence
        (AS_OF - timedelta(days=11), False),  # before the result (10 days ago)
        (AS_OF - timedelta(days=10), False),  # at the same instant
        (AS_OF - timedelta(days=9), True),  # after it: treatment has begun
    ],
)
def test_treatment_begun_only_after_the_deciding_result(started: datetime | None, begun: bool) -> None:
    assert treatment_begun(started, vitd(15, 10)) is begun


@pytest.mark.parametrize(
    ("results", "shown"),
    [
        ([vitd(None, 5), vitd(180, 30)], VH),  # a very high level is not hidden by an unreadable repeat
        ([vitd(None, 5), vitd(120, 30)], H),
        ([vitd(None, 5), vitd(15, 30)], None),  # a low one is (rulebook, "Unreadable results": no deficiency card)
        ([vitd(None, 5), vitd(180, 400)], None),  # outside the window
        ([vitd(180, 5)], VH),  # deciding, not blocked
    ],
)
def test_a_high_level_before_an_unreadable_repeat_is_still_shown(
    content: Content, results: list[LabResult], shown: Status | None
) -> None:
    a = assess(content, results)
    assert (a.high[1] if a.high else None) is shown
    if a.blocked:
        assert a.status is None and a.latest is None  # still no current status
