"""Which cards a chart (patient-view) gets, why, and where what is said once goes: one pure
function of the assessments (rulebook, "Which cards a chart gets"), so that the placement of the
evidence sentence and the cramp context is decided, and tested, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..content.schema import AnalyteTable
from .cramp_context import CrampContext
from .electrolytes import ElectrolyteAssessment, Finding, to_check
from .vitamin_d import Status, VitaminDAssessment, treatment_begun

Remark = Literal["hypercalcaemia", "ckd", "pregnancy", "on_treatment", "review"]


@dataclass(frozen=True)
class Planned:
    """A card to render: its kind, the reasons it fires, and what it carries."""

    kind: str
    reasons: tuple[str, ...]
    critical: bool = False
    evidence: bool = False  # the evidence sentence (said once per response)
    show_cramps: bool = False  # the cramp context (said once per response)
    remark: Remark | None = None  # the one remark of a low vitamin D card
    cramp_remark: bool = False  # the abnormal card says such values can cause cramps
    order_for: tuple[str, ...] = ()  # the analytes whose tests the check card suggests
    pending: tuple[str, ...] = ()  # those the check card would suggest, already ordered
    abnormal: tuple[Finding, ...] = ()  # the values the abnormal card shows


def low_remark(context: CrampContext, hypercalcaemia: Finding | None) -> Remark:
    """The one remark a low vitamin D card makes, most pressing first (catalogue.yaml)."""
    if hypercalcaemia is not None:
        return "hypercalcaemia"
    if context.ckd_advanced:
        return "ckd"
    if context.pregnant:
        return "pregnancy"
    return "on_treatment" if context.vitamin_d_products else "review"


def plan_chart(
    vitamin_d: VitaminDAssessment,
    electrolytes: ElectrolyteAssessment | None,
    context: CrampContext,
    analytes: AnalyteTable,
    *,
    minor: bool,
    pending: frozenset[str],
    silent: frozenset[str],
) -> list[Planned]:
    """The cards of a chart, in the order decided (the service sorts them by severity).

    `electrolytes` is None when the electrolyte results could not be read: then no electrolyte
    card. Under the adult age only the wrong-test card and critical electrolyte values. `silent`
    kinds are planned (they are recorded) but carry nothing said once, which must reach a card shown.
    """
    hypercalcaemia = electrolytes.hypercalcaemia if electrolytes is not None else None
    reasons = _check_reasons(vitamin_d, context)
    wanted = () if electrolytes is None or minor else to_check(electrolytes, analytes, **reasons)
    to_order = tuple(a for a in wanted if a not in pending)
    latest, status = vitamin_d.latest, vitamin_d.status
    treated = latest is not None and treatment_begun(context.vitamin_d_started, latest)
    low_kind = "vitd-deficient" if status is Status.DEFICIENT else "vitd-insufficient"
    low = latest is not None and status in (Status.DEFICIENT, Status.INSUFFICIENT)
    high = vitamin_d.high

    def shown(kind: str) -> bool:
        return kind not in silent

    check = bool(to_order) and shown("electrolytes-check")
    low_shown = low and not treated and shown(low_kind)
    status_shown = low_shown or (high is not None and shown("vitd-high"))
    evidence_on_check = check and (context.cramps or not low_shown)
    calcium_critical = hypercalcaemia is not None and hypercalcaemia.critical
    hyper_reason = ("hypercalcaemia",) if hypercalcaemia is not None else ()

    cards: list[Planned] = []
    if low and not treated:
        remark = low_remark(context, hypercalcaemia)
        cards.append(
            Planned(
                low_kind,
                (str(status), *hyper_reason, f"remark: {remark}"),
                critical=calcium_critical,
                evidence=low_shown and not evidence_on_check,
                show_cramps=not check,
                remark=remark,
            )
        )
    elif not low and high is not None:
        very_high = high[1] is Status.VERY_HIGH
        # Vitamin D taken while calcium is above range: a toxicity to stop now (rulebook, "vitd-high").
        toxic = hypercalcaemia is not None and bool(context.vitamin_d_supplements)
        cards.append(
            Planned(
                "vitd-high",
                (str(high[1]), *hyper_reason, *(("vitamin D taken",) if toxic else ())),
                critical=very_high or calcium_critical or toxic,
                show_cramps=not check,
            )
        )
    elif not low and vitamin_d.wrong_test_only:
        cards.append(Planned("vitd-wrong-test", ("no 25(OH)D, only tests that do not measure status",)))
    if minor:  # the wrong-test card, which holds no adult cut-point, and critical values at any age
        cards = [c for c in cards if c.kind == "vitd-wrong-test"]
        if electrolytes is not None and (critical := tuple(f for f in electrolytes.abnormal if f.critical)):
            cards.append(_abnormal(critical, context, analytes, show_cramps=False))
        return cards
    if electrolytes is None:
        return cards
    if to_order:
        why = tuple(reason for reason, present in reasons.items() if present)
        cards.append(
            Planned(
                "electrolytes-check",
                (*why, *(f"check {a}" for a in to_order)),
                evidence=evidence_on_check,
                show_cramps=not status_shown,
                order_for=to_order,
                pending=tuple(a for a in wanted if a in pending),
            )
        )
    if electrolytes.abnormal:
        cards.append(_abnormal(electrolytes.abnormal, context, analytes, show_cramps=not status_shown))
    return cards


def _check_reasons(vitamin_d: VitaminDAssessment, context: CrampContext) -> dict[str, bool]:
    return {
        "cramps": context.cramps,
        "deficient": vitamin_d.status is Status.DEFICIENT,
        "on_loop_or_thiazide": bool(context.electrolyte_drugs),
    }


def _abnormal(
    abnormal: tuple[Finding, ...], context: CrampContext, analytes: AnalyteTable, *, show_cramps: bool
) -> Planned:
    """Values outside their range. The cramp remark only with cramps documented, beside a value
    of an analyte whose disorders cause cramps, and no critical value (rulebook, "electrolytes-abnormal")."""
    critical = any(f.critical for f in abnormal)
    cramp_analytes = analytes.checked("cramps")
    cramp_remark = context.cramps and not critical and any(f.electrolyte in cramp_analytes for f in abnormal)
    return Planned(
        "electrolytes-abnormal",
        tuple(f"{f.electrolyte} {f.flag}{' (critical)' if f.critical else ''}" for f in abnormal),
        critical=critical,
        show_cramps=show_cramps and cramp_remark,
        cramp_remark=cramp_remark,
        order_for=tuple(dict.fromkeys(f.electrolyte for f in abnormal if f.ionized_advised)),
        abnormal=abnormal,
    )
