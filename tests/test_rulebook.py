"""The clinical rulebook, docs/clinical-rules.md, kept honest: every test it names exists, every card
kind has its section, every content file it points to exists, every section the code and content
cite is in it, and nothing in the repository points to a clinical document outside it."""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from cds_service.content.loader import load_content
from cds_service.content.schema import CARD_KINDS

ROOT = Path(__file__).resolve().parents[1]
RULEBOOK = ROOT / "docs" / "clinical-rules.md"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
HEADING = re.compile(r"^#{2,3} (.+)$", re.M)
# `rulebook, "X"` or `docs/clinical-rules.md, "X"`, the quoted section possibly wrapped across
# comment lines.
CITATION = re.compile(r'(?:rulebook|docs/clinical-rules\.md),\s*(?:#\s*)?"([^"]+)"', re.I)


def text() -> str:
    return RULEBOOK.read_text(encoding="utf-8")


@cache
def functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def sections() -> set[str]:
    return set(HEADING.findall(text()))


def tracked(*suffixes: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return [ROOT / p for p in listed if p.endswith(suffixes) and (ROOT / p).is_file()]


def test_every_test_the_rulebook_names_exists() -> None:
    named = TEST_REF.findall(text())
    assert len(named) > 80
    missing = [f"{path}::{name}" for path, name in named if not (ROOT / path).is_file() or name not in functions(path)]
    assert not missing, missing


def test_every_rule_names_its_test() -> None:
    """Each rule (a bullet of a rule section) ends with the tests that pin it."""
    rules = re.split(r"\n(?=- |#)", text().split("## Reading results", 1)[1])
    unpinned = [r.splitlines()[0] for r in rules if r.startswith("- ") and "Tests:" not in r]
    assert not unpinned, unpinned


def test_every_card_kind_has_a_section() -> None:
    assert set(CARD_KINDS) <= sections(), set(CARD_KINDS) - sections()


def test_every_content_file_it_points_to_exists() -> None:
    for path in set(re.findall(r"`(cards/[\w/.-]+)`", text())):
        assert (ROOT / path).exists(), path


def test_every_cited_section_exists() -> None:
    """Code comments, content and tests cite the rulebook's sections by name."""
    cited: dict[str, set[str]] = {}
    for path in tracked(".py", ".yaml", ".md", ".txt", ".json"):
        if path in (RULEBOOK, Path(__file__)):
            continue
        source = path.read_text(encoding="utf-8")
        for section in CITATION.findall(re.sub(r"\n\s*#\s*", " ", source)):
            cited.setdefault(" ".join(section.split()), set()).add(str(path.relative_to(ROOT)))
    assert len(cited) > 15
    unknown = {section: files for section, files in cited.items() if section not in sections()}
    assert not unknown, unknown


@pytest.mark.parametrize("document", ["CLINICAL.md", "REAL-EHR.md", "DESIGN.md", "CDS-HOOKS.md"])
def test_nothing_points_to_a_specification_outside_the_repository(document: str) -> None:
    pointing = [str(p.relative_to(ROOT)) for p in tracked(".py", ".yaml", ".md", ".txt", ".json", ".html", ".js")
                if p.name != "test_rulebook.py" and document in p.read_text(encoding="utf-8")]  # fmt: skip
    assert not pointing, pointing


def card_section(kind: str) -> str:
    body = text().split(f"\n### {kind}\n", 1)[1]
    return re.split(r"\n#{2,3} ", body, maxsplit=1)[0]


@pytest.mark.parametrize("kind", CARD_KINDS)
def test_each_card_section_names_its_kinds_content(kind: str) -> None:
    """A kind's section names the source, links, override reasons and snooze the catalogue gives
    it, so that the reviewer reads what the EHR will show."""
    spec = load_content().catalogue.cards[kind]
    section = card_section(kind)
    line = next(line for line in section.split("\n- ") if line.startswith("Source "))
    named = set(re.findall(r"`([\w-]+)`", line.split("override reasons", 1)[1].split("(`cards", 1)[0]))
    assert named == {r.code for r in load_content().catalogue.reasons(kind)}, (kind, named)
    links = set(re.findall(r"`([\w-]+)`", line.split("links", 1)[1].split("; override", 1)[0]))
    assert links >= set(spec.links), (kind, links)
    assert f"`{spec.source}`" in line.split(";", 1)[0], kind
    assert ("never snoozed" in line) is (not spec.snooze), kind
