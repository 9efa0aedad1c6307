"""Nothing from a request or a FHIR server becomes markup in a card: the escaping every template
value goes through, the card renderer fed hostile values directly, and hostile strings sent in every
field of a hook call that can reach a card, each card then rendered as an EHR that allows raw HTML
in Markdown would (markdown-it, html on) and read for anything that could run."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import jinja2
import pytest
from markdown_it import MarkdownIt
from markupsafe import Markup

from cds_service import escaping
from cds_service.content.loader import Content
from cds_service.rendering import CardRenderer
from cds_service.rendering.inputs import DuplicateTherapy
from tests.builders import (
    ICD10,
    LOINC,
    RXNORM,
    UCUM,
    condition,
    hook_request,
    medication,
    normal_electrolytes,
    obs,
    order_request,
    pending_order,
)

pytestmark = pytest.mark.anyio

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "<https://a/[b](https://x/autofocus/onfocus=alert(1)//)>",
    "![x](https://evil.example/x.png)",
    "`code` **bold** | a | b |",
    "line\n# heading\n<iframe src=https://evil.example>",
    "&lt;img src=x onerror=alert(1)&gt;",
    "\x1b[31mred\x07",
]
RENDER = MarkdownIt("commonmark", {"html": True}).enable("table")
SOURCES = ("https://doi.org/", "https://www.aafp.org/", "https://medlineplus.gov/")
# The HTML a card's own Markdown makes: anything else came from input.
ALLOWED = {"p", "strong", "em", "ul", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "br"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(card: dict[str, Any]) -> None:
    """The detail, rendered as an EHR that allows raw HTML would, holds only the elements the
    templates make, and links only to the sources' https URLs; summary and labels hold no tag."""
    html = RENDER.render(card.get("detail") or "")
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in ALLOWED, html
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"] and str(attrs[0][1]).startswith(SOURCES), html
        else:
            assert attrs == [] or (tag in ("th", "td") and all(n == "style" for n, _ in attrs)), html
    for text in [card["summary"], *(s["label"] for s in card.get("suggestions", []))]:
        assert not re.search(r"<[A-Za-z/!?]", text) and "\x1b" not in text, text


# --- the escaping itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("a | b", "a \\| b"),
        ("`c` *e* _u_ ~s~ & \\", "\\`c\\` \\*e\\* \\_u\\_ \\~s\\~ \\& \\\\"),
        ("two\nlines\r\n# heading", "two lines # heading"),
        ("<5 ng/mL", "\\<5 ng/mL"),
        (4.5, "4.5"),
    ],
)
def test_markdown_escapes_what_could_open_markup(value: Any, written: str) -> None:
    assert escaping.markdown(value) == written


def test_markup_the_templates_made_passes_whole() -> None:
    assert escaping.markdown(Markup("**bold** | cell |")) == "**bold** | cell |"


@pytest.mark.parametrize(
    ("value", "written"),
    [("<5 ng/mL", "<5 ng/mL"), ("<img src=x>", "< img src=x>"), ("</b>", "< /b>"), ("a\nb", "a b")],
)
def test_plain_text_keeps_comparators_and_breaks_tags(value: str, written: str) -> None:
    assert escaping.plain(value) == written


def test_a_detail_writes_each_value_through_finalize_alone(content: Content) -> None:
    """The detail environment writes `finalize(value)`, not Jinja2's `escape(finalize(value))`
    (content/loader.py, _CardCodeGenerator): a value is escaped as Markdown once, a macro's Markup
    passes whole, and an undefined value still stops the render."""
    env = next(iter(content.details.values())).environment
    source = "{% macro b(x) %}**{{ x }}**{% endmacro %}{{ v }} {{ b(v) }} {{ w | and_list }}"
    compiled = env.compile(source, raw=True)
    assert "escape(environment.finalize(" not in compiled and "environment.finalize(" in compiled
    written = env.from_string(source).render(v="*a* <b>", w=["*a*", "<b>"])
    assert written == r"\*a\* \<b\> **\*a\* \<b\>** \*a\* and \<b\>"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


# --- the renderer, fed hostile values where the service would put its own -------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_value_in_a_template_slot_stays_text(content: Content, hostile: str) -> None:
    renderer = CardRenderer(content, "endocrine-2011")
    inputs = DuplicateTherapy(medication=hostile, active=[hostile, "calcitriol"])
    card = renderer.render("vitd-duplicate-therapy", "p1", inputs)
    assert_inert(card.model_dump(mode="json", exclude_none=True))
    # CommonMark turns the escapes back into the characters: the clinician reads the value as sent
    visible = RENDER.render(card.detail or "")
    assert "onerror" not in hostile or "onerror=alert(1)" in visible


# --- hostile strings in every field of a hook call that can reach a card ---------------------------


def _hostile_patient_view(hostile: str) -> dict[str, Any]:
    vitd = obs("62292-8", 12, "ng/mL", "2026-11-10", id=hostile[:40])
    vitd["code"]["coding"][0]["display"] = hostile
    vitd["code"]["text"] = hostile
    unreadable = obs("2823-3", 0.7, when="2026-11-20", valueQuantity={"value": 0.7, "unit": hostile})
    text_value = obs("19123-9", when="2026-11-20", valueString=hostile)
    calcium = obs("17861-6", 9.4, "mg/dL", "2026-11-20", referenceRange=[{"text": hostile}])
    calcium["valueQuantity"]["unit"] = hostile  # the UCUM code decides; the text is never shown
    bad_date = obs("1751-7", 4.0, "g/dL", hostile)
    cramps = condition("R25.2")
    cramps["code"]["coding"][0]["display"] = hostile
    cramps["code"]["text"] = hostile
    other = condition(hostile, ICD10)
    drug = medication(hostile)
    drug["medicationCodeableConcept"]["coding"].append({"system": RXNORM, "code": hostile, "display": "furosemide"})
    order = pending_order("24321-2")
    order["code"]["text"] = hostile
    components = obs(hostile, None, when="2026-11-15", id="vitd-components")  # the newest: it decides
    components["code"]["coding"].append({"system": LOINC, "code": f"62292-8{hostile}"})
    components["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": c}]},
            "valueQuantity": {"value": v, "system": UCUM, "code": "ng/mL"},
        }
        for c, v in (("49054-0", 4), ("1989-3", 8))
    ]
    return hook_request(
        [vitd, obs(hostile, 5, "ng/mL"), components],
        [unreadable, text_value, calcium, bad_date],
        conditions=[cramps, other],
        medications=[drug],
        pending_orders=[order],
        birth_date="1960-01-01",
    )


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_fhir_text_never_becomes_markup(client: httpx.AsyncClient, hostile: str) -> None:
    answer = await client.post("/cds-services/vitamin-d-cramps", json=_hostile_patient_view(hostile))
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert {c["source"]["topic"]["code"] for c in cards} == {"vitd-deficient", "electrolytes-check"}
    for card in cards:
        assert_inert(card)
    deficient = next(c for c in cards if c["source"]["topic"]["code"] == "vitd-deficient")
    assert "| 49054-0+1989-3 | 12 ng/mL |" in deficient["detail"]  # the components' codes, not the sender's


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_order_text_never_becomes_markup(client: httpx.AsyncClient, hostile: str) -> None:
    draft = medication(f"cholecalciferol {hostile}", status="draft", id="mr-1")
    active = medication(f"Vitamin D2 {hostile}")
    high_calcium = [obs("2823-3", 4.2, "mmol/L"), obs("17861-6", 11.0, "mg/dL")]
    request = order_request(
        [draft], vitamin_d=[obs("62292-8", 45, "ng/mL")], electrolytes=high_calcium, medications=[active]
    )
    answer = await client.post("/cds-services/vitamin-d-order-sign", json=request)
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert {c["source"]["topic"]["code"] for c in cards} == {"vitd-supplement-caution", "vitd-duplicate-therapy"}
    for card in cards:
        assert_inert(card)


async def test_a_result_with_hostile_text_is_still_read(client: httpx.AsyncClient) -> None:
    """Hostile text beside a result does not make the service skip the result."""
    request = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())
    request["prefetch"]["vitaminD"]["entry"][0]["resource"]["code"]["text"] = HOSTILE[0]
    cards = (await client.post("/cds-services/vitamin-d-cramps", json=request)).json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["vitd-deficient"]
