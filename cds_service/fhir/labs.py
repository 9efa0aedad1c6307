"""Observation JSON -> LabResult, as docs/clinical-rules.md, "Reading results", says.

Resources are selected by LOINC code on the raw JSON first; only the selected ones are validated,
and against a small model of the fields read here (fhir/models.py says why).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache, partial
from typing import Any, Literal, NamedTuple

import msgspec

from ..clinical.results import LabFlag, LabResult, precedence
from ..content.loader import Content
from .models import CodeableConcept, Lite, Meta, Period, Quantity, Read, Resource, Tally, read_as
from .references import names_patient
from .units import UnitTable


class ReferenceRange(Lite):
    low: Quantity | None = None
    high: Quantity | None = None
    type: CodeableConcept | None = None


class Component(Lite):
    code: CodeableConcept
    valueQuantity: Quantity | None = None
    valueString: str | None = None
    dataAbsentReason: CodeableConcept | None = None


class Observation(Resource, kw_only=True):
    resourceType: Literal["Observation"]
    status: str
    code: CodeableConcept
    effectiveDateTime: str | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: str | None = None
    issued: str | None = None
    valueQuantity: Quantity | None = None
    valueString: str | None = None
    dataAbsentReason: CodeableConcept | None = None
    referenceRange: list[ReferenceRange] = []
    component: list[Component] = []
    interpretation: list[CodeableConcept] = []
    meta: Meta | None = None


class _Value(NamedTuple):
    """What the reader made of a value: the LabResult fields it fills."""

    value: float | None = None
    comparator: Any = None
    unit: str | None = None
    reported_value: float | None = None
    reported_unit: str | None = None
    reported_text: str | None = None
    unit_unreported: bool = False
    candidates: tuple[float, ...] = ()
    problem: str | None = None
    range_low: float | None = None
    range_high: float | None = None


class _Reading(NamedTuple):
    """A value as read: the number as reported (and as the laboratory wrote it), its comparator,
    and its recognised UCUM unit (None: no unit was reported)."""

    value: float
    comparator: Any
    unit: str | None
    text: str


# A FHIR date, dateTime or instant: at most 35 characters ("2026-11-25T08:30:00.123456789+14:00").
# Longer text is no date: it is refused before any pattern or cache sees it, so that the cache below
# holds at most 4,096 short strings whatever a request sends (from an attack run: 60 dates of 1 MB
# kept 65 MB for the life of the process).
_DATE_CHARS = 35
# Every quantifier is bounded, so matching is linear in any text. Fractions of a second to nine
# digits (the nanoseconds of FHIR R5's grammar), read to the microsecond (a datetime's precision:
# the digits past the sixth are dropped, and no window counts finer than a day); more is not a
# FHIR date.
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?",
    re.ASCII,  # FHIR's grammar: ASCII digits only
)
# A value written in text ("<5 ng/mL", "4.0 mmol/L"): a comparator, ASCII blanks, a number, ASCII
# blanks, a unit beginning with neither a digit nor a blank. Read a part at a time (_value_text), the
# blanks by str.lstrip: the only pattern, the number's, stops at the first character not its own,
# so that reading is linear in the text from whichever character a match starts (from an attack run:
# a pattern holding the whole took 6.3 s on 24,000 spaces and a letter, at the square of the length).
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_BLANKS = " \t\n\r\f\v"  # between the parts: ASCII whitespace only, the \s of the re.ASCII pattern before
_COMPARATORS = ("<=", ">=", "<", ">")
# Integers past this are no laboratory's value, and would overflow a float.
_LARGEST = 1e15
# No laboratory writes a number longer: a longer one is shown to six significant digits.
_WRITTEN_DIGITS = 24
# A float holds 17 significant digits; the rest of a longer number would be lost before judging it.
_FLOAT_DIGITS = 17
_NOT_SIGNIFICANT = re.compile(r"^[^1-9]*|[^0-9]")  # leading zeros, signs and points
_FIRST_DAY, _LAST_DAY = date.min, date.max
# What an Observation is without its value: kept when only the value was malformed.
_IDENTITY = frozenset(
    {"resourceType", "id", "status", "code", "subject", "effectiveDateTime", "effectivePeriod", "effectiveInstant"}
)
_NORMAL_RANGE = "normal"
# A unit is named in a card only when it looks like one: FHIR text never becomes card markup.
_SHOWN_UNIT = re.compile(r"[A-Za-z0-9/%.*^µ-]{1,16}")


def unit_problem(unit: object) -> str:
    """Why a value with an unrecognised unit is not interpreted, naming the unit when it is safe."""
    if isinstance(unit, str) and _SHOWN_UNIT.fullmatch(unit.strip()):
        return f"unit {unit.strip()} not recognised"
    return "unit not recognised"


class DateOutOfRange(ValueError):
    """A date UTC cannot hold, or whose UTC day has no day before or after it
    (0001-01-01T00:00:00+14:00, 9999-12-31T23:59:59-14:00): wherever it stands in a resource, the
    resource is malformed, skipped and counted (rulebook, "Dates and windows")."""


def parse_fhir_datetime(text: str) -> datetime:
    """A FHIR date, dateTime or instant as an aware datetime; partial dates take their first day,
    and a date without a time is midnight UTC. ValueError for text that is not one, DateOutOfRange
    (a ValueError) for one that UTC cannot hold. Text longer than any FHIR date is refused unread."""
    if len(text) > _DATE_CHARS:
        raise ValueError("not a FHIR date")
    return _parse_date(text)


@lru_cache(maxsize=4096)
def _parse_date(text: str) -> datetime:
    """parse_fhir_datetime, cached: a panel's results share their date, and a record's dates recur
    from call to call. Only ever called with text of at most _DATE_CHARS characters."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError("not a FHIR date")
    year, month, day = int(match["y"]), int(match["m"] or 1), int(match["d"] or 1)
    if match["time"] is None:
        when = datetime(year, month, day, tzinfo=UTC)
    else:
        tz = "+00:00" if match["tz"] == "Z" else match["tz"]
        when = datetime.fromisoformat(f"{match['y']}-{match['m']}-{match['d']}T{match['time']}{tz}")
    # Every window counts days in UTC: an instant that UTC cannot hold, or whose day has no day
    # before or after it, is no date a result can have (0001-01-01T00:00:00+14:00).
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        raise DateOutOfRange("not a date UTC can hold") from None
    if not _FIRST_DAY < utc.date() < _LAST_DAY:
        raise DateOutOfRange("not a date UTC can hold")
    return when


class LabReader:
    """Reads the Observations the rules care about; built once from the content."""

    def __init__(self, content: Content) -> None:
        analytes = content.analytes
        self._system = analytes.system
        self._roles = content.code_roles
        self._statuses = frozenset(analytes.usable_statuses)
        self._units = UnitTable(analytes.units)
        vitamin_d = analytes.vitamin_d
        self._d2 = frozenset(vitamin_d.component_d2)
        self._d3 = frozenset(vitamin_d.component_d3)
        self._component_name = vitamin_d.component_total_name
        interpretation = analytes.interpretation
        self._flag_systems = frozenset(interpretation.systems)
        self._flags = {
            code: LabFlag(code, spec.display, spec.direction, spec.critical)
            for code, spec in interpretation.flags.items()
        }

    def read(
        self, resources: Iterable[Any], patient_id: str, since: Mapping[str, date] | None = None
    ) -> Read[LabResult]:
        """The patient's results, each resource once: by id, or without one, by what it says (the
        same result twice would be listed twice on a card). `since` gives, per analyte, the first
        UTC day any rule looks at: an older result of it is not read, only counted (rulebook,
        "Which results count")."""
        tally = Tally()
        results: list[LabResult] = []
        by_id: dict[str, list[LabResult]] = {}
        seen: set[LabResult] = set()
        resources = list(resources)
        selected: list[Any] = []
        codes: list[str | None] = []  # the code each selected resource is read by; None: its components
        for raw in resources:
            if (code := self._selected(raw)) is not False:
                selected.append(raw)
                codes.append(code)
        tally.ignored += len(resources) - len(selected)
        if since:
            kept = self._unread_old(selected, codes, since)
            tally.old += len(selected) - len(kept)
            selected = kept
        for obs, value_malformed in self._observations(selected, patient_id, tally):
            try:
                result = self._result(obs)
            except ValueError:  # a date that is not a FHIR date
                tally.malformed += 1
                continue
            if result is not None and value_malformed:
                result = msgspec.structs.replace(result, problem="malformed value")
            if result is None:
                tally.ignored += 1
                continue
            if obs.id is None:  # without an id, the same result twice by what it says
                if result in seen:
                    tally.ignored += 1
                    continue
                seen.add(result)
            elif not self._newest_version(result, by_id, results, obs.id):
                tally.ignored += 1
                continue
            results.append(result)
        return tally.read(results)

    @staticmethod
    def _newest_version(
        result: LabResult, by_id: dict[str, list[LabResult]], results: list[LabResult], resource_id: str
    ) -> bool:
        """One resource id sent twice is one result: the version that stands is kept, whichever
        comes first (rulebook, "Corrections and ties"). Two versions nothing tells apart are both
        kept, for the rules of ties to choose between, unless they say the same."""
        versions = by_id.get(resource_id)
        if versions is None:
            by_id[resource_id] = [result]
            return True
        if result in versions:
            return False
        for held in list(versions):
            if precedence(result) < precedence(held):
                return False
            if precedence(result) > precedence(held):
                versions.remove(held)
                results.remove(held)
        versions.append(result)
        return True

    def _observations(self, selected: list[Any], patient_id: str, tally: Tally) -> Iterator[tuple[Observation, bool]]:
        """The patient's Observations. One whose value is malformed is kept without it (True): it
        is a result that could not be read, and as the newest it stops older ones (rulebook,
        "Unreadable results"); one malformed elsewhere is skipped and counted."""
        for raw in selected:
            try:
                obs, value_malformed = read_as(Observation, raw), False
            except msgspec.ValidationError:
                try:
                    obs, value_malformed = read_as(Observation, {k: v for k, v in raw.items() if k in _IDENTITY}), True
                except msgspec.ValidationError:
                    tally.malformed += 1
                    continue
            if not names_patient(obs.subject.reference if obs.subject else None, patient_id):
                tally.other_patient += 1
                continue
            yield obs, value_malformed

    # -- selection on raw JSON ------------------------------------------------------------------

    def _unread_old(self, selected: list[Any], codes: list[str | None], since: Mapping[str, date]) -> list[Any]:
        """The selected resources but those dated, beyond doubt, before the first day a rule looks
        at their analyte. A resource whose id another one shares is always read: a correction can
        move a result's date, and only the version that stands may be judged."""
        old = [
            code is not None
            and (first_day := since.get(self._roles[code].analyte)) is not None
            and _dated_before(raw, first_day)
            for raw, code in zip(selected, codes, strict=True)
        ]
        if not any(old):
            return selected
        ids = Counter(raw.get("id") for raw in selected)
        return [
            raw
            for raw, is_old in zip(selected, old, strict=True)
            if not is_old or (resource_id := raw.get("id")) is not None and ids[resource_id] > 1
        ]

    def _matched(self, concept: Any) -> str | None:
        """The first of the concept's LOINC codes that the content gives a role, as _result takes it."""
        if not isinstance(concept, dict) or not isinstance(codings := concept.get("coding"), list):
            return None
        for c in codings:
            if isinstance(c, dict) and c.get("system") == self._system:
                code = c.get("code")
                if isinstance(code, str) and code in self._roles:
                    return code
        return None

    def _codes(self, concept: Any) -> list[str]:
        if not isinstance(concept, dict) or not isinstance(codings := concept.get("coding"), list):
            return []
        return [
            c["code"]
            for c in codings
            if isinstance(c, dict) and c.get("system") == self._system and isinstance(c.get("code"), str)
        ]

    def _selected(self, raw: Any) -> str | None | Literal[False]:
        """The code the resource is read by; None for a total of D2 and D3 components; False for
        one not read."""
        if not isinstance(raw, dict) or raw.get("resourceType") != "Observation":
            return False
        if (code := self._matched(raw.get("code"))) is not None:
            return code
        components = raw.get("component")
        if not isinstance(components, list):
            return False
        codes = {code for comp in components if isinstance(comp, dict) for code in self._codes(comp.get("code"))}
        return None if codes & self._d2 and codes & self._d3 else False

    # -- reading a validated Observation ---------------------------------------------------------

    def _loinc(self, concept: CodeableConcept) -> list[str]:
        return [c.code for c in concept.coding if c.system == self._system and c.code is not None]

    def _result(self, obs: Observation) -> LabResult | None:
        """None for a status that does not count; ValueError for a malformed date."""
        status = obs.status.strip().lower()  # vendors send "entered-in-error " and "Final"
        if status not in self._statuses:
            return None
        effective = _effective(obs)
        issued = _optional_date(obs.issued) if obs.issued else None
        updated = _optional_date(obs.meta.lastUpdated) if obs.meta else None
        codes = self._loinc(obs.code)
        matched = next((c for c in codes if c in self._roles), None)
        has_value = obs.valueQuantity is not None or obs.valueString is not None
        if (matched is None or self._roles[matched].analyte == "vitamin_d") and not has_value and obs.component:
            total = self._component_total(obs, codes, status, effective)
            if total is not None:
                return total
        if matched is None:
            return None
        analyte, role, name = self._roles[matched]
        read = self._value(analyte, obs)
        return LabResult(
            analyte,
            role,
            matched,
            name,
            obs.id,
            status,
            effective,
            value=read.value,
            comparator=read.comparator,
            unit=read.unit,
            reported_value=read.reported_value,
            reported_unit=read.reported_unit,
            reported_text=read.reported_text,
            unit_unreported=read.unit_unreported,
            candidates=read.candidates,
            problem=read.problem,
            range_low=read.range_low,
            range_high=read.range_high,
            flag=self._flag(obs.interpretation) if obs.interpretation else None,
            issued=issued,
            updated=updated,
        )

    def _value(self, analyte: str, obs: Observation) -> _Value:
        """The value: canonical, as reported, its range; or the problem that keeps it unread."""
        reading = self._reading(analyte, obs)
        if isinstance(reading, str):
            return _Value(problem=reading)
        low, high = self._reference_range(analyte, obs.referenceRange) if obs.referenceRange else (None, None)
        if reading.unit is None:
            without = "no unit" if obs.valueQuantity else "a number without a unit"
            return self._unitless(analyte, reading, without)._replace(range_low=low, range_high=high)
        canonical_value = self._units.to_canonical(analyte, reading.value, reading.unit)
        if (problem := self._units.implausible(analyte, canonical_value)) is not None:
            return _Value(problem=problem)
        canonical = self._units.canonical(analyte)
        converted = reading.unit != canonical
        return _Value(
            canonical_value,
            reading.comparator,
            canonical,
            reading.value if converted else None,
            reading.unit if converted else None,
            reading.text,
            range_low=low,
            range_high=high,
        )

    def _unitless(self, analyte: str, reading: _Reading, problem: str) -> _Value:
        """A number sent without a unit (rulebook, "Values"): read when every unit accepted for the
        analyte gives the same value (potassium: mmol/L and meq/L); a censored one ("<4") is kept
        with what it stands for in each unit, for the clinical core to read when every reading
        agrees; any other is not interpreted."""
        candidates = self._units.candidates(analyte, reading.value)
        canonical = self._units.canonical(analyte)
        if any(self._units.implausible(analyte, c) is not None for c in candidates):
            return _Value(reported_text=reading.text, problem=problem)
        if len(candidates) == 1:
            return _Value(
                candidates[0], reading.comparator, canonical, reported_text=reading.text, unit_unreported=True
            )
        if reading.comparator is None:
            return _Value(reported_text=reading.text, problem=problem)
        return _Value(
            comparator=reading.comparator,
            unit=canonical,
            reported_text=reading.text,
            candidates=candidates,
            problem=problem,
        )

    def _flag(self, concepts: list[CodeableConcept]) -> LabFlag | None:
        """The laboratory's flag: the first coding of the content's interpretation systems."""
        for concept in concepts:
            for coding in concept.coding:
                if coding.code in self._flags and (coding.system is None or coding.system in self._flag_systems):
                    return self._flags[coding.code]
        return None

    def _reading(self, analyte: str, obs: Observation) -> _Reading | str:
        """The value as reported, or why the result cannot be read."""
        if obs.dataAbsentReason is not None:
            return "no value (data absent)"
        if obs.valueQuantity is not None:
            return self._quantity(analyte, obs.valueQuantity)
        if obs.valueString is not None:
            return self._string(analyte, obs.valueString)
        return "no value"

    def _quantity(self, analyte: str, q: Quantity) -> _Reading | str:
        if q.value is None:
            return "no numeric value"
        if (problem := self._number_problem(analyte, q.value, str(q.value))) is not None:
            return problem
        text = _written(q.value)
        if q.unit is None and q.code is None:
            return _Reading(float(q.value), q.comparator, None, text)
        unit = self._units.recognise(analyte, q.code, q.system, q.unit)
        if unit is None:
            return unit_problem(q.unit or q.code)
        return _Reading(float(q.value), q.comparator, unit, text)

    def _number_problem(self, analyte: str, value: Any, text: str) -> str | None:
        """Why a number is no laboratory's value, if it is not: zero, negative or too small for a
        float, past any bound, or written with more significant digits than a float holds (a
        longer one would be judged on a rounding of what was written)."""
        if value <= 0 or float(value) <= 0:
            return "zero or negative value"
        if value > _LARGEST or (len(text) > _FLOAT_DIGITS and _significant_digits(text) > _FLOAT_DIGITS):
            return self._units.implausible(analyte, float("inf")) or "implausible value"
        return None

    def _string(self, analyte: str, text: str) -> _Reading | str:
        """A value with its unit in text ("4.0 mmol/L", "<5 ng/mL"), or a number without one."""
        parts = _value_text(text)
        if parts is None:
            return "text, not a value"
        comparator, number, unit_text = parts
        value = float(number)
        if (problem := self._number_problem(analyte, value, number)) is not None:
            return problem
        text = number if len(number) <= _WRITTEN_DIGITS else _written(value)
        if unit_text is None:
            return _Reading(value, comparator, None, text)
        unit = self._units.recognise(analyte, None, None, unit_text)
        if unit is None:
            return unit_problem(unit_text)
        return _Reading(value, comparator, unit, text)

    def _reference_range(self, analyte: str, ranges: list[ReferenceRange]) -> tuple[float | None, float | None]:
        """The first normal range with a numeric bound in a convertible unit, low < high."""
        for rr in ranges:
            if rr.type is not None and _NORMAL_RANGE not in {c.code for c in rr.type.coding}:
                continue
            low = self._bound(analyte, rr.low)
            high = self._bound(analyte, rr.high)
            if low is None and high is None:
                continue
            if low is not None and high is not None and not low < high:
                continue
            return low, high
        return None, None

    def _bound(self, analyte: str, q: Quantity | None) -> float | None:
        if q is None or q.value is None or q.comparator is not None or not 0 <= q.value <= _LARGEST:
            return None
        unit = self._units.recognise(analyte, q.code, q.system, q.unit)
        return None if unit is None else self._units.to_canonical(analyte, float(q.value), unit)

    def _component_total(
        self, obs: Observation, codes: list[str], status: str, effective: datetime | None
    ) -> LabResult | None:
        """A total sent as D2 and D3 components: their sum, when both parts read cleanly. Only codes
        of the content name it in a card (FHIR text never does)."""
        known = next((c for c in codes if c in self._roles), None)
        total = partial(
            LabResult,
            analyte="vitamin_d",
            role="total",
            name=self._component_name,
            resource_id=obs.id,
            status=status,
            effective=effective,
        )
        parts: dict[str, tuple[float, Any, str]] = {}
        for comp in obs.component:
            named = self._part(self._loinc(comp.code))
            if named is None or comp.valueQuantity is None:
                continue
            part, part_code = named
            reading = self._quantity("vitamin_d", comp.valueQuantity)
            if isinstance(reading, str) or reading.unit is None:  # kept: it stops any status from older results
                return total(code=known or part_code, problem=reading if isinstance(reading, str) else "no unit")
            parts[part] = (
                self._units.to_canonical("vitamin_d", reading.value, reading.unit),
                reading.comparator,
                part_code,
            )
        if set(parts) != {"d2", "d3"}:
            return None
        comparators = {cmp for _, cmp, _ in parts.values() if cmp is not None}
        if len(comparators) > 1 or comparators & {">", ">="} and comparators & {"<", "<="}:
            return None
        code = known or f"{parts['d2'][2]}+{parts['d3'][2]}"
        value = sum(v for v, _, _ in parts.values())
        if (problem := self._units.implausible("vitamin_d", value)) is not None:
            return total(code=code, problem=problem)
        return total(
            code=code,
            value=value,
            comparator=next(iter(comparators), None),
            unit=self._units.canonical("vitamin_d"),
            reported_text=f"{value:.6g}",  # a sum: the digits of its parts
        )

    def _part(self, codes: list[str]) -> tuple[str, str] | None:
        """("d2" or "d3", the code that says so) for a component of a total; None for another."""
        for code in codes:
            if code in self._d2:
                return "d2", code
            if code in self._d3:
                return "d3", code
        return None


def _significant_digits(text: str) -> int:
    """The digits of a written number that its value depends on: trailing zeros of a fraction
    ("3.10") add none."""
    mantissa = text.split("e")[0].split("E")[0]
    if "." in mantissa:
        mantissa = mantissa.rstrip("0")
    return len(_NOT_SIGNIFICANT.sub("", mantissa))


def _written(value: Any) -> str:
    """A number as the laboratory wrote it: "3" for an int, "3.0" for a float, "1.20" for the
    Decimal of json_bodies.py; past any laboratory's precision, the number itself."""
    text = repr(value) if type(value) is float else str(value)
    if len(text) > _WRITTEN_DIGITS or "e" in text or "E" in text:
        return f"{float(value):.6g}"
    return text


def _value_text(text: str) -> tuple[str | None, str, str | None] | None:
    """The comparator, the number as written and the unit text of a value written in text
    ("<5 ng/mL": "<", "5", "ng/mL"), or None for text that is not one ("low", "4.0 5"). Linear in
    the text: no part is read twice."""
    rest = text.strip()
    comparator = next((c for c in _COMPARATORS if rest.startswith(c)), None)
    if comparator is not None:
        rest = rest[len(comparator) :].lstrip(_BLANKS)
    number = _NUMBER.match(rest)
    if number is None:
        return None
    unit = rest[number.end() :].lstrip(_BLANKS)
    if not unit:
        return comparator, number[0], None
    if unit[0] in "0123456789":  # a second number: no unit begins with a digit
        return None
    return comparator, number[0], unit


def _dated_before(raw: dict[str, Any], first_day: date) -> bool:
    """Dated before `first_day` (UTC), read from the raw JSON as _effective reads the validated
    resource. False whenever that is not certain (no date, an unreadable one): such a resource is
    read in full, and counted if malformed."""
    text = raw.get("effectiveDateTime")
    if text is None:
        period = raw.get("effectivePeriod")
        if period is not None and not isinstance(period, dict):
            return False
        texts = (
            period.get("end") if period else None,
            period.get("start") if period else None,
            raw.get("effectiveInstant"),
            raw.get("issued"),
        )
        text = next((t for t in texts if t is not None), None)
    if not isinstance(text, str):
        return False
    try:
        when = parse_fhir_datetime(text)
    except ValueError:
        return False
    return when.astimezone(UTC).date() < first_day


def _optional_date(text: str | None) -> datetime | None:
    """A date that only breaks ties: one that cannot be read, or that UTC cannot hold, breaks none.
    The result it stands beside is still read: a metadata date never hides a value."""
    try:
        return parse_fhir_datetime(text) if text is not None else None
    except ValueError:
        return None


def _effective(obs: Observation) -> datetime | None:
    """effectiveDateTime, else the period's end or start, else effectiveInstant, else issued. The
    result's date: one that is not a date, or that UTC cannot hold, makes the resource malformed,
    since no window can place the result (rulebook, "Dates and windows")."""
    period = obs.effectivePeriod
    for text in (
        obs.effectiveDateTime,
        period.end if period else None,
        period.start if period else None,
        obs.effectiveInstant,
        obs.issued,
    ):
        if text is not None:
            return parse_fhir_datetime(text)
    return None
