"""What each card kind's templates are given: one frozen dataclass per kind, checked against the
kind's summary and detail when the content loads, so that a template naming a value the service
does not give (or a value renamed in Python) stops the start, never a chart later."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

import jinja2
from jinja2 import meta, nodes

from ..clinical.cramp_context import CrampContext
from ..content.schema import CARD_KINDS
from .views import FindingView, ResultView

# What every template may name besides its kind's inputs: set by the renderer for every card.
TEMPLATE_GLOBALS = frozenset({"profile", "checked"})


@dataclass(frozen=True, kw_only=True)
class CardInput:
    """What every card is given."""

    critical: bool = False  # a critical value or a toxicity: the kind's critical indicator
    context: CrampContext = field(default_factory=CrampContext)
    unavailable: list[str] = field(default_factory=list)  # the data that could not be read
    age_unknown: bool = False


@dataclass(frozen=True, kw_only=True)
class LowVitaminD(CardInput):
    """vitd-deficient and vitd-insufficient."""

    latest: ResultView
    status_label: str
    remark: str  # hypercalcaemia, ckd, pregnancy, on_treatment or review (catalogue.yaml)
    history: list[ResultView]
    unreadable: list[ResultView]
    calcium: FindingView | None  # a calcium above range
    rows: list[ResultView]
    evidence: bool
    show_cramps: bool


@dataclass(frozen=True, kw_only=True)
class HighVitaminD(CardInput):
    latest: ResultView
    very_high: bool
    superseded_by: ResultView | None  # a newer 25(OH)D that could not be read
    history: list[ResultView]
    unreadable: list[ResultView]
    calcium: FindingView | None
    rows: list[ResultView]
    show_cramps: bool


@dataclass(frozen=True, kw_only=True)
class WrongTest(CardInput):
    latest: ResultView
    wrong_tests: list[ResultView]
    history: list[ResultView]


@dataclass(frozen=True, kw_only=True)
class ElectrolytesCheck(CardInput):
    checking: list[str]  # the names of what the card suggests checking
    missing: list[str]  # of those, with no recent result
    unreadable: list[ResultView]  # of those, the recent results that could not be read
    unreadable_names: list[str]
    pending: list[str]  # already ordered
    vitamin_d_status: str
    vitamin_d: ResultView | None
    vitamin_d_unreadable: list[ResultView]
    diuretics: tuple[str, ...]
    window_days: int
    recent: list[ResultView]
    evidence: bool


@dataclass(frozen=True, kw_only=True)
class ElectrolytesAbnormal(CardInput):
    abnormal: list[FindingView]
    cramp_remark: bool  # cramps documented beside a value that can cause them, none critical
    show_cramps: bool
    rows: list[ResultView]
    vitamin_d_unreadable: list[ResultView]


@dataclass(frozen=True, kw_only=True)
class DuplicateOrder(CardInput):
    latest: ResultView
    days_ago: int
    window_days: int
    history: list[ResultView]


@dataclass(frozen=True, kw_only=True)
class DihydroxyOrder(CardInput):
    recent: ResultView | None
    drafted: bool
    pending: bool
    conditions_unknown: bool
    calcium_unknown: bool


@dataclass(frozen=True, kw_only=True)
class SupplementCaution(CardInput):
    medication: str
    vitamin_d: ResultView | None
    vitamin_d_status: str | None
    calcium: FindingView | None
    rows: list[ResultView]


@dataclass(frozen=True, kw_only=True)
class CalciumCaution(CardInput):
    medication: str
    calcium: FindingView
    rows: list[ResultView]


@dataclass(frozen=True, kw_only=True)
class DuplicateTherapy(CardInput):
    medication: str
    active: list[str]


# The inputs of each card kind the code decides (content/schema.py, CARD_KINDS).
KIND_INPUTS: Mapping[str, type[CardInput]] = {
    "vitd-deficient": LowVitaminD,
    "vitd-insufficient": LowVitaminD,
    "vitd-high": HighVitaminD,
    "vitd-wrong-test": WrongTest,
    "electrolytes-check": ElectrolytesCheck,
    "electrolytes-abnormal": ElectrolytesAbnormal,
    "vitd-duplicate-order": DuplicateOrder,
    "vitd-order-1-25": DihydroxyOrder,
    "vitd-supplement-caution": SupplementCaution,
    "calcium-supplement-caution": CalciumCaution,
    "vitd-duplicate-therapy": DuplicateTherapy,
}


if set(KIND_INPUTS) != set(CARD_KINDS):  # pragma: no cover - a kind added to one list and not the other
    raise ImportError(f"KIND_INPUTS and CARD_KINDS differ: {sorted(set(KIND_INPUTS) ^ set(CARD_KINDS))}")


_NAMES: dict[type[CardInput], tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in KIND_INPUTS.values()
}


def values(inputs: CardInput) -> dict[str, object]:
    """The inputs as a template's variables (shallow: views stay views)."""
    return {name: getattr(inputs, name) for name in _NAMES[type(inputs)]}


def names_used(env: jinja2.Environment, sources: Iterable[str]) -> set[str]:
    """The variables templates read from their context, following includes (which share it) but
    not imported macros (which are given their values as arguments)."""
    used: set[str] = set()
    for source in sources:
        tree = env.parse(source)
        assigned = {n.name for a in tree.find_all(nodes.Assign) for n in a.find_all(nodes.Name)}
        used |= meta.find_undeclared_variables(tree) - assigned
        for include in tree.find_all(nodes.Include):
            if isinstance(include.template, nodes.Const) and env.loader is not None:
                used |= names_used(env, [env.loader.get_source(env, include.template.value)[0]])
    return used


def unknown_names(kind: str, env: jinja2.Environment, sources: Iterable[str]) -> list[str]:
    """The variables a kind's templates name that its inputs do not give."""
    given = {f.name for f in fields(KIND_INPUTS[kind])} | TEMPLATE_GLOBALS
    return sorted(names_used(env, sources) - given)
