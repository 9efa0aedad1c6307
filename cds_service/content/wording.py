"""How numbers and lists are written in cards: the templates' filters, and the service's own text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def format_number(value: float, *, decimals: int | None = None) -> str:
    """A converted value to `decimals` places (18.03 -> "18"); otherwise a figure of the content to
    at most two decimals, without trailing zeros (45.0 -> "45"). A value the laboratory reported is
    shown as it wrote it (LabResult.reported_text)."""
    text = f"{value:.{decimals}f}" if decimals is not None else f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text.lstrip("-").strip("0.") == "" else text


def beside_cuts(value: float, decimals: int, cuts: Iterable[float]) -> str:
    """A converted value to `decimals` places, or more until the figure shown sits on the same side
    of every cut-point as the value itself (74 nmol/L is 29.6 ng/mL, never "30" beside "below
    30"): rounding never carries a shown value onto or across a cut-point."""
    cuts = tuple(cuts)
    for places in range(decimals, decimals + 16):
        text = format_number(value, decimals=places)
        shown = float(text)
        if all((shown > cut) == (value > cut) and (shown < cut) == (value < cut) for cut in cuts):
            return text
    return text


def range_bound(value: float, decimals: int) -> str:
    """A range's bound to the decimals of its analyte (5 -> "5.0"), or with every digit it has
    where it has more (a laboratory's 2.55 stays "2.55", never "2.5")."""
    text = f"{value:.{decimals}f}"
    return text if float(text) == value else f"{value:.6g}"


def and_list(items: Any) -> str:
    """["a", "b", "c"] -> "a, b and c" (a template filter)."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def capitalize(text: Any) -> str:
    """The first letter up, the rest as written ("vitamin D" -> "Vitamin D"; Jinja2's own filter
    would lower the rest)."""
    words = str(text)
    return words[:1].upper() + words[1:]


def distinct_rows(rows: Any) -> list[Any]:
    """A data table's rows, each result once (by test, date, value and reading), in first-seen order:
    a result that stands behind two parts of a card is listed once (a template filter)."""
    seen: set[tuple[Any, ...]] = set()
    distinct = []
    for row in rows:
        key = (row.code, row.date, row.shown, row.problem)
        if key not in seen:
            seen.add(key)
            distinct.append(row)
    return distinct
