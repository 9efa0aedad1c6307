"""Which cards a chart gets, why, and where the evidence sentence and the cramp context go: the
plan (clinical/card_plan.py) table-tested on assessments, without FHIR or templates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cds_service.clinical.card_plan import low_remark, plan_chart
from cds_service.clinical.cramp_context import CrampContext
from cds_service.clinical.electrolytes import ElectrolyteAssessment, Finding, Range
from cds_service.clinical.results import LabResult
from cds_service.clinical.vitamin_d import Status, VitaminDAssessment
from cds_service.content.loader import Content

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)


def result(analyte: str, value: float, days_ago: int = 5) -> LabResult:
    return LabResult(
        analyte=analyte,
        role="total" if analyte == "vitamin_d" else "measured",
        code="x",
        name=analyte,
        resource_id=None,
        status="final",
        effective=AS_OF - timedelta(days=days_ago),
        value=value,
        unit="ng/mL",
    )


def vitamin_d(status: Status | None, value: float = 14) -> VitaminDAssessment:
    latest = result("vitamin_d", value) if status is not None else None
    return VitaminDAssessment(status, latest, (), (), ())


def finding(electrolyte: str, value: float, flag: str | None, *, critical: bool = False) -> Finding:
    return Finding(
        electrolyte,
        electrolyte,
        result(electrolyte, value),
        value,
        "u",
        Range(1, 2, 0.5, 3, False),
        flag,
        critical,  # type: ignore[arg-type]
    )


ALL_RECENT = ElectrolyteAssessment(
    (finding("potassium", 4.0, None), finding("magnesium", 2.0, None), finding("calcium", 9.5, None)), ()
)
NONE_RECENT = ElectrolyteAssessment((), ("potassium", "magnesium", "calcium"))
HIGH_CALCIUM = ElectrolyteAssessment(
    (finding("potassium", 4.0, None), finding("magnesium", 2.0, None), finding("calcium", 11.0, "high")), ()
)
LOW_POTASSIUM = ElectrolyteAssessment(
    (finding("potassium", 3.0, "low"), finding("magnesium", 2.0, None), finding("calcium", 9.5, None)), ()
)
CRITICAL_POTASSIUM = ElectrolyteAssessment(
    (finding("potassium", 2.0, "low", critical=True), finding("magnesium", 2.0, None), finding("calcium", 9.5, None)),
    (),
)
CRAMPS = CrampContext(cramps=True, cramp_codes=("R25.2",))
TREATED = CrampContext(
    vitamin_d_products=("cholecalciferol",),
    vitamin_d_supplements=("cholecalciferol",),
    vitamin_d_started=AS_OF - timedelta(days=2),  # after the result of 5 days ago
)

KMC = ("potassium", "magnesium", "calcium")
# (name, vitamin D, electrolytes, context, minor, pending, silent) -> [(kind, evidence, show_cramps, order_for)]
CASES = [
    ("deficient, nothing else", Status.DEFICIENT, ALL_RECENT, CrampContext(), False, (), (),
     [("vitd-deficient", True, True, ())]),
    ("deficient, no calcium recent: the check card, which the evidence does not join", Status.DEFICIENT, NONE_RECENT,
     CrampContext(), False, (), (),
     [("vitd-deficient", True, False, ()), ("electrolytes-check", False, False, ("calcium",))]),
    ("cramps and deficient: the evidence on the check card, whose reason is the cramps", Status.DEFICIENT, NONE_RECENT,
     CRAMPS, False, (), (),
     [("vitd-deficient", False, False, ()), ("electrolytes-check", True, False, KMC)]),
    ("cramps, sufficient: the check card carries evidence and the cramp context", Status.SUFFICIENT, NONE_RECENT,
     CRAMPS, False, (), (), [("electrolytes-check", True, True, ("potassium", "magnesium", "calcium"))]),
    ("cramps, sufficient, all pending: no card", Status.SUFFICIENT, NONE_RECENT, CRAMPS, False,
     ("potassium", "magnesium", "calcium"), (), []),
    ("cramps, sufficient, calcium pending", Status.SUFFICIENT, NONE_RECENT, CRAMPS, False, ("calcium",), (),
     [("electrolytes-check", True, True, ("potassium", "magnesium"))]),
    ("insufficient without cramps: no check", Status.INSUFFICIENT, NONE_RECENT, CrampContext(), False, (), (),
     [("vitd-insufficient", True, True, ())]),
    ("deficient, treatment begun after the result: no status card", Status.DEFICIENT, ALL_RECENT, TREATED, False,
     (), (), []),
    ("high", Status.HIGH, ALL_RECENT, CrampContext(), False, (), (), [("vitd-high", False, True, ())]),
    ("high with a high calcium: both cards, the cramp context on the status card", Status.HIGH, HIGH_CALCIUM,
     CRAMPS, False, (), (), [("vitd-high", False, True, ()), ("electrolytes-abnormal", False, False, ())]),
    ("low potassium with cramps and normal vitamin D: the abnormal card carries the cramp context",
     Status.SUFFICIENT, LOW_POTASSIUM, CRAMPS, False, (), (), [("electrolytes-abnormal", False, True, ())]),
    ("critical potassium with cramps: no cramp remark", Status.SUFFICIENT, CRITICAL_POTASSIUM, CRAMPS, False, (), (),
     [("electrolytes-abnormal", False, False, ())]),
    ("a minor: only a critical value", Status.DEFICIENT, CRITICAL_POTASSIUM, CRAMPS, True, (), (),
     [("electrolytes-abnormal", False, False, ())]),
    ("a minor, deficient, nothing critical: no card", Status.DEFICIENT, NONE_RECENT, CRAMPS, True, (), (), []),
    ("electrolytes unread: vitamin D cards only", Status.DEFICIENT, None, CRAMPS, False, (), (),
     [("vitd-deficient", True, True, ())]),
    ("the check card silent: the evidence and the cramp context stay on the status card", Status.DEFICIENT,
     NONE_RECENT, CRAMPS, False, (), ("electrolytes-check",),
     [("vitd-deficient", True, True, ()), ("electrolytes-check", False, False, ("potassium", "magnesium", "calcium"))]),
    ("the status card silent: the check card carries both", Status.DEFICIENT, NONE_RECENT, CRAMPS, False, (),
     ("vitd-deficient",),
     [("vitd-deficient", False, False, ()), ("electrolytes-check", True, True, ("potassium", "magnesium", "calcium"))]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "status", "electrolytes", "context", "minor", "pending", "silent", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_which_cards_a_chart_gets(
    content: Content,
    name: str,
    status: Status | None,
    electrolytes: ElectrolyteAssessment | None,
    context: CrampContext,
    minor: bool,
    pending: tuple[str, ...],
    silent: tuple[str, ...],
    expected: list[tuple[str, bool, bool, tuple[str, ...]]],
) -> None:
    vd = vitamin_d(status, {None: 0, Status.HIGH: 120}.get(status, 14))
    if status is Status.HIGH:
        vd = replace(vd, latest=result("vitamin_d", 120))
    plan = plan_chart(
        vd, electrolytes, context, content.analytes, minor=minor, pending=frozenset(pending), silent=frozenset(silent)
    )
    got = [(p.kind, p.evidence, p.show_cramps, p.order_for) for p in plan if p.kind != "electrolytes-abnormal"]
    got += [(p.kind, p.evidence, p.show_cramps, ()) for p in plan if p.kind == "electrolytes-abnormal"]
    assert got == expected, name


def test_the_evidence_sentence_and_cramp_context_are_said_at_most_once(content: Content) -> None:
    """Whatever the assessments and silent kinds, at most one shown card carries each."""
    kinds = ("vitd-deficient", "electrolytes-check", "electrolytes-abnormal")
    for _, status, electrolytes, context, minor, pending, _, _ in CASES:
        for silent in [(), *((k,) for k in kinds)]:
            plan = plan_chart(
                vitamin_d(status),
                electrolytes,
                context,
                content.analytes,
                minor=minor,
                pending=frozenset(pending),
                silent=frozenset(silent),
            )
            shown = [p for p in plan if p.kind not in silent]
            assert sum(p.evidence for p in shown) <= 1 and sum(p.show_cramps for p in shown) <= 1


@pytest.mark.parametrize(
    ("context", "hypercalcaemia", "remark"),
    [
        (CrampContext(ckd_advanced=True, pregnant=True), True, "hypercalcaemia"),
        (CrampContext(ckd_advanced=True, pregnant=True, vitamin_d_products=("x",)), False, "ckd"),
        (CrampContext(pregnant=True, vitamin_d_products=("x",)), False, "pregnancy"),
        (CrampContext(vitamin_d_products=("x",)), False, "on_treatment"),
        (CrampContext(), False, "review"),
    ],
)
def test_a_low_vitamin_d_card_makes_the_most_pressing_remark(
    context: CrampContext, hypercalcaemia: bool, remark: str
) -> None:
    calcium = finding("calcium", 11.0, "high") if hypercalcaemia else None
    assert low_remark(context, calcium) == remark


def test_the_plan_says_why(content: Content) -> None:
    plan = plan_chart(
        vitamin_d(Status.DEFICIENT),
        HIGH_CALCIUM,
        CRAMPS,
        content.analytes,
        minor=False,
        pending=frozenset(),
        silent=frozenset(),
    )
    by_kind = {p.kind: p for p in plan}
    assert by_kind["vitd-deficient"].reasons == ("deficient", "hypercalcaemia", "remark: hypercalcaemia")
    assert by_kind["vitd-deficient"].remark == "hypercalcaemia"
    assert by_kind["electrolytes-abnormal"].reasons == ("calcium high",)
    assert by_kind["electrolytes-abnormal"].cramp_remark
