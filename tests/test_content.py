"""The content under cards/ loads, and a broken file stops the service naming file and problem."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from cds_service.cli import cli
from cds_service.clinical.results import LabFlag, LabResult
from cds_service.content.loader import ContentError, load_content, packaged_content_dir
from cds_service.rendering import CardRenderer
from cds_service.settings import Settings


def test_packaged_content_loads() -> None:
    content = load_content()
    assert set(content.thresholds.vitamin_d_profiles) == {"endocrine-2011", "iom-2011"}
    assert content.code_roles["1989-3"][:2] == ("vitamin_d", "proxy")
    assert content.analytes.units["magnesium"].factors()["meq/L"] == pytest.approx(0.8228)


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(packaged_content_dir(), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


BREAKAGES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("missing file", lambda d: (d / "analytes.yaml").unlink(), "analytes.yaml", "file not found"),
    (
        "bad YAML",
        lambda d: edit(d / "analytes.yaml", "system: http://loinc.org", "system: [unclosed"),
        "analytes.yaml",
        "cannot be read",
    ),
    (
        "unordered cut-points",
        lambda d: edit(d / "thresholds.yaml", "insufficient_below: 30", "insufficient_below: 10"),
        "thresholds.yaml",
        "cut-points must increase",
    ),
    (
        "negative threshold",
        lambda d: edit(d / "thresholds.yaml", "deficient_below: 20", "deficient_below: -20"),
        "thresholds.yaml",
        "deficient_below",
    ),
    (
        "typo in a key",
        lambda d: edit(d / "thresholds.yaml", "high_above: 100\n", "hihg_above: 100\n"),
        "thresholds.yaml",
        "hihg_above",
    ),
    (
        "a medicine list citing an unknown source",
        lambda d: edit(d / "medicines.yaml", "sources: [veltri-2015]", "sources: [veltri-2051]"),
        "medicines.yaml",
        "veltri-2051",
    ),
    (
        "a medicine list for an analyte the rules do not judge",
        lambda d: edit(d / "medicines.yaml", "  - analyte: magnesium\n", "  - analyte: sodium\n"),
        "medicines.yaml",
        "analyte",
    ),
    (
        "one analyte and direction listed twice",
        lambda d: edit(
            d / "medicines.yaml",
            "    direction: high\n    sources: [ben-salem-2014]",
            "    direction: low\n    sources: [ben-salem-2014]",
        ),
        "medicines.yaml",
        "an analyte and direction twice",
    ),
    (
        "a flag of the laboratory critical without a direction",
        lambda d: edit(
            d / "analytes.yaml",
            "AA: {display: critically abnormal, direction: abnormal, critical: true}",
            "AA: {display: critically abnormal, critical: true}",
        ),
        "analytes.yaml",
        "a critical flag needs a direction",
    ),
    (
        "albumin limits in the wrong order",
        lambda d: edit(d / "thresholds.yaml", "reliable_albumin: 2.5", "reliable_albumin: 4.5"),
        "thresholds.yaml",
        "reliable_albumin must be below",
    ),
    (
        "meq/L listed by hand",
        lambda d: edit(d / "analytes.yaml", "        mmol/L: 0.4114", "        mmol/L: 0.4114\n        meq/L: 0.4114"),
        "analytes.yaml",
        "meq/L is derived",
    ),
    (
        "a code twice",
        lambda d: edit(d / "analytes.yaml", '"6298-4": "potassium, blood"', '"1751-7": "potassium, blood"'),
        "analytes.yaml",
        "1751-7 is listed twice",
    ),
    (
        "unknown source",
        lambda d: edit(d / "catalogue.yaml", "links: [iom-2011]", "links: [iom-2021]"),
        "catalogue.yaml",
        "iom-2021",
    ),
    (
        "a card kind missing",
        lambda d: edit(d / "catalogue.yaml", "  vitd-wrong-test:", "  vitd-wrong-tests:"),
        "catalogue.yaml",
        "vitd-wrong-test",
    ),
    (
        "template syntax",
        lambda d: edit(d / "templates" / "vitd-high.md", "{{ latest.shown }}", "{{ latest.shown }"),
        "vitd-high.md",
        "line",
    ),
    (
        "summary syntax",
        lambda d: edit(d / "catalogue.yaml", 'consider checking"', 'consider checking {% if"'),
        "catalogue.yaml",
        "electrolytes-check.summary",
    ),
    (
        "order card wording missing",
        lambda d: edit(
            d / "catalogue.yaml", '    create_description: "Draft an order: 25-hydroxyvitamin D (62292-8)"\n', ""
        ),
        "catalogue.yaml",
        "cards.vitd-order-1-25 lacks create_description",
    ),
    (
        "a judged analyte without an abbreviation",
        lambda d: edit(d / "analytes.yaml", "    abbreviation: iCa\n", ""),
        "analytes.yaml",
        "an analyte with a range needs an abbreviation",
    ),
    (
        "an analyte checked that no suggested test covers",
        lambda d: edit(d / "catalogue.yaml", "      - orderable: magnesium\n", "      - orderable: calcium_ionized\n"),
        "analytes.yaml",
        "magnesium may be checked, but no test electrolytes-check suggests covers it",
    ),
    (
        "an analyte deciding for one that is not judged",
        lambda d: edit(d / "analytes.yaml", "decides_for: calcium", "decides_for: albumin"),
        "analytes.yaml",
        "calcium_ionized decides for 'albumin', which is no judged analyte",
    ),
    (
        "a range outside the plausible values",
        lambda d: edit(
            d / "analytes.yaml", "{low: 3.5, high: 5.0, critical_low: 2.5, critical_high: 6.0}", "{low: 3.5, high: 15}"
        ),
        "analytes.yaml",
        "range bound 15 is outside the plausible values",
    ),
    (
        "Payne's formula correcting an analyte without corrected values",
        lambda d: edit(d / "thresholds.yaml", "corrects: calcium", "corrects: magnesium"),
        "thresholds.yaml",
        "payne corrects 'magnesium'",
    ),
    ("missing template", lambda d: (d / "templates" / "vitd-low.md").unlink(), "vitd-low.md", "file not found"),
    (
        "an override reason offered by a kind that does not exist",
        lambda d: edit(d / "catalogue.yaml", "kinds: [vitd-duplicate-therapy]", "kinds: [vitd-duplicate-therapies]"),
        "catalogue.yaml",
        "override reason both-intended names unknown card kind vitd-duplicate-therapies",
    ),
    (
        "a card kind without override reasons",
        lambda d: (
            edit(d / "catalogue.yaml", "kinds: [vitd-duplicate-therapy]", "kinds: [vitd-high]")
            or edit(
                d / "catalogue.yaml",
                "calcium-supplement-caution, vitd-duplicate-therapy]",
                "calcium-supplement-caution]",
            )
            or edit(
                d / "catalogue.yaml",
                "            calcium-supplement-caution, vitd-duplicate-therapy]",
                "            calcium-supplement-caution]",
            )
        ),
        "catalogue.yaml",
        "no override reason is offered by vitd-duplicate-therapy",
    ),
    (
        "two override reasons the clinician cannot tell apart",
        lambda d: edit(d / "catalogue.yaml", 'display: "Already addressed"\n', 'display: "Patient declined"\n'),
        "catalogue.yaml",
        "two reasons with the display 'Patient declined'",
    ),
    (
        "a profile whose source a card also links",
        lambda d: edit(d / "thresholds.yaml", "source: holick-2011", "source: demay-2024"),
        "catalogue.yaml",
        "cards.vitd-deficient would link https://doi.org/10.1210/clinem/dgae290 twice under profile endocrine-2011",
    ),
    (
        "a profile citing no source there is",
        lambda d: edit(d / "thresholds.yaml", "source: holick-2011", "source: holick-2012"),
        "thresholds.yaml",
        "profile endocrine-2011 cites unknown source 'holick-2012'",
    ),
    (
        "plausible bounds the wrong way round",
        lambda d: edit(d / "analytes.yaml", "plausible: [1.0, 12.0]", "plausible: [12.0, 1.0]"),
        "analytes.yaml",
        "plausible must be [lowest, highest]",
    ),
    (
        "a drug group that does not exist",
        lambda d: edit(d / "context.yaml", "[loop diuretic, thiazide diuretic]", "[loop diuretic, thiazides]"),
        "context.yaml",
        "electrolyte_check_groups names no drug group thiazides",
    ),
    (
        "the new card kind unworded",
        lambda d: edit(d / "catalogue.yaml", "  vitd-duplicate-therapy:", "  vitd-duplicate-therapy-x:"),
        "catalogue.yaml",
        "cards lacks vitd-duplicate-therapy",
    ),
    (
        "an orderable measuring nothing",
        lambda d: edit(d / "analytes.yaml", "    covers: [magnesium]", "    covers: []"),
        "analytes.yaml",
        "orderables.magnesium.covers",
    ),
    (
        "a flag note without the flag",
        lambda d: edit(d / "catalogue.yaml", 'flag: "laboratory flag {flag}"', 'flag: "laboratory flag {code}"'),
        "catalogue.yaml",
        "result_notes.flag",
    ),
]


@pytest.mark.parametrize(("name", "breakage", "file", "problem"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_broken_content_names_file_and_problem(
    content_copy: Path, name: str, breakage: Callable[[Path], None], file: str, problem: str
) -> None:
    breakage(content_copy)
    with pytest.raises(ContentError) as exc:
        load_content(content_copy)
    assert file in str(exc.value) and problem in str(exc.value)


def test_a_broken_content_file_stops_the_command(content_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(content_copy / "thresholds.yaml", "insufficient_below: 30", "insufficient_below: 10")
    monkeypatch.setenv("CDS_CONTENT_DIR", str(content_copy))
    monkeypatch.setenv("CDS_AUTH", "off")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "thresholds.yaml" in result.output and "cut-points must increase" in result.output


def test_check_content_names_a_template_value_its_kind_is_not_given(content_copy: Path) -> None:
    """A template naming a value the service does not give its kind stops the check (and the
    start), naming the kind, the value and the inputs class; the packaged content passes."""
    assert CliRunner().invoke(cli, ["check-content"]).exit_code == 0
    edit(content_copy / "templates" / "vitd-duplicate-therapy.md", "{{ medication | capitalize }}", "{{ drug }}")
    result = CliRunner().invoke(cli, ["check-content", "--content-dir", str(content_copy)])
    assert result.exit_code == 2
    assert "cards.vitd-duplicate-therapy: its templates name drug, which DuplicateTherapy" in result.output


def test_an_unknown_profile_stops_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_THRESHOLD_PROFILE", "who-2030")
    monkeypatch.setenv("CDS_AUTH", "off")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2 and "unknown threshold profile 'who-2030'" in result.output


def test_the_note_column_is_worded_by_the_catalogue(content_copy: Path) -> None:
    """A data table row's Note: each phrase of `result_notes` in its order, the result's problem
    between the status and its age, joined by "; "."""
    edit(content_copy / "catalogue.yaml", 'old: "more than a year old"', 'old: "over twelve months old"')
    content = load_content(content_copy)
    renderer = CardRenderer(content, Settings(auth="off").threshold_profile)
    flag = LabFlag("H", "high", "high")
    result = LabResult(
        "vitamin_d",
        "proxy",
        "1989-3",
        "25(OH)D3",
        "x",
        "unknown",
        datetime(2025, 1, 2, tzinfo=UTC),
        problem="unit mg not recognised",
        flag=flag,
    )
    assert renderer.view(result, old=True).note == (
        "laboratory flag H (high); D3-only code, reported as the total; "
        "the source did not report the result's status; unit mg not recognised; over twelve months old"
    )
    assert (
        renderer.view(msgspec.structs.replace(result, role="total", status="final", problem=None, flag=None)).note == ""
    )
