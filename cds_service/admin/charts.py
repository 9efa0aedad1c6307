"""Charts drawn on the server as SVG: no script and no library reach the browser, and every label
passes through the page template's HTML escaping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ..store.report import Report, week_of

WIDTH, HEIGHT, PAD = 720, 220, 34
SERIES = (("shown", "#2f6fb0"), ("silent", "#9a9a9a"), ("snoozed", "#d08a2c"))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class WeeklyChart:
    """Cards decided per week, stacked shown / silent / snoozed, with the hook calls above."""

    width: int
    height: int
    bars: list[Bar]
    labels: list[Label]
    legend: tuple[tuple[str, str], ...] = SERIES


def weekly(report: Report, since: date, until: date) -> WeeklyChart:
    """Every week of the range gets its slot, a week without cards too: the time axis stays true."""
    by_week = {w.start: w for w in report.weeks}
    starts = [week_of(since) + timedelta(weeks=i) for i in range((week_of(until) - week_of(since)).days // 7 + 1)]
    counts = []
    for start in starts:
        kinds = by_week[start].kinds if start in by_week else []
        counts.append(
            {
                "shown": sum(k.issued for k in kinds),
                "silent": sum(k.silent for k in kinds),
                "snoozed": sum(k.snoozed for k in kinds),
                "calls": sum(by_week[start].calls.values()) if start in by_week else 0,
            }
        )
    top = max([c["shown"] + c["silent"] + c["snoozed"] for c in counts] + [1])
    slot = (WIDTH - 2 * PAD) / len(starts)
    scale = (HEIGHT - 2 * PAD - 12) / top
    bars: list[Bar] = []
    labels: list[Label] = []
    for i, (start, count) in enumerate(zip(starts, counts, strict=True)):
        x, base = PAD + i * slot + slot * 0.15, float(HEIGHT - PAD)
        for name, colour in SERIES:
            height = count[name] * scale
            if height:
                base -= height
                bars.append(Bar(x, base, slot * 0.7, height, colour, f"week of {start}: {count[name]} {name}"))
        if len(starts) <= 16 or i % 2 == 0:  # room for every other date on a long range
            labels.append(Label(x + slot * 0.35, HEIGHT - PAD + 14, start.strftime("%d %b")))
        if count["calls"]:
            labels.append(Label(x + slot * 0.35, base - 4, f"{count['calls']} calls"))
    return WeeklyChart(WIDTH, HEIGHT, bars, labels)
