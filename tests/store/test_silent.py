"""Silent mode and the count of hook calls, on SQLite and PostgreSQL: a kind that runs silent is
decided and recorded, never shown, and counted apart; hook calls are counted per service and UTC
day, and replicas writing the same database add up."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from cds_service.app import create_app
from cds_service.content.loader import Content, ContentError
from cds_service.settings import Settings
from cds_service.store.database import migrate, open_database
from cds_service.store.feedback import FeedbackStore
from cds_service.store.report import Report, build_report
from cds_service.store.schema import hook_calls, issued_cards
from tests.builders import hook_request, obs
from tests.conftest import AS_OF, AppFactory, make_client
from tests.store.tables import rows
from tests.test_metrics import sample

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"
EVIDENCE = "**Evidence.**"


def deficient() -> dict[str, object]:
    """Deficient, no recent electrolytes, no cramps: the vitamin D card and a calcium check."""
    return hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10")], [])


def kinds(cards: list[dict[str, object]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]  # type: ignore[index]


async def report(url: str) -> Report:
    engine = open_database(url)
    try:
        return await build_report(engine)
    finally:
        await engine.dispose()


async def test_a_silent_kind_is_recorded_and_counted_never_shown(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        active = (await client.post(SERVICE, json=deficient())).json()["cards"]
    assert kinds(active) == ["vitd-deficient", "electrolytes-check"]
    assert EVIDENCE in active[0]["detail"] and EVIDENCE not in active[1]["detail"]

    async with make_client(make_app(database_url=database_url, silent_kinds=["vitd-deficient"])) as client:
        before = (await client.get("/metrics")).text
        shown = (await client.post(SERVICE, json=deficient())).json()["cards"]
        after = (await client.get("/metrics")).text
    assert kinds(shown) == ["electrolytes-check"]
    # what the response says once moves to a card that is shown
    assert EVIDENCE in shown[0]["detail"]
    labels = {"kind": "vitd-deficient", "indicator": "warning", "issuer": "none"}
    silent = "cds_silent_cards_total"
    silent_delta = sample(after, silent, **labels) - sample(before, silent, **labels)
    shown_delta = sample(after, "cds_cards_total", **labels) - sample(before, "cds_cards_total", **labels)
    assert silent_delta == 1 and shown_delta == 0

    assert sorted(await rows(database_url, issued_cards.c.kind, issued_cards.c.silent)) == [
        ("electrolytes-check", False),
        ("electrolytes-check", False),
        ("vitd-deficient", False),
        ("vitd-deficient", True),
    ]
    result = await report(database_url)
    by_kind = {k.kind: k for k in result.kinds}
    assert (by_kind["vitd-deficient"].issued, by_kind["vitd-deficient"].silent) == (1, 1)
    assert (by_kind["electrolytes-check"].issued, by_kind["electrolytes-check"].silent) == (2, 0)
    assert result.calls == {"vitamin-d-cramps": 2}
    assert by_kind["vitd-deficient"].fire_rate == 1.0  # two calls, one card shown and one silent
    assert by_kind["vitd-deficient"].acceptance_rate == 0.0  # over the shown card only


async def test_all_kinds_silent_answer_no_cards(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, silent_kinds=["all"])) as client:
        response = await client.post(SERVICE, json=deficient())
    assert response.status_code == 200 and response.json() == {"cards": []}
    result = await report(database_url)
    assert {(k.kind, k.issued, k.silent) for k in result.kinds} == {
        ("vitd-deficient", 0, 1),
        ("electrolytes-check", 0, 1),
    }


async def test_hook_calls_of_two_replicas_add_up_per_day(make_app: AppFactory, database_url: str) -> None:
    today, yesterday = AS_OF, AS_OF - timedelta(days=1)
    async with (
        make_client(make_app(as_of=today, database_url=database_url)) as one,
        make_client(make_app(as_of=today, database_url=database_url)) as two,
        make_client(make_app(as_of=yesterday, database_url=database_url)) as three,
    ):
        calls = [one.post(SERVICE, json=deficient()) for _ in range(3)]
        calls += [two.post(SERVICE, json=deficient()) for _ in range(2)]
        calls += [three.post(SERVICE, json=deficient())]
        calls += [one.post(SERVICE, json={"hook": "patient-view"})]  # a 400: no cards decided, not counted
        statuses = [r.status_code for r in await asyncio.gather(*calls)]
    assert statuses == [200] * 6 + [400]
    assert sorted(await rows(database_url, hook_calls.c.day, hook_calls.c.calls)) == [
        (yesterday.date(), 1),
        (today.date(), 5),
    ]
    assert (await report(database_url)).calls == {"vitamin-d-cramps": 6}


def test_the_content_gives_each_kinds_default(content: Content) -> None:
    assert content.silent_kinds(None) == frozenset()  # every kind ships active
    cards = dict(content.catalogue.cards)
    cards["vitd-high"] = cards["vitd-high"].model_copy(update={"mode": "silent"})
    quiet = dataclasses.replace(content, catalogue=content.catalogue.model_copy(update={"cards": cards}))
    assert quiet.silent_kinds(None) == {"vitd-high"}
    assert quiet.silent_kinds([]) == frozenset()  # the setting, when set, decides
    assert quiet.silent_kinds(["vitd-deficient"]) == {"vitd-deficient"}
    assert quiet.silent_kinds(["all"]) == frozenset(cards)


def test_an_unknown_kind_stops_the_start(content: Content) -> None:
    with pytest.raises(ContentError, match="CDS_SILENT_KINDS: unknown card kind vitd-nope"):
        create_app(Settings(auth="off", silent_kinds=["vitd-high", "vitd-nope"]), content=content)


@pytest.mark.parametrize(
    ("value", "parsed"), [("all", ["all"]), ("vitd-high, vitd-deficient", ["vitd-high", "vitd-deficient"]), ("", [])]
)
def test_the_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, parsed: list[str]) -> None:
    monkeypatch.setenv("CDS_SILENT_KINDS", value)
    assert Settings().silent_kinds == parsed


def test_unset_leaves_it_to_the_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDS_SILENT_KINDS", raising=False)
    assert Settings().silent_kinds is None


async def test_a_call_counts_on_its_utc_day(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        await migrate(engine)
        store = FeedbackStore(engine, "v1", "endocrine-2011")
        store.count_call("vitamin-d-cramps", datetime(2026, 11, 26, 1, 30, tzinfo=timezone(timedelta(hours=5))))
        await store.flush()
        store.count_call("vitamin-d-cramps", datetime(2026, 11, 25, 22, 0, tzinfo=UTC))
        await store.flush()
        async with engine.connect() as conn:
            rows = (await conn.execute(select(hook_calls.c.service, hook_calls.c.day, hook_calls.c.calls))).all()
    finally:
        await engine.dispose()
    assert rows == [("vitamin-d-cramps", date(2026, 11, 25), 2)]
