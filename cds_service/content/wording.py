"""How numbers and lists are written in cards: the templates' filters, and the service's own text."""

from __future__ import annotations

from typing import Any


def format_number(value: float, *, as_reported: bool = False, decimals: int | None = None) -> str:
    """A value as reported with the digits it came with (0.355 -> "0.355"); a converted value to
    `decimals` places (18.03 -> "18"); otherwise a figure of the content to at most two decimals,
    without trailing zeros (45.0 -> "45")."""
    if as_reported:
        return f"{value:.6g}"
    text = f"{value:.{decimals}f}" if decimals is not None else f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text.lstrip("-").strip("0.") == "" else text


def and_list(items: Any) -> str:
    """["a", "b", "c"] -> "a, b and c" (a template filter)."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def capitalize(text: Any) -> str:
    """The first letter up, the rest as written ("vitamin D" -> "Vitamin D"; Jinja2's own filter
    would lower the rest)."""
    words = str(text)
    return words[:1].upper() + words[1:]
