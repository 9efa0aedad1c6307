"""The three ordinary changes of docs/content.md, each made to the content alone, as a maintainer
would: an analyte flagged when abnormal (phosphate), a threshold profile, an override reason. Each
test copies `cards/`, edits only files there, and runs the real service on the copy
(`CDS_CONTENT_DIR`): no Python, no other file."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.app import create_app
from cds_service.content.loader import ContentError, load_content, packaged_content_dir
from cds_service.settings import Settings
from tests.builders import card_text, condition, hook_request, normal_electrolytes, obs, patient_view_cards
from tests.conftest import make_client

pytestmark = pytest.mark.anyio
AS_OF = datetime(2026, 11, 25, 12, tzinfo=UTC)

# docs/content.md, "Adding an analyte": the whole change.
PHOSPHATE = """
  phosphate:
    name: phosphate
    abbreviation: Phos
    codes:
      measured:
        "2777-1": "phosphate, serum/plasma"
    unit:
      canonical: mg/dL
      plausible: [0.3, 20]
      decimals: 1
      units:
        mg/dL: 1
        mmol/L: 0.3229       # mmol/L = mg/dL / 3.097
    range: {low: 2.5, high: 4.5}
"""

# docs/content.md, "Adding a profile": the whole change, its source written out in place.
PROFILE = """
  site-2026:
    label: Site guideline 2026
    source:
      label: "Site vitamin D guideline 2026"
      citation: "Example Hospital. Vitamin D testing and supplementation in adults. 2026."
      url: "https://example.org/guidelines/vitamin-d-2026"
    deficient_below: 15
    insufficient_below: 25
    high_above: 100
    very_high_above: 150
    insufficient_label: insufficient
"""

# docs/content.md, "Adding an override reason": the whole change.
REASON = """  - code: declines-supplements
    display: "Patient declines supplements"
    snooze_days: 180
    kinds: [vitd-deficient, vitd-insufficient]
"""


@pytest.fixture
def cards(tmp_path: Path) -> Path:
    copy = tmp_path / "cards"
    shutil.copytree(packaged_content_dir(), copy)
    return copy


def append(path: Path, text: str, *, after: str) -> None:
    """Insert `text` after the line `after` (the start of a YAML list or mapping)."""
    content = path.read_text(encoding="utf-8")
    assert after in content, after
    path.write_text(content.replace(after, after + text, 1), encoding="utf-8")


def add_phosphate(cards: Path) -> None:
    append(cards / "analytes.yaml", PHOSPHATE, after="analytes:\n")


@pytest.fixture
def service(tmp_path: Path, migrated_sqlite: Path) -> Callable[..., Any]:
    """The real service on a content folder, with its own database."""

    @asynccontextmanager
    async def run(cards: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        database = tmp_path / f"{uuid.uuid4().hex}.sqlite"
        shutil.copy(migrated_sqlite, database)
        app = create_app(
            Settings(auth="off", content_dir=cards, database_url=f"sqlite+aiosqlite:///{database}", **settings),
            clock=lambda: AS_OF,
        )
        async with make_client(app) as client:
            yield client

    return run


# --- an analyte --------------------------------------------------------------------------------


async def test_an_analyte_added_to_the_table_is_read_fetched_and_flagged(cards: Path, service: Any) -> None:
    add_phosphate(cards)
    async with service(cards) as client:
        discovery = (await client.get("/cds-services")).json()
        low = [obs("2777-1", 0.6, "mmol/L", "2026-11-20")]  # 1.86 mg/dL, below 2.5
        found = await patient_view_cards(
            client, hook_request([obs("62292-8", 40, "ng/mL")], normal_electrolytes() + low)
        )
    (view,) = [s for s in discovery["services"] if s["hook"] == "patient-view"]
    assert "http://loinc.org|2777-1" in view["prefetch"]["electrolytes"]
    assert list(found) == ["electrolytes-abnormal"]
    card = found["electrolytes-abnormal"]
    assert card["summary"] == "Phos 0.6 mmol/L low on 2026-11-20"
    text = card_text(card)
    assert "**Phosphate low:** 0.6 mmol/L (1.9 mg/dL) on 2026-11-20; default range 2.5-4.5 mg/dL." in text
    assert "Critical" not in text  # the table gives phosphate no critical values


async def test_an_added_analyte_is_not_checked_nor_shown_by_the_check_card(cards: Path, service: Any) -> None:
    """Without `check`, the check card neither suggests phosphate nor lists it; without `cramps`
    among its reasons, a low phosphate makes no cramp remark."""
    add_phosphate(cards)
    cramps = [condition("R25.2")]
    async with service(cards) as client:
        normal = await patient_view_cards(
            client,
            hook_request([obs("62292-8", 40, "ng/mL")], [obs("2777-1", 3.5, "mg/dL")], conditions=cramps),
        )
        low = await patient_view_cards(
            client,
            hook_request(
                [obs("62292-8", 40, "ng/mL")],
                [*normal_electrolytes(), obs("2777-1", 1.9, "mg/dL")],
                conditions=cramps,
            ),
        )
    check = normal["electrolytes-check"]
    assert "Consider checking potassium, magnesium and calcium" in card_text(check)
    assert "phosphate" not in card_text(check).lower() and "2777-1" not in card_text(check)
    assert [s["label"] for s in check["suggestions"]] == [
        "Order a basic metabolic panel (potassium, calcium)",
        "Order serum magnesium",
    ]
    assert list(low) == ["electrolytes-abnormal"]
    abnormal = card_text(low["electrolytes-abnormal"])
    assert "Phosphate low" in abnormal and "muscle cramps" not in abnormal
    assert not low["electrolytes-abnormal"].get("links")  # no cramp article without the cramp remark


async def test_an_analyte_checked_with_cramps_is_named_in_the_prose(cards: Path, service: Any) -> None:
    """The template's list of analytes whose disorders cause cramps is the table's."""
    add_phosphate(cards)
    append(cards / "analytes.yaml", "    check: [cramps]\n", after="    range: {low: 2.5, high: 4.5}\n")
    append(cards / "analytes.yaml", "phosphate, ", after="    covers: [")  # the panel measures it too
    async with service(cards) as client:
        found = await patient_view_cards(
            client, hook_request([obs("62292-8", 40, "ng/mL")], [], conditions=[condition("R25.2")])
        )
    text = card_text(found["electrolytes-check"])
    assert "Consider checking phosphate, potassium, magnesium and calcium" in text
    assert "phosphate, potassium, magnesium and calcium disorders can cause muscle cramps" in text


# --- a profile ---------------------------------------------------------------------------------


async def test_a_profile_is_one_entry_of_thresholds_yaml(cards: Path, service: Any) -> None:
    append(cards / "thresholds.yaml", PROFILE, after="vitamin_d_profiles:\n")
    async with service(cards, threshold_profile="site-2026") as client:
        found = await patient_view_cards(client, hook_request([obs("62292-8", 17, "ng/mL")], normal_electrolytes()))
    card = found["vitd-insufficient"]  # 17 is insufficient here, deficient by the default profile
    assert card["source"] == {
        "label": "Site vitamin D guideline 2026",
        "url": "https://example.org/guidelines/vitamin-d-2026",
        "topic": card["source"]["topic"],
    }
    urls = [link["url"] for link in card["links"]]
    assert urls.count("https://example.org/guidelines/vitamin-d-2026") == 1 and len(urls) == len(set(urls))
    assert "Site guideline 2026: deficient below 15 ng/mL" in card_text(card)


def test_a_profile_whose_source_a_card_also_links_is_refused(cards: Path) -> None:
    """The Demay guideline as a profile's source: the low cards also list it, and would show it twice."""
    append(cards / "thresholds.yaml", PROFILE.replace("site-2026", "endocrine-2024"), after="vitamin_d_profiles:\n")
    thresholds = cards / "thresholds.yaml"
    text = thresholds.read_text()
    start = text.index('    source:\n      label: "Site')
    end = text.index("    deficient_below: 15")
    thresholds.write_text(text[:start] + "    source: demay-2024\n" + text[end:])
    with pytest.raises(
        ContentError, match="would link https://doi.org/10.1210/clinem/dgae290 twice under profile endocrine-2024"
    ):
        load_content(cards)


# --- an override reason ------------------------------------------------------------------------


async def test_an_override_reason_is_one_entry_of_the_catalogue(cards: Path, service: Any) -> None:
    append(cards / "catalogue.yaml", REASON, after="override_reasons:\n")
    async with service(cards) as client:
        found = await patient_view_cards(
            client, hook_request([obs("62292-8", 12, "ng/mL")], [], conditions=[condition("R25.2")])
        )
        deficient, check = found["vitd-deficient"], found["electrolytes-check"]
        offered = [r["code"] for r in deficient["overrideReasons"]]
        assert "declines-supplements" in offered, offered
        reason = deficient["overrideReasons"][offered.index("declines-supplements")]

        def override(card: dict[str, Any]) -> dict[str, Any]:
            return {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason},
                "outcomeTimestamp": "2026-11-25T10:00:00Z",
            }

        kept = await client.post("/cds-services/vitamin-d-cramps/feedback", json={"feedback": [override(deficient)]})
        refused = await client.post("/cds-services/vitamin-d-cramps/feedback", json={"feedback": [override(check)]})
    assert offered[0] == "declines-supplements" and reason["display"] == "Patient declines supplements"
    assert "declines-supplements" not in [r["code"] for r in check["overrideReasons"]]
    assert kept.status_code == 200
    assert refused.status_code == 400 and "'declines-supplements'" in refused.json()["issue"][0]["diagnostics"]


def test_a_reason_with_the_display_of_another_is_refused(cards: Path) -> None:
    append(
        cards / "catalogue.yaml",
        REASON.replace("Patient declines supplements", "Patient declined"),
        after="override_reasons:\n",
    )
    with pytest.raises(ContentError, match="two reasons with the display 'Patient declined'"):
        load_content(cards)
