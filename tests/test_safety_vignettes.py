"""Held-out clinical safety vignettes: expected cards worked out by hand from the clinical
specification (docs/clinical-rules.md), never from the implementation. As of 2026-11-25 (the
`client` fixture's clock).

Each vignette gives the request, the exact multiset of (card kind, indicator) pairs the specification
asks for, phrases that must or must not appear in a card of a given kind (summary + detail, compared
case-insensitively), the exact LOINC codes an electrolytes-check card suggests, and the draft a card
must suggest deleting. The comment above each vignette names the section and rule it
follows. Vignettes where the specification is ambiguous are left out on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.builders import (
    SNOMED,
    condition,
    hook_request,
    medication,
    normal_electrolytes,
    obs,
    order_request,
    pending_order,
)

pytestmark = pytest.mark.anyio

PATIENT_VIEW = "/cds-services/vitamin-d-cramps"
ORDER_SIGN = "/cds-services/vitamin-d-order-sign"
ORDER_SELECT = "/cds-services/vitamin-d-order-select"

ADULT = "1960-05-01"
RECENT = "2026-11-20"  # 5 days before AS_OF
EARLIER = "2026-11-10"  # 15 days before AS_OF

# Card kinds with their indicator.
DEF_W = ("vitd-deficient", "warning")
DEF_C = ("vitd-deficient", "critical")
INS_I = ("vitd-insufficient", "info")
INS_W = ("vitd-insufficient", "warning")
HIGH_W = ("vitd-high", "warning")
HIGH_C = ("vitd-high", "critical")
WRONG = ("vitd-wrong-test", "info")
CHECK = ("electrolytes-check", "info")
ABN_W = ("electrolytes-abnormal", "warning")
ABN_C = ("electrolytes-abnormal", "critical")
CAUTION_W = ("vitd-supplement-caution", "warning")
CAUTION_C = ("vitd-supplement-caution", "critical")
DUP_THERAPY = ("vitd-duplicate-therapy", "info")

# LOINC codes that an electrolytes-check card may order.
BMP, MG, CA = "24321-2", "19123-9", "17861-6"

# Fixed phrases (see the brief of the service's card text).
SUPPLEMENT_REMARK = ("supplementation review", "review dose and adherence")
HYPERCALCAEMIA = "hypercalcaemia needs evaluation before any vitamin d is given"
OBSTETRIC = "obstetric guidance applies"
PAYNE = "an ionized calcium settles"
UNREADABLE = "could not be interpreted"
CRAMP_REMARK = "muscle cramps"


@dataclass(frozen=True)
class Vignette:
    id: str
    request: dict[str, Any]
    expected: list[tuple[str, str]]  # exactly these (kind, indicator) pairs, no more, no fewer
    url: str = PATIENT_VIEW
    must: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> phrases every such card holds
    must_not: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> phrases no such card holds
    check_codes: frozenset[str] | None = None  # the exact LOINC codes an electrolytes-check card suggests
    deletes: dict[str, str] = field(default_factory=dict)  # kind -> resourceId its delete action names


# --- request helpers ------------------------------------------------------------------------------


def patient_view(
    vitamin_d: Iterable[dict[str, Any]],
    electrolytes: Iterable[dict[str, Any]],
    *,
    conditions: Iterable[dict[str, Any]] = (),
    medications: Iterable[dict[str, Any]] = (),
    pending: Iterable[dict[str, Any]] = (),
    birth_date: str | None = ADULT,
) -> dict[str, Any]:
    """A patient-view request; every prefetch key present (an empty Bundle: nothing there)."""
    return hook_request(
        list(vitamin_d),
        list(electrolytes),
        conditions=list(conditions),
        medications=list(medications),
        pending_orders=list(pending),
        birth_date=birth_date,
    )


def vitd(value: float, when: str = EARLIER, unit: str | None = "ng/mL", **kw: Any) -> dict[str, Any]:
    return obs("62292-8", value, unit, when, **kw)


def sufficient() -> dict[str, Any]:
    return vitd(45)


def k(value: float | None, unit: str | None = "mmol/L", when: str = RECENT, **kw: Any) -> dict[str, Any]:
    return obs("2823-3", value, unit, when, **kw)


def mg(value: float | None, unit: str | None = "mg/dL", when: str = RECENT, **kw: Any) -> dict[str, Any]:
    return obs("19123-9", value, unit, when, **kw)


def ca(value: float | None, unit: str | None = "mg/dL", when: str = RECENT, **kw: Any) -> dict[str, Any]:
    return obs("17861-6", value, unit, when, **kw)


def albumin(value: float, when: str = RECENT) -> dict[str, Any]:
    return obs("1751-7", value, "g/dL", when)


def ionized(value: float, when: str = RECENT) -> dict[str, Any]:
    return obs("1995-0", value, "mmol/L", when)


def corrected(value: float, when: str = RECENT) -> dict[str, Any]:
    return obs("29265-6", value, "mg/dL", when)


def k_mg_normal(when: str = RECENT) -> list[dict[str, Any]]:
    return [k(4.2, when=when), mg(2.0, when=when)]


def with_calcium(*calcium: dict[str, Any]) -> list[dict[str, Any]]:
    """Normal potassium and magnesium, and the given calcium (and albumin) results."""
    return [*k_mg_normal(), *calcium]


def cramps() -> dict[str, Any]:
    return condition("R25.2")


def furosemide() -> dict[str, Any]:
    return medication("furosemide 40 MG Oral Tablet")


def hydrochlorothiazide() -> dict[str, Any]:
    return medication("hydrochlorothiazide 25 MG Oral Tablet")


def cholecalciferol_active(authored: str | None = None) -> dict[str, Any]:
    return medication("cholecalciferol 50000 UNT Oral Capsule", "316965", id="med-active", authored=authored)


def draft(display: str, rxnorm: str | None = None) -> dict[str, Any]:
    return medication(display, rxnorm, status="draft", id="mr-1")


def free_text_draft(text: str) -> dict[str, Any]:
    resource = draft(text)
    resource["medicationCodeableConcept"] = {"text": text}  # no coding at all, text only
    return resource


def order(
    drafts: list[dict[str, Any]],
    vitamin_d: list[dict[str, Any]],
    electrolytes: list[dict[str, Any]],
    *,
    medications: Iterable[dict[str, Any]] = (),
    hook: str = "order-sign",
) -> dict[str, Any]:
    return order_request(
        drafts,
        hook=hook,
        vitamin_d=vitamin_d,
        electrolytes=electrolytes,
        conditions=[],
        medications=list(medications),
    )


# --- the vignettes --------------------------------------------------------------------------------

VIGNETTES: list[Vignette] = [
    # ---- 1. Calcium ----------------------------------------------------------------------------
    Vignette(
        # Calcium: albumin >= 4.0 -> no correction; measured 10.6 > 10.2 (Electrolyte ranges) -> high, warning.
        "calcium-10.6-albumin-4.8-high-without-correction",
        patient_view([sufficient()], with_calcium(ca(10.6), albumin(4.8))),
        [ABN_W],
        must_not={"electrolytes-abnormal": (PAYNE,)},
    ),
    Vignette(
        # Calcium: albumin 4.5 -> measured 12.3 judged as is; > 12.0 critical high -> critical card.
        "calcium-12.3-albumin-4.5-critical",
        patient_view([sufficient()], with_calcium(ca(12.3), albumin(4.5))),
        [ABN_C],
    ),
    Vignette(
        # Calcium: albumin 4.2 -> no correction; 8.7 within 8.6-10.2 -> normal; Stance: no card for a normal result.
        "calcium-8.7-albumin-4.2-normal",
        patient_view([sufficient()], with_calcium(ca(8.7), albumin(4.2))),
        [],
    ),
    Vignette(
        # Calcium (Payne): same-day albumin 2.5 -> 7.9 + 0.8 x 1.5 = 9.1, within 8.6-10.2 -> normal, no card.
        "calcium-7.9-albumin-2.5-same-day-corrected-normal",
        patient_view([sufficient()], with_calcium(ca(7.9), albumin(2.5))),
        [],
    ),
    Vignette(
        # Calcium (Payne): same-day albumin 3.0 -> 8.0 + 0.8 x 1.0 = 8.8, normal -> no card.
        "calcium-8.0-albumin-3.0-same-day-corrected-normal",
        patient_view([sufficient()], with_calcium(ca(8.0), albumin(3.0))),
        [],
    ),
    Vignette(
        # Calcium: albumin from another day -> no correction; measured 8.0 < 8.6 (not < 7.0) -> low, warning.
        "calcium-8.0-albumin-other-day-low",
        patient_view([sufficient()], with_calcium(ca(8.0), albumin(3.0, when="2026-11-19"))),
        [ABN_W],
        must_not={"electrolytes-abnormal": (PAYNE,)},
    ),
    Vignette(
        # Calcium (Payne): 9.8 + 0.8 x 1.5 = 11.0 > 10.2 -> high; a card relying on the correction says an
        # ionized calcium settles it and shows measured, albumin and corrected values.
        "calcium-9.8-albumin-2.5-corrected-high",
        patient_view([sufficient()], with_calcium(ca(9.8), albumin(2.5))),
        [ABN_W],
        must={"electrolytes-abnormal": (PAYNE, "9.8", "2.5", "11.0")},
    ),
    Vignette(
        # Calcium: newest recent calcium of any kind decides; an older ionized (80 days, normal) never hides a
        # newer total; total 13.0 > 12.0 -> critical.
        "old-ionized-1.20-does-not-hide-total-13.0-today",
        patient_view([sufficient()], with_calcium(ionized(1.20, when="2026-09-06"), ca(13.0, when="2026-11-25"))),
        [ABN_C],
    ),
    Vignette(
        # Calcium: ionized and total on the same day -> the ionized decides; ionized 1.45 > 1.33 (not > 1.60)
        # -> high, warning, although the total 9.5 is normal.
        "same-day-ionized-1.45-high-decides-over-normal-total",
        patient_view([sufficient()], with_calcium(ca(9.5), ionized(1.45))),
        [ABN_W],
    ),
    Vignette(
        # LOINC codes: corrected calcium 29265-6 used as reported; 10.8 > 10.2 (total or corrected range) -> warning.
        "lab-corrected-calcium-10.8-high",
        patient_view([sufficient()], with_calcium(corrected(10.8))),
        [ABN_W],
    ),
    Vignette(
        # LOINC codes: a lab-reported corrected calcium is used as reported (Payne applies to a total only);
        # 8.4 < 8.6 -> low, warning, even with a same-day albumin of 3.0.
        "lab-corrected-calcium-8.4-used-as-reported",
        patient_view([sufficient()], with_calcium(corrected(8.4), albumin(3.0))),
        [ABN_W],
    ),
    Vignette(
        # Electrolyte ranges: high 10.2 is the upper limit itself, inside the range -> no card.
        "calcium-10.2-at-upper-limit-normal",
        patient_view([sufficient()], with_calcium(ca(10.2))),
        [],
    ),
    Vignette(
        # Electrolyte ranges: critical high is > 12.0, so 12.0 is high but not critical -> warning.
        "calcium-12.0-high-not-critical",
        patient_view([sufficient()], with_calcium(ca(12.0))),
        [ABN_W],
    ),
    Vignette(
        # Units: Ca meq/L = mmol/L x 2 (explicit table, not UCUM's eq): 5.4 meq/L = 2.7 mmol/L = 10.8 mg/dL -> high.
        "calcium-5.4-meq-per-litre-is-10.8-mg-dl-high",
        patient_view([sufficient()], with_calcium(obs("2000-8", 5.4, "meq/L", RECENT))),
        [ABN_W],
        must={"electrolytes-abnormal": ("10.8 mg/dl",)},
    ),
    # ---- 2. Unreadable results -----------------------------------------------------------------
    Vignette(
        # Reading an Observation: 200 with no unit is unreadable; as the newest 25(OH)D it stops any status from
        # the older 15 (200 days ago) -> no status card; electrolytes normal, no cramps -> no card.
        "newest-25ohd-without-unit-stops-older-deficiency",
        patient_view([vitd(200, RECENT, unit=None), vitd(15, "2026-05-09")], normal_electrolytes()),
        [],
    ),
    Vignette(
        # Time windows: the 15 from 200 days ago alone is within 365 days and decides -> deficient (warning);
        # calcium present, no diuretic -> nothing to suggest.
        "25ohd-15-from-200-days-ago-alone-is-deficient",
        patient_view([vitd(15, "2026-05-09")], normal_electrolytes()),
        [DEF_W],
    ),
    Vignette(
        # Units: potassium in g/dL is the wrong dimension -> unreadable; as the newest K it counts as missing
        # (older 4.0 not used); cramps -> suggest K: with Ca present, the panel 24321-2.
        "potassium-0.7-g-dl-unreadable-counts-as-missing",
        patient_view(
            [sufficient()],
            [k(4.0, when="2026-10-01"), k(0.7, "g/dL"), mg(2.0), ca(9.4)],
            conditions=[cramps()],
        ),
        [CHECK],
        check_codes=frozenset({BMP}),
        must={"electrolytes-check": (UNREADABLE,)},
    ),
    Vignette(
        # Reading an Observation: valueString "Blank" is not a value -> unreadable Mg, missing; cramps -> 19123-9.
        "magnesium-valuestring-blank-unreadable",
        patient_view([sufficient()], [k(4.2), mg(None, None, valueString="Blank"), ca(9.4)], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({MG}),
        must={"electrolytes-check": (UNREADABLE,)},
    ),
    Vignette(
        # Units: a negative value is never interpreted -> Ca missing; cramps; K present so not wanted -> 17861-6.
        "calcium-negative-unreadable-calcium-alone",
        patient_view([sufficient()], [k(4.2), mg(2.0), ca(-9.4)], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({CA}),
        must={"electrolytes-check": (UNREADABLE,)},
    ),
    Vignette(
        # Reading an Observation: valueString "4.0 mmol/L" is read as that quantity -> K normal; all three
        # present -> nothing to suggest, no card.
        "potassium-valuestring-with-unit-is-read",
        patient_view(
            [sufficient()], [k(None, None, valueString="4.0 mmol/L"), mg(2.0), ca(9.4)], conditions=[cramps()]
        ),
        [],
    ),
    Vignette(
        # Reading an Observation: a bare number "4.0" without a unit is not interpreted -> K missing; cramps ->
        # panel 24321-2, naming the unreadable result.
        # Revision 2026-12-07 (Values): potassium's units agree (mmol/L = meq/L), so MEDITECH's bare
        # "4.0" is read as 4.0 mmol/L, normal -> nothing to check or flag.
        "potassium-valuestring-bare-number-read",
        patient_view([sufficient()], [k(None, None, valueString="4.0"), mg(2.0), ca(9.4)], conditions=[cramps()]),
        [],
    ),
    Vignette(
        # Values: magnesium's units differ (mg/dL, mmol/L) -> a bare "2.0" is not read; with cramps,
        # Mg counts as missing and is named unreadable -> 19123-9.
        "magnesium-valuestring-bare-number-not-read",
        patient_view([sufficient()], [k(4.2), mg(None, None, valueString="2.0"), ca(9.4)], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({MG}),
        must={"electrolytes-check": (UNREADABLE,)},
    ),
    Vignette(
        # Units (plausibility): 25(OH)D 1500 ng/mL > 1000 -> unreadable, no vitd-high; as the newest it stops the
        # older deficient 12 -> no status card.
        "25ohd-1500-implausible-no-status",
        patient_view([vitd(1500, RECENT), vitd(12, "2026-08-01")], normal_electrolytes()),
        [],
    ),
    Vignette(
        # Units: zero is never interpreted -> no critical-low potassium card; K missing with cramps -> 24321-2.
        "potassium-zero-unreadable-not-critical",
        patient_view([sufficient()], [k(0), mg(2.0), ca(9.4)], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({BMP}),
        must={"electrolytes-check": (UNREADABLE,)},
    ),
    # ---- 3. Low vitamin D with high calcium, pregnancy, treatment begun, age --------------------
    Vignette(
        # Calcium: low 25(OH)D (insufficient, normally info) with calcium 10.8 above range -> warning, no
        # supplementation remark, hypercalcaemia wording; plus the abnormal calcium card; insufficient, no cramps
        # -> no check card.
        "insufficient-with-high-calcium-becomes-warning",
        patient_view([vitd(25)], with_calcium(ca(10.8))),
        [INS_W, ABN_W],
        must={"vitd-insufficient": (HYPERCALCAEMIA,)},
        must_not={"vitd-insufficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Calcium: deficient with calcium 12.5 past its critical value -> the vitamin D card is critical; calcium
        # card critical; calcium present, no diuretic -> no check card.
        "deficient-with-critical-calcium-becomes-critical",
        patient_view([vitd(12)], with_calcium(ca(12.5))),
        [DEF_C, ABN_C],
        must={"vitd-deficient": (HYPERCALCAEMIA,)},
        must_not={"vitd-deficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Calcium: the deciding calcium after Payne (9.9 + 0.8 x 1.2 = 10.86) is above range -> deficient card is a
        # warning with the hypercalcaemia wording and no supplementation remark; the calcium card cites Payne.
        "deficient-with-high-corrected-calcium",
        patient_view([vitd(12)], with_calcium(ca(9.9), albumin(2.8))),
        [DEF_W, ABN_W],
        must={"vitd-deficient": (HYPERCALCAEMIA,), "electrolytes-abnormal": (PAYNE,)},
        must_not={"vitd-deficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Who the cards are for: pregnancy (ICD-10-CM O-code) -> no supplementation remark, obstetric guidance.
        "pregnancy-icd10-o-code-deficient",
        patient_view([vitd(15)], normal_electrolytes(), conditions=[condition("O09.90")]),
        [DEF_W],
        must={"vitd-deficient": (OBSTETRIC,)},
        must_not={"vitd-deficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Who the cards are for: pregnancy (Z34.x) with insufficient 25(OH)D -> info card, obstetric guidance,
        # no supplementation remark.
        "pregnancy-z34-insufficient",
        patient_view([vitd(25)], normal_electrolytes(), conditions=[condition("Z34.90")]),
        [INS_I],
        must={"vitd-insufficient": (OBSTETRIC,)},
        must_not={"vitd-insufficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Who the cards are for: pregnancy (SNOMED CT 77386006) -> obstetric guidance, no supplementation remark.
        "pregnancy-snomed-77386006-deficient",
        patient_view([vitd(15)], normal_electrolytes(), conditions=[condition("77386006", SNOMED)]),
        [DEF_W],
        must={"vitd-deficient": (OBSTETRIC,)},
        must_not={"vitd-deficient": SUPPLEMENT_REMARK},
    ),
    Vignette(
        # Who the cards are for: vitamin D started (authoredOn 2026-10-15) after the deciding result (2026-10-01)
        # -> no deficient card; calcium present -> nothing else.
        "vitamin-d-started-after-result-no-low-card",
        patient_view(
            [vitd(15, "2026-10-01")], normal_electrolytes(), medications=[cholecalciferol_active("2026-10-15")]
        ),
        [],
    ),
    Vignette(
        # Who the cards are for: vitamin D started (2026-09-01) before the result (2026-10-01) -> deficient card
        # keeps the "review dose and adherence" wording.
        "vitamin-d-started-before-result-review-dose",
        patient_view(
            [vitd(15, "2026-10-01")], normal_electrolytes(), medications=[cholecalciferol_active("2026-09-01")]
        ),
        [DEF_W],
        must={"vitd-deficient": ("review dose and adherence",)},
    ),
    Vignette(
        # Who the cards are for: 16 years old -> no vitamin D status card and no electrolyte card (deficient
        # 25(OH)D and a critical potassium notwithstanding).
        # Revision 2026-12-07 (critical values at any age): K 6.5 > 6.0 is critical -> shown at 16;
        # still no status card and no non-critical card.
        "sixteen-year-old-critical-potassium-only",
        patient_view([vitd(12)], [k(6.5), mg(2.0), ca(9.4)], birth_date="2010-06-01"),
        [ABN_C],
    ),
    Vignette(
        # Who the cards are for: under 18, a non-critical abnormal value (K 5.5) and a deficiency -> nothing.
        "sixteen-year-old-no-status-or-electrolyte-card",
        patient_view([vitd(12)], [k(5.5), mg(2.0), ca(9.4)], birth_date="2010-06-01"),
        [],
    ),
    Vignette(
        # Who the cards are for: born 2008-11-25, 18 years old on AS_OF's date -> an adult -> deficient card.
        "turns-eighteen-today-is-an-adult",
        patient_view([vitd(12)], normal_electrolytes(), birth_date="2008-11-25"),
        [DEF_W],
    ),
    Vignette(
        # Who the cards are for: born 2008-11-26, still 17 on AS_OF's date -> no status card.
        "turns-eighteen-tomorrow-is-a-minor",
        patient_view([vitd(12)], normal_electrolytes(), birth_date="2008-11-26"),
        [],
    ),
    Vignette(
        # Who the cards are for: no birth date -> treated as an adult, the card says the age is unknown;
        # Card catalogue: deficient text recommends a supplementation review.
        "no-birth-date-adult-age-unknown",
        patient_view([vitd(12)], normal_electrolytes(), birth_date=None),
        [DEF_W],
        must={"vitd-deficient": ("age unknown", "supplementation review")},
    ),
    # ---- 4. Which electrolytes to suggest; abnormal electrolytes --------------------------------
    Vignette(
        # Which electrolytes to suggest: cramps documented -> each of K, Mg, Ca without a recent result; none
        # at all -> 24321-2 (K and Ca) and 19123-9 (Mg).
        "cramps-no-electrolytes-suggests-panel-and-magnesium",
        patient_view([sufficient()], [], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({BMP, MG}),
    ),
    Vignette(
        # Which electrolytes to suggest: cramps, K and Ca recent -> only Mg (19123-9).
        "cramps-missing-magnesium-only",
        patient_view([sufficient()], [k(4.2), ca(9.4)], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({MG}),
    ),
    Vignette(
        # Time windows: calcium of 2026-08-17 (100 days) is not recent -> missing; cramps, K recent so not wanted
        # -> calcium alone (17861-6).
        "cramps-old-calcium-suggests-calcium-alone",
        patient_view([sufficient()], [k(4.2), mg(2.0), ca(9.4, when="2026-08-17")], conditions=[cramps()]),
        [CHECK],
        check_codes=frozenset({CA}),
    ),
    Vignette(
        # Which electrolytes to suggest: deficient, no cramps, no diuretic -> calcium only (17861-6, K not wanted).
        "deficient-no-cramps-no-diuretic-calcium-only",
        patient_view([vitd(12)], []),
        [DEF_W, CHECK],
        check_codes=frozenset({CA}),
    ),
    Vignette(
        # Which electrolytes to suggest: deficient with a loop diuretic (furosemide) -> Ca, K and Mg:
        # 24321-2 and 19123-9.
        "deficient-loop-diuretic-potassium-magnesium-calcium",
        patient_view([vitd(12)], [], medications=[furosemide()]),
        [DEF_W, CHECK],
        check_codes=frozenset({BMP, MG}),
    ),
    Vignette(
        # Which electrolytes to suggest: deficient with a thiazide, Mg recent -> K and Ca: the panel 24321-2.
        "deficient-thiazide-magnesium-present-panel-only",
        patient_view([vitd(12)], [mg(2.0)], medications=[hydrochlorothiazide()]),
        [DEF_W, CHECK],
        check_codes=frozenset({BMP}),
    ),
    Vignette(
        # Which electrolytes to suggest: insufficient and no documented cramps -> none, even with nothing measured.
        "insufficient-no-cramps-no-check",
        patient_view([vitd(25)], []),
        [INS_I],
    ),
    Vignette(
        # Which electrolytes to suggest: insufficient and no cramps -> none, a loop diuretic notwithstanding.
        "insufficient-loop-diuretic-no-cramps-no-check",
        patient_view([vitd(25)], [], medications=[furosemide()]),
        [INS_I],
    ),
    Vignette(
        # Card catalogue (electrolytes-check): never a test already ordered and pending; a pending 24321-2 covers
        # K and Ca -> cramps with nothing measured suggests only magnesium.
        "cramps-pending-panel-not-suggested-again",
        patient_view([sufficient()], [], conditions=[cramps()], pending=[pending_order(BMP)]),
        [CHECK],
        check_codes=frozenset({MG}),
    ),
    Vignette(
        # Card catalogue (electrolytes-check): cramps with nothing measured and Mg pending -> only the panel.
        "cramps-pending-magnesium-not-suggested-again",
        patient_view([sufficient()], [], conditions=[cramps()], pending=[pending_order(MG)]),
        [CHECK],
        check_codes=frozenset({BMP}),
    ),
    Vignette(
        # Card catalogue: deficient without cramps wants calcium alone, which is pending -> nothing actionable,
        # no check card (Stance: quiet).
        "deficient-pending-calcium-no-check-card",
        patient_view([vitd(12)], [], pending=[pending_order(CA)]),
        [DEF_W],
    ),
    Vignette(
        # Electrolyte ranges: K 6.5 > 6.0 -> critical card: leads with "Critical", lab's critical-value procedure,
        # no cramp remark even though cramps are documented; all three recent -> no check card.
        "critical-potassium-6.5-with-cramps",
        patient_view([sufficient()], [k(6.5), mg(2.0), ca(9.4)], conditions=[cramps()]),
        [ABN_C],
    ),
    Vignette(
        # Electrolyte ranges: K 5.4 > 5.0 (not > 6.0) -> warning; cramps documented -> the cramp remark.
        "potassium-5.4-with-cramps-has-cramp-remark",
        patient_view([sufficient()], [k(5.4), mg(2.0), ca(9.4)], conditions=[cramps()]),
        [ABN_W],
        must={"electrolytes-abnormal": (CRAMP_REMARK,)},
    ),
    Vignette(
        # Card catalogue: the cramp remark only when cramps are documented -> K 5.4 warning without it.
        "potassium-5.4-without-cramps-no-cramp-remark",
        patient_view([sufficient()], [k(5.4), mg(2.0), ca(9.4)]),
        [ABN_W],
        must_not={"electrolytes-abnormal": (CRAMP_REMARK,)},
    ),
    # ---- Vitamin D status: units, comparators, boundaries, wrong test -------------------------
    Vignette(
        # Units: 45 nmol/L / 2.496 = 18.0 ng/mL < 20 -> deficient; shown lab's unit first, then whole ng/mL.
        "25ohd-45-nmol-l-deficient-shown-both-units",
        patient_view([vitd(45, unit="nmol/L")], normal_electrolytes()),
        [DEF_W],
        must={"vitd-deficient": ("45 nmol/l (18 ng/ml)", "supplementation review")},
    ),
    Vignette(
        # Reading an Observation: valueQuantity "<5 ng/mL" is below 20 -> deficient.
        "25ohd-less-than-5-comparator-deficient",
        patient_view([vitd(5, comparator="<")], normal_electrolytes()),
        [DEF_W],
    ),
    Vignette(
        # Thresholds (endocrine-2011): 20 is the start of "20 to < 30" -> insufficient (info).
        "25ohd-20-is-insufficient",
        patient_view([vitd(20)], normal_electrolytes()),
        [INS_I],
    ),
    Vignette(
        # Thresholds: sufficient is 30 to 100 inclusive; high is > 100 -> 100 gives no card.
        "25ohd-100-is-sufficient-no-card",
        patient_view([vitd(100)], normal_electrolytes()),
        [],
    ),
    Vignette(
        # Thresholds: very high (critical) is > 150 -> 151 gives a critical vitd-high card.
        "25ohd-151-very-high-critical",
        patient_view([vitd(151)], normal_electrolytes()),
        [HIGH_C],
    ),
    Vignette(
        # LOINC codes / Card catalogue: only a 1,25-dihydroxyvitamin D result (1649-3), no 25(OH)D -> wrong-test.
        "only-1-25-dihydroxy-result-wrong-test",
        patient_view([obs("1649-3", 40, "pg/mL", EARLIER)], normal_electrolytes()),
        [WRONG],
    ),
    # ---- 5. Orders ------------------------------------------------------------------------------
    Vignette(
        # Card catalogue (vitd-supplement-caution): calcitriol drafted while calcium 11.5 is above range (not
        # past 12.0) -> warning, delete the draft.
        "order-calcitriol-with-calcium-11.5",
        order([draft("calcitriol 0.00025 MG Oral Capsule")], [sufficient()], with_calcium(ca(11.5))),
        [CAUTION_W],
        url=ORDER_SIGN,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Leg-cramp context: a combination product holding cholecalciferol is a vitamin D product -> warning.
        "order-calcium-carbonate-cholecalciferol-combination-with-calcium-11.5",
        order(
            [draft("Calcium Carbonate 600 MG / Cholecalciferol 400 UNT Oral Tablet")],
            [sufficient()],
            with_calcium(ca(11.5)),
        ),
        [CAUTION_W],
        url=ORDER_SIGN,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Card catalogue: a vitamin D product "coded or in text" ("D3", bare "vitamin D") -> warning.
        "order-free-text-vitamin-d3-with-calcium-11.5",
        order([free_text_draft("Vitamin D3 2000 unit")], [sufficient()], with_calcium(ca(11.5))),
        [CAUTION_W],
        url=ORDER_SIGN,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Leg-cramp context: ergocalciferol (vitamin D2) is a vitamin D product -> warning on order-select too.
        "order-select-ergocalciferol-with-calcium-11.5",
        order(
            [draft("ergocalciferol 1.25 MG Oral Capsule")],
            [sufficient()],
            with_calcium(ca(11.5)),
            hook="order-select",
        ),
        [CAUTION_W],
        url=ORDER_SELECT,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Card catalogue: critical when calcium is past its critical value (12.5 > 12.0).
        "order-cholecalciferol-with-calcium-12.5-critical",
        order([draft("cholecalciferol 50000 UNT Oral Capsule", "316965")], [sufficient()], with_calcium(ca(12.5))),
        [CAUTION_C],
        url=ORDER_SIGN,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Card catalogue: critical when 25(OH)D is very high (180 > 150), calcium normal.
        "order-cholecalciferol-with-25ohd-180-critical",
        order([draft("cholecalciferol 50000 UNT Oral Capsule", "316965")], [vitd(180)], normal_electrolytes()),
        [CAUTION_C],
        url=ORDER_SIGN,
        deletes={"vitd-supplement-caution": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Card catalogue (vitd-duplicate-therapy): a vitamin D draft while cholecalciferol is active on the
        # medication list, levels normal -> info, delete the draft (not the active medicine).
        "order-ergocalciferol-while-cholecalciferol-active-duplicate-therapy",
        order(
            [draft("ergocalciferol 1.25 MG Oral Capsule")],
            [sufficient()],
            normal_electrolytes(),
            medications=[cholecalciferol_active()],
        ),
        [DUP_THERAPY],
        url=ORDER_SIGN,
        deletes={"vitd-duplicate-therapy": "MedicationRequest/mr-1"},
    ),
    Vignette(
        # Card catalogue: only vitamin D products trigger the order cards -> atorvastatin gets nothing, even with
        # calcium 12.5 and 25(OH)D 180.
        "order-atorvastatin-gets-nothing",
        order([draft("atorvastatin 40 MG Oral Tablet")], [vitd(180)], with_calcium(ca(12.5))),
        [],
        url=ORDER_SIGN,
    ),
]


# --- the test -------------------------------------------------------------------------------------


def _kind(card: dict[str, Any]) -> str:
    return card["source"]["topic"]["code"]


def _text(card: dict[str, Any]) -> str:
    return f"{card.get('summary', '')}\n{card.get('detail', '')}".lower()


def _suggested_codes(card: dict[str, Any]) -> set[str]:
    return {
        action["resource"]["code"]["coding"][0]["code"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion.get("actions", [])
        if action.get("type") == "create"
    }


def _deleted_ids(card: dict[str, Any]) -> set[str]:
    return {
        action.get("resourceId")
        for suggestion in card.get("suggestions", [])
        for action in suggestion.get("actions", [])
        if action.get("type") == "delete"
    }


def test_vignette_ids_are_unique() -> None:
    ids = [v.id for v in VIGNETTES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v.id for v in VIGNETTES])
async def test_vignette(client: httpx.AsyncClient, vignette: Vignette) -> None:
    response = await client.post(vignette.url, json=vignette.request)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    got = sorted((_kind(c), c["indicator"]) for c in cards)
    shown = [f"{_kind(c)}/{c['indicator']}: {c.get('summary')}" for c in cards]
    assert got == sorted(vignette.expected), f"cards: {shown}"

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for c in cards:
        by_kind.setdefault(_kind(c), []).append(c)

    for kind, phrases in vignette.must.items():
        for c in by_kind[kind]:
            for phrase in phrases:
                assert phrase.lower() in _text(c), f"{kind} lacks {phrase!r}: {c['summary']!r} / {c.get('detail')!r}"
    for kind, phrases in vignette.must_not.items():
        for c in by_kind[kind]:
            for phrase in phrases:
                assert phrase.lower() not in _text(c), f"{kind} holds {phrase!r}: {c['summary']!r}"

    # Card catalogue: electrolytes-check creates ServiceRequests for what is missing only, selectionBehavior any.
    for c in by_kind.get("electrolytes-check", []):
        assert c.get("selectionBehavior") == "any"
        for suggestion in c.get("suggestions", []):
            for action in suggestion["actions"]:
                assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"
        if vignette.check_codes is not None:
            assert _suggested_codes(c) == set(vignette.check_codes)

    # Card catalogue: a critical electrolyte card leads with "Critical", names the lab's critical-value
    # procedure, and makes no cramp remark.
    for c in by_kind.get("electrolytes-abnormal", []):
        if c["indicator"] == "critical":
            assert c["summary"].lower().startswith("critical"), c["summary"]
            assert "critical-value procedure" in (c.get("detail") or "").lower()
            assert CRAMP_REMARK not in _text(c)

    for kind, resource_id in vignette.deletes.items():
        for c in by_kind[kind]:
            assert resource_id in _deleted_ids(c), f"{kind} does not delete {resource_id}: {c.get('suggestions')}"
            assert "selectionBehavior" in c
