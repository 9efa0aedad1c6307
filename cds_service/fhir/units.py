"""Unit recognition and conversion to each analyte's canonical unit, by the explicit table in
`cards/analytes.yaml` (never by a generic UCUM converter: see the divalent-ion note there)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..content.schema import UnitSpec
from .systems import UCUM


def _fold(unit: str) -> str:
    """Unit text as people type it: any case, stray spaces, micro written three ways."""
    return "".join(unit.split()).lower().replace("µ", "u").replace("μ", "u").replace("mcg", "ug")


def _snapped(value: float) -> float:
    """A converted value rid of the division's last-digit error: 74.88 nmol/L is 30 ng/mL, on the
    cut-point, not 29.999999999999996 below it (rulebook, "Units and precision")."""
    rounded = round(value, 9)
    return rounded if math.isclose(rounded, value, rel_tol=1e-13) else value


class UnitTable:
    def __init__(self, units: Mapping[str, UnitSpec]) -> None:
        self._factors = {analyte: spec.factors() for analyte, spec in units.items()}
        self._canonical = {analyte: spec.canonical for analyte, spec in units.items()}
        self._plausible = {analyte: spec.plausible for analyte, spec in units.items()}
        self._folded = {analyte: {_fold(code): code for code in factors} for analyte, factors in self._factors.items()}

    def canonical(self, analyte: str) -> str:
        return self._canonical[analyte]

    def recognise(self, analyte: str, code: object, system: object, text: object) -> str | None:
        """The UCUM code of a Quantity's unit: its UCUM `code` exactly, else its `unit` text."""
        if system == UCUM and isinstance(code, str) and code in self._factors[analyte]:
            return code
        if isinstance(text, str):
            return self._folded[analyte].get(_fold(text))
        return None

    def candidates(self, analyte: str, value: float) -> tuple[float, ...]:
        """What a number without a unit stands for in each accepted unit, canonical, each once."""
        return tuple(sorted({_snapped(value / factor) for factor in self._factors[analyte].values()}))

    def to_canonical(self, analyte: str, value: float, unit: str) -> float:
        factor = self._factors[analyte][unit]
        return value if factor == 1 else _snapped(value / factor)

    def implausible(self, analyte: str, value: float) -> str | None:
        """Why a canonical value is a reporting error rather than a patient state, if it is."""
        bounds = self._plausible[analyte]
        if bounds is None or bounds[0] <= value <= bounds[1]:
            return None
        low, high = (f"{b:g}" for b in bounds)
        return f"implausible value (outside {low}-{high} {self._canonical[analyte]})"
