"""The SMART app's trend page (cds_service/smart/page.py): every result charted and tabled as the
cards word it, the profile's bands, the courses, and a page the CSP allows (no script, no inline
style) in which nothing from FHIR becomes markup."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from cds_service.clinical.results import LabResult
from cds_service.clinical.trend import Course, Trend, build_trend
from cds_service.content.loader import Content
from cds_service.rendering.renderer import CardRenderer
from cds_service.smart.page import TrendPage

AS_OF = datetime(2026, 6, 1, 12, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# --- a small HTML tree ----------------------------------------------------------------------


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: str = ""  # every text inside, descendants' included

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[Element]:
        return [self, *(e for child in self.children for e in child.walk())]

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.walk()[1:]
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        (found,) = self.all(tag, cls, **attrs)
        return found


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return
        raise AssertionError(f"</{tag}> closes nothing open")

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def parse(html: str) -> Element:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree.root


def title_of(element: Element) -> str:
    return element.one("title").text


def table_rows(page: Element, caption: str) -> list[list[str]]:
    (table,) = [t for t in page.all("table") if t.one("caption").text.startswith(caption)]
    return [[" ".join(td.text.split()) for td in tr.all("td")] for tr in table.one("tbody").all("tr")]


# --- the record -----------------------------------------------------------------------------


def lab(
    analyte: str, role: str, code: str, when: datetime | None, value: float | None, unit: str, **kw: Any
) -> LabResult:
    text = None if value is None else f"{value:g}"
    kw.setdefault("reported_text", text)
    return LabResult(analyte, role, code, analyte, None, "final", when, value=value, unit=unit, **kw)


def vitamin_d(when: datetime | None, value: float | None, **kw: Any) -> LabResult:
    return lab("vitamin_d", "total", "62292-8", when, value, "ng/mL", **kw)


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 9, 30, tzinfo=UTC)


LABS = [
    vitamin_d(at(2024, 1, 10), 12.0),
    vitamin_d(at(2025, 2, 1), 25.0),
    # 45 nmol/L, as the laboratory reported it: the cards show "45 nmol/L (18 ng/mL)"
    vitamin_d(at(2025, 9, 1), 45 / 2.496, reported_value=45.0, reported_unit="nmol/L", reported_text="45"),
    vitamin_d(at(2026, 3, 1), None, problem=f"unit {HOSTILE} is not a unit of 25-hydroxyvitamin D"),
    vitamin_d(at(2026, 5, 1), 120.0),
    vitamin_d(None, 33.0),  # undated
    lab("potassium", "measured", "2823-3", at(2025, 1, 1), 3.2, "mmol/L"),
    lab("potassium", "measured", "2823-3", at(2026, 1, 5), 4.1, "mmol/L"),
    lab("potassium", "measured", "2823-3", at(2026, 4, 5), None, "mmol/L", problem="unit meq/dL not accepted"),
    lab("calcium", "total", "17861-6", at(2026, 2, 1), 8.2, "mg/dL"),
    # Same day: the calcium is corrected to 8.2 + 0.8 x (4.0 - 3.0) = 9.0 mg/dL
    lab("albumin", "measured", "1751-7", at(2026, 2, 1), 3.0, "g/dL"),
]
COURSES = [
    Course("Colecalciferol 1000 unit tablet", ("vitamin_d",), date(2024, 2, 1), date(2024, 8, 1), False, "D3 1000 IU"),
    Course(HOSTILE, ("calcium", "vitamin_d"), date(2025, 1, 1), None, True),
    Course("Calcium carbonate 500 mg", ("calcium",), None, None, False),
]


@pytest.fixture(scope="module")
def cards(content: Content) -> TrendPage:
    return TrendPage(content, content.profile("endocrine-2011"), CardRenderer(content, "endocrine-2011"))


def make_trend(content: Content, profile_name: str = "endocrine-2011", labs: list[LabResult] = LABS) -> Trend:
    thresholds = content.thresholds
    return build_trend(
        labs,
        COURSES,
        as_of=AS_OF,
        years=3,
        profile=content.profile(profile_name),
        analytes=content.analytes,
        payne=thresholds.payne,
        future_allowance=timedelta(hours=thresholds.windows.future_allowance_hours),
    )


@pytest.fixture(scope="module")
def html(content: Content, cards: TrendPage) -> str:
    return cards.render(make_trend(content), patient=f"Ann {HOSTILE} Smith")


@pytest.fixture(scope="module")
def page(html: str) -> Element:
    return parse(html)


def chart(page: Element, analyte: str) -> Element:
    return page.one("svg", data_analyte=analyte)


def points(svg: Element) -> list[tuple[str, str, str]]:
    return [(p.attrs["data-date"], p.attrs["data-value"], p.attrs["data-status"]) for p in svg.all(cls="point")]


# --- the tests ------------------------------------------------------------------------------


def test_one_point_per_vitamin_d_result_at_its_date_value_and_status(page: Element) -> None:
    svg = chart(page, "vitamin_d")
    assert points(svg) == [
        ("2024-01-10", "12", "deficient"),
        ("2025-02-01", "25", "insufficient"),
        ("2025-09-01", "18.0288", "deficient"),
        ("2026-03-01", "", "unreadable"),
        ("2026-05-01", "120", "high"),
    ]
    converted = svg.one(cls="point", data_date="2025-09-01")
    assert converted.tag == "circle"
    assert title_of(converted) == "45 nmol/L (18 ng/mL), 2025-09-01: deficient"
    # Later is further right, higher further up (SVG y grows downwards).
    circles = svg.all("circle", cls="point")
    xs = [float(c.attrs["cx"]) for c in circles]
    assert xs == sorted(xs)
    ys = {c.attrs["data-value"]: float(c.attrs["cy"]) for c in circles}
    assert ys["120"] < ys["25"] < ys["12"]


def test_unreadable_result_is_marked_never_dropped_and_its_problem_tabled(page: Element) -> None:
    mark = chart(page, "vitamin_d").one(cls="unreadable", data_date="2026-03-01")
    assert mark.attrs["data-status"] == "unreadable" and mark.attrs["data-value"] == ""
    assert "point" in mark.classes
    problem = f"unit {HOSTILE} is not a unit of 25-hydroxyvitamin D"
    assert title_of(mark) == f"2026-03-01: could not be interpreted: {problem}"
    row = next(r for r in table_rows(page, "Every result") if r[1] == "2026-03-01")
    assert row == ["25-hydroxyvitamin D", "2026-03-01", f"could not be interpreted: {problem}", "not judged", "", ""]


def test_every_result_in_the_table_as_the_cards_show_it(page: Element) -> None:
    rows = table_rows(page, "Every result")
    assert [r[:4] for r in rows] == [
        ["25-hydroxyvitamin D", "2024-01-10", "12 ng/mL", "deficient"],
        ["25-hydroxyvitamin D", "2025-02-01", "25 ng/mL", "insufficient"],
        ["25-hydroxyvitamin D", "2025-09-01", "45 nmol/L (18 ng/mL)", "deficient"],
        ["25-hydroxyvitamin D", "2026-03-01", rows[3][2], "not judged"],
        ["25-hydroxyvitamin D", "2026-05-01", "120 ng/mL", "high"],
        ["Potassium", "2025-01-01", "3.2 mmol/L", "low"],
        ["Potassium", "2026-01-05", "4.1 mmol/L", "in range"],
        ["Potassium", "2026-04-05", "could not be interpreted: unit meq/dL not accepted", "not judged"],
        ["Calcium", "2026-02-01", "8.2 mg/dL", "low"],
    ]
    assert rows[-1][4] == "9.0 mg/dL"
    headers = page.one("table", cls="results").all("th")
    assert [h.attrs.get("scope") for h in headers] == ["col"] * 6


@pytest.mark.parametrize(
    ("profile_name", "cuts", "insufficient"),
    [("endocrine-2011", (20, 30, 100, 150), "insufficient"), ("iom-2011", (12, 20, 100, 150), "inadequate")],
)
def test_the_five_bands_carry_the_profile_cut_points(
    content: Content, profile_name: str, cuts: tuple[int, ...], insufficient: str
) -> None:
    profile = content.profile(profile_name)
    trend_page = TrendPage(content, profile, CardRenderer(content, profile_name))
    page = parse(trend_page.render(make_trend(content, profile_name), patient=None))
    svg = chart(page, "vitamin_d")
    bands = {b.attrs["data-band"]: (b.attrs["data-low"], b.attrs["data-high"]) for b in svg.all("rect", cls="band")}
    a, b, c, d = (str(cut) for cut in cuts)
    assert bands == {
        "deficient": ("", a),
        "insufficient": (a, b),
        "sufficient": (b, c),
        "high": (c, d),
        "very high": (d, ""),
    }
    labels = [t.text for t in svg.all("text", cls="band-label")]
    assert labels == [
        f"deficient <{a}",
        f"{insufficient} {a}-{b}",
        f"sufficient {b}-{c}",
        f"high {c}-{d}",
        f"very high >{d}",
    ]
    # Open bands run to the axis edges: the very high band to the top, the deficient to the value 0.
    rects = {r.attrs["data-band"]: r for r in svg.all("rect", cls="band")}
    assert float(rects["very high"].attrs["y"]) == 16
    assert float(rects["deficient"].attrs["y"]) + float(rects["deficient"].attrs["height"]) == 296


def test_a_value_far_above_the_bands_keeps_the_axis_sensible(content: Content, cards: TrendPage) -> None:
    page = parse(cards.render(make_trend(content, labs=[vitamin_d(at(2026, 1, 1), 900.0)]), patient=None))
    svg = chart(page, "vitamin_d")
    top = max(float(t.text) for t in svg.all("text", cls="tick-label") if t.text.isdigit() and len(t.text) < 4)
    assert top == 300  # twice the very high cut-point, not 900
    point = svg.one("circle", cls="point")
    assert point.attrs["data-value"] == "900" and "off-scale" in point.classes
    assert float(point.attrs["cy"]) == 16  # at the top edge


def test_courses_are_bars_with_their_start_and_end(page: Element) -> None:
    bars = {g.attrs["data-name"]: g for g in page.all("g", cls="course")}
    assert set(bars) == {"Colecalciferol 1000 unit tablet", HOSTILE, "Calcium carbonate 500 mg"}
    dated = bars["Colecalciferol 1000 unit tablet"]
    assert (dated.attrs["data-start"], dated.attrs["data-end"], dated.attrs["data-active"]) == (
        "2024-02-01",
        "2024-08-01",
        "false",
    )
    rect = dated.one("rect", cls="course-bar")
    assert 0 < float(rect.attrs["x"]) < float(rect.attrs["x"]) + float(rect.attrs["width"]) < 830
    ongoing = bars[HOSTILE]
    assert (ongoing.attrs["data-end"], ongoing.attrs["data-active"]) == ("", "true")
    assert "end-ongoing" in ongoing.classes and ongoing.all("polygon", cls="course-arrow")
    bar = ongoing.one("rect", cls="course-bar")
    assert float(bar.attrs["x"]) + float(bar.attrs["width"]) == 830  # to the axis end
    unknown = bars["Calcium carbonate 500 mg"]
    assert {"start-unknown", "end-not-recorded"} <= unknown.classes
    assert "start not recorded" in title_of(unknown) and "end not recorded" in title_of(unknown)
    assert table_rows(page, "Vitamin D and calcium products") == [
        ["Calcium carbonate 500 mg", "", "calcium", "not recorded", "not recorded"],
        ["Colecalciferol 1000 unit tablet", "D3 1000 IU", "vitamin D", "2024-02-01", "2024-08-01"],
        [HOSTILE, "", "calcium, vitamin D", "2025-01-01", "ongoing"],
    ]


def test_electrolyte_small_multiples(page: Element) -> None:
    potassium = chart(page, "potassium")
    assert points(potassium) == [
        ("2025-01-01", "3.2", "low"),
        ("2026-01-05", "4.1", "in-range"),
        ("2026-04-05", "", "unreadable"),
    ]
    shaded = potassium.one("rect", cls="range")
    assert (shaded.attrs["data-low"], shaded.attrs["data-high"]) == ("3.5", "5")
    calcium = chart(page, "calcium")
    assert points(calcium) == [("2026-02-01", "8.2", "low")]
    corrected = calcium.one(cls="corrected")
    assert (corrected.attrs["data-date"], corrected.attrs["data-value"]) == ("2026-02-01", "9")
    assert title_of(corrected) == "corrected calcium 9.0 mg/dL, 2026-02-01 (measured 8.2 mg/dL)"


def test_an_empty_series_says_so_instead_of_an_empty_chart(page: Element) -> None:
    magnesium = page.one("figure", data_analyte="magnesium")
    assert magnesium.one("p", cls="empty").text == "No results in the period"
    assert not magnesium.all("svg")
    assert "No results in the period" not in page.one("figure", data_analyte="potassium").text


def test_undated_results_are_listed_not_charted(page: Element) -> None:
    assert page.one("h3", id="undated-heading").text == "Results without a date (not charted)"
    assert [li.text for li in page.one("ul", cls="undated").all("li")] == ["25-hydroxyvitamin D: 33 ng/mL"]
    assert "33" not in {p.attrs["data-value"] for p in page.all(cls="point")}


def test_text_from_fhir_is_escaped(html: str, page: Element) -> None:
    assert "<script" not in html.lower()
    assert not page.all("script")
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # patient (twice), problem (twice), medicine
    assert page.one("dd", cls="patient").text == f"Ann {HOSTILE} Smith"


def test_no_inline_style_and_the_service_s_own_stylesheet(html: str, page: Element) -> None:
    assert not page.all("style")
    assert [e.tag for e in page.walk() if "style" in e.attrs] == []
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
    assert not [e for e in page.walk() if any(k.startswith("on") for k in e.attrs)]  # no event handlers
    (link,) = page.all("link")
    # one path from /smart/app and /smart/demo/<patient> alike, on the service's own origin
    assert (link.attrs["rel"], link.attrs["href"]) == ("stylesheet", "/smart/static/trend.css")


def test_svgs_are_well_formed_with_a_viewbox_and_a_label(html: str, page: Element) -> None:
    charts = re.findall(r"<svg class=\"chart.*?</svg>", html, re.DOTALL)
    assert len(charts) == 4  # vitamin D, courses, potassium, calcium (magnesium has none)
    for text in charts:
        svg = ET.fromstring(text)
        assert svg.get("viewBox", "").startswith("0 0 ") and svg.get("width") == "100%"
        assert svg.get("role") == "img"
        (label,) = [t for t in svg.iter("title") if t.get("id") == svg.get("aria-labelledby")]
        assert label.text


def test_header_and_demo_note(content: Content, cards: TrendPage, page: Element) -> None:
    assert page.one("h1").text == "Vitamin D and electrolyte trend"
    assert page.one("dd", cls="period").text == "2023-06-01 to 2026-06-01"
    assert page.one("dd", cls="profile").text == "Endocrine Society 2011"
    assert not page.all(cls="demo-note")
    demo = parse(cards.render(make_trend(content), patient=None, demo=True))
    assert demo.one("p", cls="demo-note").text == "Demo: demo patient data, no EHR"
    assert not demo.all("dd", cls="patient")


def test_results_that_could_not_be_read_at_all_are_counted_on_the_page(content: Content, cards: TrendPage) -> None:
    """From an independent review: a 25(OH)D of 8 ng/mL dated `2026-06-31` vanished without a trace."""
    from cds_service.settings import Settings
    from cds_service.smart.reading import TrendReader
    from tests.builders import PATIENT, obs

    reader = TrendReader(content, content.profile("endocrine-2011"), Settings(auth="off"))
    labs = [obs("62292-8", 8, "ng/mL", "2026-06-31"), obs("62292-8", 9, "ng/mL", "0001-01-01T00:00:00+14:00")]
    trend = reader.trend(labs, [], PATIENT, datetime(2026, 12, 7, 12, tzinfo=UTC))
    assert trend.malformed == 2 and trend.vitamin_d.points == ()
    html = cards.render(trend, patient=None)
    assert "2 results could not be read at all" in " ".join(html.split())
    assert "could not be read at all" not in cards.render(make_trend(content), patient=None)
