"""The SMART app's trend page: the results behind the vitamin D cards over the years, drawn on the
server as HTML and SVG. No script and no inline style reach the browser (the page's CSP allows a
stylesheet from the service only), every text from FHIR passes through the template's HTML escaping,
and every result is worded as the cards word it (CardRenderer.view), so the page never says other
than the cards."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Literal

import jinja2

from ..clinical.results import LabResult
from ..clinical.trend import Band, Course, Point, Series, Trend
from ..clinical.vitamin_d import Status
from ..content.loader import Content
from ..content.schema import Profile
from ..content.wording import beside_cuts, capitalize, format_number, range_bound
from ..rendering.renderer import CardRenderer

TEMPLATES = Path(__file__).resolve().parent / "templates"
UNREADABLE = "unreadable"
_HOLDS = {"vitamin_d": "vitamin D", "calcium": "calcium"}
_LABEL_GAP = 12  # SVG units between two band labels, so that thin bands keep readable labels
_COURSE_ROW = 30


@dataclass(frozen=True)
class Frame:
    """A chart's drawing area in SVG units: `first` at `left`, `last` at `right`, `lo` at `bottom`,
    `hi` at `top`. A date or value outside is drawn at the edge (its title and data still say it)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    first: date
    last: date
    lo: float = 0.0
    hi: float = 1.0

    def x(self, day: date) -> float:
        span = max((self.last - self.first).days, 1)
        offset = min(max((day - self.first).days, 0), span)
        return round(self.left + (self.right - self.left) * offset / span, 1)

    @property
    def unreadable_y(self) -> float:
        """The row below the time axis where results that could not be interpreted are marked."""
        return float(self.bottom + 40)

    def y(self, value: float) -> float:
        clipped = min(max(value, self.lo), self.hi)
        return round(self.bottom - (self.bottom - self.top) * (clipped - self.lo) / (self.hi - self.lo), 1)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str  # "" : a tick without a label (too many to label them all)


@dataclass(frozen=True)
class Shade:
    """A shaded value span: a vitamin D band (`band` its status) or an electrolyte's range (`band` "")."""

    band: str
    label: str
    low: str  # the cut-point as data, "" when open
    high: str
    y: float
    height: float
    label_y: float


@dataclass(frozen=True)
class Mark:
    """One result on a chart; `value` "" when it could not be interpreted (drawn on its own row)."""

    x: float
    y: float
    date: str
    value: str
    status: str
    comparator: str
    title: str
    off_scale: bool = False
    critical: bool = False  # past a critical value, or flagged critical by the laboratory


@dataclass(frozen=True)
class Chart:
    id: str
    analyte: str
    name: str
    unit: str
    title: str
    frame: Frame
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    shades: tuple[Shade, ...]
    marks: tuple[Mark, ...]
    corrected: tuple[Mark, ...]  # calcium corrected for albumin, beside its measured mark
    empty: bool


@dataclass(frozen=True)
class Bar:
    """A course on the time axis; `start`/`end` as data ("" when not recorded)."""

    name: str
    start: str
    end: str
    active: bool
    x1: float
    x2: float
    y: float
    caption: str
    start_known: bool
    end_state: Literal["dated", "ongoing", "not-recorded"]


@dataclass(frozen=True)
class Courses:
    frame: Frame
    x_ticks: tuple[Tick, ...]
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Row:
    analyte: str
    date: str
    result: str
    judgement: str
    corrected: str
    flag: str
    unreadable: bool


@dataclass(frozen=True)
class CourseRow:
    name: str
    ordered: str
    holds: str
    start: str
    end: str


def _number(value: float) -> str:
    """A value as data: enough digits to tell results apart, none of float's noise."""
    return f"{value:.6g}"


def _coordinate(value: float) -> str:
    """An SVG coordinate to a tenth of a unit: finer is invisible, and float noise is not written."""
    return f"{value:.1f}".removesuffix(".0")


def _day(point: Point) -> date | None:
    """The UTC day, as the trend's axis and windows count days."""
    effective = point.result.effective
    return effective.astimezone(UTC).date() if effective is not None else None


def _value_ticks(lo: float, hi: float, count: int) -> tuple[float, ...]:
    """Round ticks (1, 2, 2.5 or 5 times a power of ten) covering lo..hi in about `count` steps."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return tuple(round(i * step, 6) for i in range(first, last + 1))


def _in_words(status: str) -> str:
    return status.replace("-", " ")


def _shade(frame: Frame, low: float | None, high: float | None, band: str, label: str) -> Shade:
    """The span low..high on the frame; an open end runs to the axis edge."""
    y_low = frame.y(low) if low is not None else float(frame.bottom)
    y_high = frame.y(high) if high is not None else float(frame.top)
    data_low = _number(low) if low is not None else ""
    data_high = _number(high) if high is not None else ""
    return Shade(band, label, data_low, data_high, y_high, round(y_low - y_high, 1), y_high)


def _year_ticks(frame: Frame) -> tuple[Tick, ...]:
    """1 January of each year in the period; a period within one year gets its two ends instead."""
    first, last = frame.first, frame.last
    years = range(first.year if (first.month, first.day) == (1, 1) else first.year + 1, last.year + 1)
    if not years:
        return (Tick(frame.x(first), first.isoformat()), Tick(frame.x(last), last.isoformat()))
    every = math.ceil(len(years) / max((frame.right - frame.left) // 48, 1))  # labels that never overlap
    return tuple(Tick(frame.x(date(y, 1, 1)), str(y) if i % every == 0 else "") for i, y in enumerate(years))


class TrendPage:
    """Built once per service (its Jinja2 environment, the content's names); `render` per request."""

    def __init__(self, content: Content, profile: Profile, cards: CardRenderer) -> None:
        self._analytes = content.analytes
        self._profile = profile
        self._cards = cards
        self._labels = {s.value: s.value for s in Status} | {Status.INSUFFICIENT.value: profile.insufficient_label}
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["n"] = _coordinate
        self._template = self._env.get_template("trend.html")

    def render(self, trend: Trend, *, patient: str | None, demo: bool = False) -> str:
        """The whole page. Every result of every series is charted (or, undated, listed) and tabled:
        one that could not be interpreted is shown as such, never dropped."""
        return self._template.render(
            patient=patient,
            demo=demo,
            first_day=trend.first_day.isoformat(),
            last_day=trend.last_day.isoformat(),
            profile_label=self._profile.label,
            vitamin_d=self._vitamin_d_chart(trend),
            electrolytes=[self._electrolyte_chart(s, trend) for s in trend.electrolytes],
            courses=self._courses(trend),
            rows=[row for s in (trend.vitamin_d, *trend.electrolytes) for row in self._rows(s)],
            course_rows=[self._course_row(c) for c in trend.courses],
            undated=[self._undated(r) for r in trend.undated],
            malformed=trend.malformed,
        )

    # --- charts -----------------------------------------------------------------------------

    def _vitamin_d_chart(self, trend: Trend) -> Chart:
        """From 0 to above the very high cut-point or the highest result, whichever is higher, but
        never past twice the cut-point: one extreme value must not flatten every other (it is drawn
        at the top edge, its title and data giving its value)."""
        series = trend.vitamin_d
        cuts = [c for b in trend.bands for c in (b.low, b.high) if c is not None]
        top_cut = max(cuts, default=100.0)
        highest = max((p.value for p in series.points if p.value is not None), default=0.0)
        ticks = _value_ticks(0.0, min(max(top_cut * 1.15, highest * 1.08), top_cut * 2), 5)
        frame = Frame(960, 360, 72, 830, 16, 296, trend.first_day, trend.last_day, ticks[0], ticks[-1])
        marks, _ = self._marks(series, frame, lambda p: str(p.judgement or ""), self._labels.get)
        return Chart(
            id="vitamin-d",
            analyte=series.analyte,
            name=capitalize(self._name("vitamin_d")),
            unit=series.unit,
            title=f"{capitalize(self._name('vitamin_d'))} ({series.unit}), {trend.first_day} to {trend.last_day}, "
            f"with the {self._profile.label} bands",
            frame=frame,
            x_ticks=_year_ticks(frame),
            y_ticks=tuple(Tick(frame.y(t), format_number(t)) for t in ticks),
            shades=self._bands(trend.bands, frame),
            marks=marks,
            corrected=(),
            empty=not series.points,
        )

    def _bands(self, bands: Iterable[Band], frame: Frame) -> tuple[Shade, ...]:
        """Each band shaded and labelled in the right margin; an open band runs to the axis edge.
        Labels of thin bands are pushed apart, lowest first, so that none covers another."""
        shades: list[Shade] = []
        floor = float(frame.bottom) + _LABEL_GAP
        for band in bands:
            if band.low is None:
                span = f"<{format_number(band.high or 0.0)}"
            elif band.high is None:
                span = f">{format_number(band.low)}"
            else:
                span = f"{format_number(band.low)}-{format_number(band.high)}"
            shade = _shade(frame, band.low, band.high, band.status.value, f"{self._labels[band.status]} {span}")
            floor = min((shade.y + shade.y + shade.height) / 2 + 4, floor - _LABEL_GAP)
            shades.append(dataclasses.replace(shade, label_y=round(floor, 1)))
        return tuple(shades)

    def _electrolyte_chart(self, series: Series, trend: Trend) -> Chart:
        """A small chart around the range and every value, corrected ones included."""
        values = [v for p in series.points for v in (p.value, p.corrected) if v is not None]
        values += [b for b in (series.low, series.high) if b is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.15 or max(abs(hi) * 0.1, 0.5)
        ticks = _value_ticks(max(lo - pad, 0.0), hi + pad, 4)
        frame = Frame(420, 190, 64, 404, 14, 136, trend.first_day, trend.last_day, ticks[0], ticks[-1])
        marks, corrected = self._marks(series, frame, lambda p: p.judgement or "in-range", _in_words)
        shades: tuple[Shade, ...] = ()
        if series.low is not None or series.high is not None:
            label = f"range {self._span(series.analyte, series.low, series.high)} {series.unit}"
            shade = _shade(frame, series.low, series.high, "", label)
            shades = (dataclasses.replace(shade, label_y=round(shade.y - 3, 1)),)
        name = capitalize(self._name(series.analyte))
        return Chart(
            id=f"electrolyte-{series.analyte}",
            analyte=series.analyte,
            name=name,
            unit=series.unit,
            title=f"{name} ({series.unit}), {trend.first_day} to {trend.last_day}",
            frame=frame,
            x_ticks=_year_ticks(frame),
            y_ticks=tuple(Tick(frame.y(t), format_number(t)) for t in ticks),
            shades=shades,
            marks=marks,
            corrected=corrected,
            empty=not series.points,
        )

    def _marks(
        self,
        series: Series,
        frame: Frame,
        status: Callable[[Point], str],
        label: Callable[[str], str | None],
    ) -> tuple[tuple[Mark, ...], tuple[Mark, ...]]:
        """The series' dated points, and the corrected values beside them, titled as the cards word
        them; one that could not be interpreted goes on the row below the axis."""
        marks: list[Mark] = []
        corrected: list[Mark] = []
        for point in series.points:
            day = _day(point)
            if day is None:  # no place on a time axis: in the table only
                continue
            view = self._cards.view(point.result)
            x = frame.x(day)
            if point.value is None:
                flagged = f"; {point.judgement} by the laboratory's flag" if point.judgement else ""
                title = f"{view.date}: {self._result_text(view.shown, point.result.problem, None)}{flagged}"
                marks.append(
                    Mark(x, frame.unreadable_y, day.isoformat(), "", UNREADABLE, "", title, critical=point.critical)
                )
                continue
            judged = status(point)
            title = f"{view.shown}, {view.date}: {'critical: ' if point.critical else ''}{label(judged) or judged}"
            marks.append(
                Mark(
                    x,
                    frame.y(point.value),
                    day.isoformat(),
                    _number(point.value),
                    judged,
                    point.result.comparator or "",
                    title,
                    off_scale=not frame.lo <= point.value <= frame.hi,
                    critical=point.critical,
                )
            )
            if point.corrected is not None:
                text = self._corrected_text(series, point.corrected)
                title = f"{self._corrected_name(series)} {text}, {view.date} (measured {view.shown})"
                value = point.corrected
                off_scale = not frame.lo <= value <= frame.hi
                corrected.append(Mark(x, frame.y(value), day.isoformat(), _number(value), "", "", title, off_scale))
        return tuple(marks), tuple(corrected)

    def _courses(self, trend: Trend) -> Courses:
        """Bars on the charts' time axis: an unknown start runs from the axis start, an ongoing
        course to the axis end (with an arrow), an ended one without an end date is a stub."""
        height = 24 + _COURSE_ROW * max(len(trend.courses), 1)
        frame = Frame(960, height, 72, 830, 4, height - 22, trend.first_day, trend.last_day)
        bars = []
        for i, course in enumerate(trend.courses):
            y = frame.top + i * _COURSE_ROW + 16
            x1 = frame.x(course.start) if course.start is not None else float(frame.left)
            state: Literal["dated", "ongoing", "not-recorded"]
            if course.end is not None:
                state, x2 = "dated", frame.x(course.end)
            elif course.active:
                state, x2 = "ongoing", float(frame.right)
            else:
                state, x2 = "not-recorded", x1 + 10
            row = self._course_row(course)
            since = f"from {row.start}" if course.start is not None else "start not recorded"
            until = {"dated": f"to {row.end}", "ongoing": "ongoing", "not-recorded": "end not recorded"}[state]
            joint = " " if course.start is not None and state == "dated" else ", "
            bars.append(
                Bar(
                    name=course.name,
                    start=course.start.isoformat() if course.start is not None else "",
                    end=course.end.isoformat() if course.end is not None else "",
                    active=course.active,
                    x1=x1,
                    x2=round(max(x2, x1 + 3), 1),
                    y=float(y),
                    caption=f"{course.name} ({row.holds}): {since}{joint}{until}",
                    start_known=course.start is not None,
                    end_state=state,
                )
            )
        return Courses(frame, _year_ticks(frame), tuple(bars))

    # --- tables -----------------------------------------------------------------------------

    def _rows(self, series: Series) -> list[Row]:
        """Every point, as the cards show it: the table says all that the charts draw, and more."""
        rows = []
        vitamin_d = series.analyte == "vitamin_d"
        for point in series.points:
            view = self._cards.view(point.result)
            if point.value is None:
                judgement = f"{point.judgement} by the laboratory's flag" if point.judgement else "not judged"
            elif vitamin_d:
                judgement = self._labels.get(point.judgement or "", point.judgement or "")
            else:
                judgement = point.judgement or "in range"
            if point.critical:
                judgement = f"critical: {judgement}"
            corrected = point.corrected
            rows.append(
                Row(
                    analyte=capitalize(self._name(series.analyte)),
                    date=view.date,
                    result=self._result_text(view.shown, point.result.problem, point.value),
                    judgement=judgement,
                    corrected=self._corrected_text(series, corrected) if corrected is not None else "",
                    flag=view.flag or "",
                    unreadable=point.value is None,
                )
            )
        return rows

    def _course_row(self, course: Course) -> CourseRow:
        end = course.end.isoformat() if course.end else "ongoing" if course.active else "not recorded"
        return CourseRow(
            name=course.name,
            ordered=course.ordered,
            holds=", ".join(_HOLDS.get(h, h.replace("_", " ")) for h in course.holds),
            start=course.start.isoformat() if course.start else "not recorded",
            end=end,
        )

    # --- words ------------------------------------------------------------------------------

    def _name(self, analyte: str) -> str:
        spec = self._analytes.analytes.get(analyte)
        return spec.name if spec is not None else analyte.replace("_", " ")

    def _span(self, analyte: str, low: float | None, high: float | None) -> str:
        """A range as the cards write it (3.5-5.0, at least 3.5), at the analyte's decimals."""
        unit = self._analytes.units.get(analyte)
        places = unit.decimals if unit is not None else 1
        if low is not None and high is not None:
            return f"{range_bound(low, places)}-{range_bound(high, places)}"
        if low is not None:
            return f"at least {range_bound(low, places)}"
        return f"at most {range_bound(high or 0.0, places)}"

    def _corrected_name(self, series: Series) -> str:
        spec = self._analytes.analytes.get(series.analyte)
        return spec.corrected.name if spec is not None and spec.corrected is not None else "corrected"

    def _corrected_text(self, series: Series, value: float) -> str:
        """Rounded as the cards round a corrected calcium: never onto or across a range bound."""
        unit = self._analytes.units.get(series.analyte)
        spec = self._analytes.ranges.get(series.analyte)
        bounds = (spec.low, spec.high, spec.critical_low, spec.critical_high) if spec is not None else ()
        cuts = [c for c in bounds if c is not None]
        return f"{beside_cuts(value, unit.decimals if unit else 1, cuts)} {series.unit}"

    def _undated(self, result: LabResult) -> str:
        text = self._result_text(self._cards.view(result).shown, result.problem, result.value)
        return f"{capitalize(self._name(result.analyte))}: {text}"

    @staticmethod
    def _result_text(shown: str, problem: str | None, value: float | None) -> str:
        if value is not None:
            return shown
        return f"could not be interpreted: {problem}" if problem else "could not be interpreted"
