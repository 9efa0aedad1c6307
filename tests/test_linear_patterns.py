"""Every regular expression of the service runs in linear time on any text, so that no request can
hold the event loop (from an attack run: an Observation's valueString of 24,000 spaces and a letter
took 6.3 s, the time growing with the square of the length).

The patterns are found, not listed: every `re.Pattern` among the globals (and class attributes) of
every `cds_service` module, so that a new one is timed with no change here; and a source check
makes sure no pattern hides from that walk (`re.search("...")` inline, or compiled in a function).
Each pattern is timed, with the methods its modules call on it, on long runs (50,000) of every
class of characters it repeats, each run alone, after each literal the pattern holds, and as a
repeated literal-and-character unit, followed by a character that makes it fail.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any

import httpx
import pytest

import cds_service
from tests.builders import condition, hook_request, normal_electrolytes, obs

RUN = 50_000
BOUND = 0.25  # seconds; a linear pattern takes a few milliseconds on 50,000 characters
# Characters of every class a pattern may repeat: blanks ASCII and not, digits ASCII and not,
# letters, every ASCII punctuation, controls, and a few non-ASCII letters and marks.
ALPHABET = (
    " \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000"
    + "0159\u0665\uff11"
    + "aeyzAJTZ_\u00b5\u00e9\u03bc\u4e00"
    + string.punctuation
    + "\x00\x1f\x7f\x9f"
)
SCANNING = {"search", "sub", "subn", "split", "findall", "finditer"}
METHODS = {"match", "fullmatch", *SCANNING}
ROOT = Path(cds_service.__file__).parent

# Patterns known to be quadratic under the method their module uses, each with why: none. A strict
# xfail marks one listed here, so that when it is fixed the entry must go.
KNOWN_QUADRATIC: dict[str, str] = {}


# --- finding the patterns ------------------------------------------------------------------------


def _modules() -> list[Any]:
    names = [info.name for info in pkgutil.walk_packages(cds_service.__path__, "cds_service.")]
    return [importlib.import_module(name) for name in names if not name.endswith("__main__")]


def _patterns() -> dict[str, re.Pattern[str]]:
    """Every compiled pattern of the service, by where it lives ("cds_service.fhir.labs._DATE")."""
    found: dict[str, re.Pattern[str]] = {}

    def take(where: str, value: Any) -> None:
        if isinstance(value, re.Pattern):
            found.setdefault(where, value)
        elif isinstance(value, tuple | list | set | frozenset):
            for i, item in enumerate(value):
                take(f"{where}[{i}]", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                take(f"{where}[{key!r}]", item)

    for module in _modules():
        for name, value in vars(module).items():
            take(f"{module.__name__}.{name}", value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attribute, held in vars(value).items():
                    take(f"{module.__name__}.{name}.{attribute}", held)
    return found


PATTERNS = _patterns()


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _methods_used() -> dict[str, set[str]]:
    """For each name a pattern is held by, the `re.Pattern` methods called on it anywhere."""
    used: dict[str, set[str]] = {}
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in METHODS:
                held = node.func.value
                name = held.id if isinstance(held, ast.Name) else held.attr if isinstance(held, ast.Attribute) else None
                if name is not None:
                    used.setdefault(name, set()).add(node.func.attr)
    return used


USED = _methods_used()


def test_patterns_are_found() -> None:
    """The walk finds the service's patterns (a broken walk would time nothing)."""
    assert "cds_service.fhir.labs._DATE" in PATTERNS and "cds_service.fhir.labs._NUMBER" in PATTERNS
    assert len(PATTERNS) >= 15


def test_every_pattern_is_one_the_walk_finds() -> None:
    """No `re.search("...")` and the like with a pattern in line, no `from re import ...`, and every
    `re.compile` a module's or a class's own name: each pattern is then timed below."""
    hidden = []
    for path, tree in _sources():
        held = {
            id(statement.value)
            for body in [tree.body, *(n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
            for statement in body
            if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None
        }
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and node.module == "re":
                hidden.append(f"{where}: from re import")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "re"):
                continue
            if node.func.attr in METHODS:
                hidden.append(f"{where}: re.{node.func.attr}(...) in line")
            elif node.func.attr == "compile" and id(node) not in held:
                hidden.append(f"{where}: re.compile(...) not held by a module or class name")
    assert hidden == []


# --- adversarial texts ---------------------------------------------------------------------------


def _walk(items: Any, repeated: bool, singles: list[tuple[Any, bool]], literals: list[str]) -> None:
    """Single-character items of a parsed pattern (with whether a repeat holds them) and its runs of
    literal characters."""
    run: list[str] = []
    for op, av in items:
        if op is _parser.LITERAL:
            run.append(chr(av))
        else:
            if run:
                literals.append("".join(run))
                run = []
        if op in (_parser.LITERAL, _parser.NOT_LITERAL, _parser.ANY, _parser.IN):
            singles.append(((op, av), repeated))
        elif op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT, getattr(_parser, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            _walk(sub, repeated or high > 1, singles, literals)
        elif op is _parser.SUBPATTERN:
            _walk(av[-1], repeated, singles, literals)
        elif op in (_parser.ASSERT, _parser.ASSERT_NOT):
            _walk(av[1], repeated, singles, literals)
        elif op is _parser.BRANCH:
            for branch in av[1]:
                _walk(branch, repeated, singles, literals)
        elif op is getattr(_parser, "ATOMIC_GROUP", None):
            _walk(av, repeated, singles, literals)
        elif op is _parser.GROUPREF_EXISTS:
            for branch in av[1:]:
                if branch is not None:
                    _walk(branch, repeated, singles, literals)
    if run:
        literals.append("".join(run))


def _texts(pattern: re.Pattern[str], run: int = RUN) -> Iterator[str]:
    """Long runs of each class of characters the pattern repeats (one character per class: those
    every single-character item of the pattern takes or refuses alike), alone, after each literal
    of the pattern and as a repeated literal-and-character unit, each followed by a character of
    every other class, and each literal repeated."""
    parsed = _parser.parse(pattern.pattern, pattern.flags)
    singles: list[tuple[Any, bool]] = []
    literals: list[str] = []
    _walk(parsed, False, singles, literals)

    def item_pattern(item: Any) -> re.Pattern[str]:
        return _compiler.compile(_parser.SubPattern(parsed.state, [item]), pattern.flags)  # type: ignore[no-any-return]

    compiled = [(item_pattern(item), repeated) for item, repeated in singles]
    classes: dict[tuple[bool, ...], str] = {}
    for char in ALPHABET + "".join(literals):
        classes.setdefault(tuple(bool(p.fullmatch(char)) for p, _ in compiled), char)
    runs = [c for c in classes.values() if any(r and p.fullmatch(c) for p, r in compiled)] or [" "]
    ends = list(classes.values())
    prefixes = ["", *dict.fromkeys(literals)]
    for prefix in prefixes:
        if prefix:
            yield prefix * (run // len(prefix)) + "\x00"
        for char in runs:
            for end in ends:
                if end != char:
                    yield prefix + char * run + end
            if prefix:
                yield (prefix + char) * (run // (len(prefix) + 1)) + "\x00"


def _calls(where: str, pattern: re.Pattern[str]) -> dict[str, Callable[[str], object]]:
    """The ways the service applies the pattern: fullmatch, match, and (for search, sub, findall
    and the like) a scan from every position, as finditer makes. A pattern whose uses cannot be
    found in the source is timed every way."""
    used = USED.get(where.rsplit(".", 1)[-1]) or METHODS
    calls: dict[str, Callable[[str], object]] = {}
    if "fullmatch" in used:
        calls["fullmatch"] = pattern.fullmatch
    if "match" in used:
        calls["match"] = pattern.match
    if used & SCANNING:
        calls["scan"] = lambda text: sum(1 for _ in pattern.finditer(text))
    return calls


def _timed(call: Callable[[str], object], text: str) -> float:
    """Seconds, the least of two runs when the first is past the bound (the machine is shared)."""
    start = time.perf_counter()
    call(text)
    elapsed = time.perf_counter() - start
    if elapsed > BOUND:
        start = time.perf_counter()
        call(text)
        elapsed = min(elapsed, time.perf_counter() - start)
    return elapsed


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(where, marks=pytest.mark.xfail(strict=True, reason=KNOWN_QUADRATIC[where]))
        if where in KNOWN_QUADRATIC
        else where
        for where in sorted(PATTERNS)
    ],
)
def test_every_pattern_is_linear(where: str) -> None:
    pattern = PATTERNS[where]
    slow = []
    for name, call in _calls(where, pattern).items():
        for text in _texts(pattern):
            elapsed = _timed(call, text)
            if elapsed > BOUND:
                slow.append(f"{name} {text[:12]!r}...{text[-3:]!r} ({len(text)} chars): {elapsed:.2f} s")
                break  # one slow text per method says enough
    assert slow == [], f"{where} = {pattern.pattern!r}"


@pytest.mark.parametrize(
    ("old", "method"),
    [
        # As the attack run met it: the text read unstripped, a lazy unit beside trailing blanks.
        (r"\s*(?P<cmp><=|>=|<|>)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s].*?)?\s*", "fullmatch"),
        # Its first repair: linear with fullmatch on stripped text, quadratic scanned.
        (r"(?P<cmp><=|>=|<|>)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s].*)?", "scan"),
    ],
    ids=["attack-run", "first-repair"],
)
def test_the_old_value_patterns_would_have_failed(old: str, method: str) -> None:
    """The check finds the valueString patterns of before, already on runs of 8,000 (on 50,000 each
    text would take a minute)."""
    pattern = re.compile(old, re.DOTALL)
    call = _calls("unknown", pattern)[method]

    def timed(text: str) -> float:
        start = time.perf_counter()
        call(text)
        return time.perf_counter() - start

    assert any(timed(text) > BOUND for text in _texts(pattern, run=8_000))


# --- the attack itself, on the running service ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [
        " " * 24_000 + "a",
        "<" + " " * 24_000 + "a",
        "5" + " " * 24_000 + "5",
        "<" + " " * 24_000 + "5" + " " * 24_000 + "5",
        "5." + "5" * 24_000 + " " * 24_000 + "5",
        "\u00a0" * 24_000 + "a",
    ],
    ids=["spaces-letter", "comparator-spaces-letter", "number-spaces-number", "two-runs", "digits", "nbsp"],
)
async def test_a_value_string_of_long_runs_is_an_unreadable_result_at_once(
    client: httpx.AsyncClient, value: str
) -> None:
    """The attack run's valueString on a recent potassium: a 200 at once, and the potassium named
    as unreadable, never "not checked" (rulebook, "Unreadable results")."""
    electrolytes = [obs("2823-3", when="2026-11-20", valueString=value), *normal_electrolytes()[1:]]
    request = hook_request([obs("62292-8", 40, "ng/mL")], electrolytes, conditions=[condition("R25.2")])
    start = time.perf_counter()
    response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert time.perf_counter() - start < 1.0
    assert response.status_code == 200, response.text
    (check,) = [c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "electrolytes-check"]
    assert "latest potassium unreadable" in check["summary"] and "not checked" not in check["summary"]
    assert "could not be interpreted: text, not a value" in check["detail"]
