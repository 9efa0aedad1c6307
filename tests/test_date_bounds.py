"""Dates no resource can hold, from an attack run, on the real service (docs/clinical-rules.md,
"Dates and windows"): an instant UTC cannot hold (0001-01-01T00:00:00+14:00,
9999-12-31T23:59:59-14:00) in a date the service reads made an OverflowError, a 500 for the whole
call. Now, where that date decides whether or when the resource counts (a result's date, an
encounter diagnosis's), the resource is malformed: skipped and counted, and every card says what it
would say without it; any other date of it (a tie-breaking `issued`, a medicine's `authoredOn`) is
ignored and the resource read, so that a metadata date never hides a value or a medicine. And the
date parser's cache holds short strings only: a 1 MB "date" is refused unread and never kept."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cds_service.fhir import labs
from cds_service.fhir.labs import DateOutOfRange, parse_fhir_datetime
from tests.builders import condition, hook_request, medication, obs, order_request, service_request

pytestmark = pytest.mark.anyio

SERVICES = {
    "patient-view": "/cds-services/vitamin-d-cramps",
    "order-select": "/cds-services/vitamin-d-order-select",
    "order-sign": "/cds-services/vitamin-d-order-sign",
}
EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
VALID = "2026-11-20T08:00:00Z"
OBSERVATION_DATES = [
    "effectiveDateTime",
    "effectivePeriod.start",
    "effectivePeriod.end",
    "effectiveInstant",
    "issued",
    "meta.lastUpdated",
]
# The drafts of the order hooks: a 25(OH)D test (its card names the latest result) and a vitamin D
# product (cautioned while calcium is high or the product is already taken).
DRAFTS = [
    service_request(("http://loinc.org", "62292-8")),
    medication("cholecalciferol 50000 UNT Oral Capsule", "316965", status="draft", id="mr-1"),
]


def _at(resource: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    """`resource` with the dotted `field` set to `value`."""
    *path, last = field.split(".")
    held = resource
    for name in path:
        held = held.setdefault(name, {})
    held[last] = value
    return resource


def _observation(code: str, value: float, unit: str, field: str, date: str) -> dict[str, Any]:
    """A result with every date the service reads given and valid, but `field`: kept, it would be
    the newest result, whichever date were ignored."""
    resource = obs(code, value, unit, VALID, id="odd")
    resource |= {
        "effectivePeriod": {"start": VALID, "end": VALID},
        "effectiveInstant": VALID,
        "issued": VALID,
        "meta": {"lastUpdated": VALID},
    }
    return _at(resource, field, date)


def _k(value: float) -> dict[str, Any]:
    return obs("2823-3", value, "mmol/L", "2026-11-01")


def _mg() -> dict[str, Any]:
    return obs("19123-9", 2.0, "mg/dL", "2026-11-01")


def _ca(value: float) -> dict[str, Any]:
    return obs("17861-6", value, "mg/dL", "2026-11-01")


BASE: dict[str, list[dict[str, Any]]] = {
    "vitamin_d": [obs("62292-8", 14, "ng/mL", "2026-11-01")],
    "electrolytes": [_k(4.2), _mg(), _ca(9.4)],
    "conditions": [],
    "medications": [],
}


class Case:
    """A resource with a date the service reads: where it goes, the record beside it, and the
    services on which, read, it would change the cards (a newer normal result hides an older
    abnormal one; leg cramps ask for electrolytes; a supplement already taken is named)."""

    def __init__(
        self,
        key: str,
        resource: Callable[[str, str], dict[str, Any]],
        fields: list[str],
        changes: set[str],
        deciding: str,
        **record: list[dict[str, Any]],
    ) -> None:
        self.key, self.resource, self.fields, self.changes = key, resource, fields, changes
        self.deciding = deciding  # the field whose date places the resource (the others are ignored)
        self.record = BASE | record


CASES = {
    "25(OH)D": Case(
        "vitamin_d",
        lambda field, date: _observation("62292-8", 45, "ng/mL", field, date),
        OBSERVATION_DATES,
        set(SERVICES),
        "effectiveDateTime",
    ),
    "potassium": Case(
        "electrolytes",
        lambda field, date: _observation("2823-3", 4.0, "mmol/L", field, date),
        OBSERVATION_DATES,
        {"patient-view"},
        "effectiveDateTime",
        electrolytes=[_k(2.0), _mg(), _ca(9.4)],
    ),
    "calcium": Case(
        "electrolytes",
        lambda field, date: _observation("17861-6", 9.4, "mg/dL", field, date),
        OBSERVATION_DATES,
        set(SERVICES),
        "effectiveDateTime",
        electrolytes=[_k(4.2), _mg(), _ca(11.5)],
    ),
    "encounter diagnosis": Case(  # a Condition without clinical status: read by its date
        "conditions",
        lambda field, date: _at(
            condition("R25.2", clinical=None, verification=None, id="odd")
            | {"recordedDate": "2026-11-20", "onsetDateTime": "2026-11-19"},
            field,
            date,
        ),
        ["recordedDate", "onsetDateTime"],
        {"patient-view"},
        "recordedDate",
        electrolytes=[],
    ),
    "medication": Case(
        "medications",
        lambda field, date: _at(medication("cholecalciferol 1000 units", id="odd"), field, date),
        ["authoredOn"],
        set(SERVICES),
        "",  # no date of a medicine decides whether it is taken
    ),
}


def _request(service: str, record: dict[str, list[dict[str, Any]]], **patient: Any) -> dict[str, Any]:
    lists = {"vitamin_d": record["vitamin_d"], "electrolytes": record["electrolytes"]}
    contexts = {"conditions": record["conditions"], "medications": record["medications"]}
    if service == "patient-view":
        return hook_request(**lists, **contexts, **patient)
    return order_request(record.get("drafts", DRAFTS), hook=service, **lists, **contexts)


def _cards(response: httpx.Response) -> list[tuple[str, str, str, str]]:
    assert response.status_code == 200, response.text
    return [
        (c["source"]["topic"]["code"], c["indicator"], c["summary"], c.get("detail", ""))
        for c in response.json()["cards"]
    ]


async def _call(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, service: str, request: dict[str, Any]
) -> tuple[list[tuple[str, str, str, str]], int]:
    """The cards of a call, and the resources its log line counts as malformed."""
    caplog.clear()
    response = await client.post(SERVICES[service], json=request)
    cards = _cards(response)
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    return cards, vars(line)["malformed"]


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize("case", list(CASES))
async def test_a_date_utc_cannot_hold_skips_its_resource_only_where_it_decides(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, case: str, service: str
) -> None:
    caplog.set_level(logging.INFO, logger="cds_service")
    spec = CASES[case]
    without = await _call(client, caplog, service, _request(service, spec.record))
    for field in spec.fields:
        read = spec.record | {spec.key: [*spec.record[spec.key], spec.resource(field, VALID)]}
        kept = await _call(client, caplog, service, _request(service, read))
        # Read with a valid date, the resource changes the cards: so the cards below show it skipped.
        assert (kept[0] != without[0]) is (service in spec.changes), field
        for extreme in EXTREMES:
            record = spec.record | {spec.key: [*spec.record[spec.key], spec.resource(field, extreme)]}
            cards, malformed = await _call(client, caplog, service, _request(service, record))
            if field == spec.deciding:  # skipped and counted
                assert cards == without[0], (field, extreme)
                assert malformed == without[1] + 1, (field, extreme)
            else:  # read, the date ignored: the resource still counts
                assert malformed == without[1], (field, extreme)
                assert (cards != without[0]) is (service in spec.changes), (field, extreme)
                if case != "medication":  # its start, unknown now, decides whether treatment began
                    assert cards == kept[0], (field, extreme)


@pytest.mark.parametrize("service", ["order-select", "order-sign"])
async def test_a_draft_is_never_dropped_for_its_dates(client: httpx.AsyncClient, service: str) -> None:
    """A draft's dates are not read (which test or product it orders is): extreme dates there give
    a 200 and the cards the drafts earn, so that no caution is lost to a date."""
    record = BASE | {"electrolytes": [_k(4.2), _mg(), _ca(11.5)]}

    def drafts(date: str) -> list[dict[str, Any]]:
        test, product = (dict(d) for d in DRAFTS)
        test |= {"authoredOn": date, "occurrenceDateTime": date}
        bounds = {"timing": {"repeat": {"boundsPeriod": {"start": date, "end": date}}}}
        product |= {"authoredOn": date, "dosageInstruction": [bounds]}
        return [test, product]

    expected = _cards(await client.post(SERVICES[service], json=_request(service, record | {"drafts": drafts(VALID)})))
    assert [kind for kind, *_ in expected] == ["vitd-supplement-caution", "vitd-duplicate-order"]
    for extreme in EXTREMES:
        request = _request(service, record | {"drafts": drafts(extreme)})
        assert _cards(await client.post(SERVICES[service], json=request)) == expected


@pytest.mark.parametrize("birth", ["0001-01-01", "9999-12-31", "9999", *EXTREMES])
async def test_a_birth_date_no_calendar_holds_is_an_unknown_age(client: httpx.AsyncClient, birth: str) -> None:
    """A date-only birthDate cannot overflow; one on the first or last day a date can have is no
    birth date, as every FHIR date there (a 9999 birth made a minor of the patient and hid every
    card but the critical ones); the patient is then an adult of unknown age (rulebook, "Age")."""
    url = SERVICES["patient-view"]
    unknown = _cards(await client.post(url, json=_request("patient-view", BASE)))
    assert _cards(await client.post(url, json=_request("patient-view", BASE, birth_date=birth))) == unknown


# --- fractions of a second --------------------------------------------------------------------------


def test_fractions_to_nine_digits_are_read_to_the_microsecond() -> None:
    assert parse_fhir_datetime("2026-11-20T08:00:00.123456789Z") == datetime(2026, 11, 20, 8, 0, 0, 123456, UTC)
    assert parse_fhir_datetime("2026-11-20T08:00:00.1+14:00").microsecond == 100000


@pytest.mark.parametrize("text", ["2026-11-20T08:00:00.1234567890Z", "2026-11-20T08:00:00." + "1" * 1000 + "Z"])
def test_more_fraction_digits_than_fhir_writes_are_no_date(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_fhir_datetime(text)
    assert not isinstance(raised.value, DateOutOfRange)


@pytest.mark.parametrize("text", [*EXTREMES, "0001-01-01", "9999-12-31", "0001-01-02T00:00:00+14:00"])
def test_dates_utc_cannot_hold_are_out_of_range(text: str) -> None:
    with pytest.raises(DateOutOfRange):
        parse_fhir_datetime(text)


# --- the cache ----------------------------------------------------------------------------------


def test_a_long_date_is_refused_unread_and_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    cached = labs._parse_date

    def spy(text: str) -> datetime:
        seen.append(text)
        return cached(text)

    monkeypatch.setattr(labs, "_parse_date", spy)
    before = cached.cache_info().currsize
    for text in ("2026-11-20" + "0" * 1_000_000, "2026-11-20T08:00:00." + "1" * 1_000_000 + "Z", " " * 36):
        with pytest.raises(ValueError):
            parse_fhir_datetime(text)
    assert seen == [] and cached.cache_info().currsize == before


def test_sixty_dates_of_a_megabyte_keep_no_memory() -> None:
    """From the attack run: 60 dates of 1 MB (a fraction of a second a megabyte long, which was read
    and cached) kept 65 MB for the life of the process."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(60):
            text = f"2026-11-20T08:00:{i % 60:02d}." + "1" * 1_000_000 + "Z"
            with pytest.raises(ValueError):
                parse_fhir_datetime(text)
            del text
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000


async def test_a_megabyte_date_on_the_service_is_a_skipped_resource_and_never_cached(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="cds_service")
    seen: list[str] = []
    cached = labs._parse_date

    def spy(text: str) -> datetime:
        seen.append(text)
        return cached(text)

    monkeypatch.setattr(labs, "_parse_date", spy)
    without = await _call(client, caplog, "patient-view", _request("patient-view", BASE))
    long = obs("62292-8", 45, "ng/mL", "2026-11-20T08:00:00." + "1" * 1_000_000 + "Z", id="odd")
    record = BASE | {"vitamin_d": [*BASE["vitamin_d"], long]}
    cards, malformed = await _call(client, caplog, "patient-view", _request("patient-view", record))
    assert (cards, malformed) == (without[0], without[1] + 1)
    assert seen and max(map(len, seen)) <= 35
    assert cached.cache_info().currsize <= cached.cache_info().maxsize == 4096
