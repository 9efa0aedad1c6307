"""Feedback kept in a real database, SQLite and PostgreSQL: stored, idempotent, all-or-nothing,
concurrent, kept across restarts, and reported correctly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cds_service.cli import cli
from cds_service.store.database import open_database
from cds_service.store.report import build_report
from cds_service.store.schema import feedback, issued_cards
from tests.builders import condition, hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"
FEEDBACK = f"{SERVICE}/feedback"
WHEN = "2026-11-25T10:00:00Z"


def accepted(card: dict[str, Any], when: str = WHEN) -> dict[str, Any]:
    """The acceptance of the card's first suggestion (a card without suggestions is never accepted:
    CDS Hooks 2.0.1, Feedback)."""
    suggestion = card["suggestions"][0]["uuid"]
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": when,
    }


def stranger() -> dict[str, Any]:
    """An acceptance about a card this service never issued."""
    suggestion = str(uuid.uuid4())
    return {
        "card": str(uuid.uuid4()),
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": WHEN,
    }


def overridden(card: dict[str, Any], code: str = "already-addressed", when: str = WHEN) -> dict[str, Any]:
    """An override of `card` for one of the reasons it offers (the test names a reason it does not:
    the assertion says which)."""
    offered = {r["code"]: r for r in card["overrideReasons"]}
    assert code in offered, f"a {card['source']['topic']['code']} card offers {sorted(offered)}, not {code!r}"
    reason = offered[code]
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason, "userComment": "on it"},
        "outcomeTimestamp": when,
    }


async def issue(
    client: httpx.AsyncClient,
    value: float = 12,
    electrolytes: list[Any] | None = None,
    conditions: list[Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """One hook call; its cards by kind."""
    request = hook_request([obs("62292-8", value, "ng/mL")], electrolytes, conditions=conditions)
    response = await client.post(SERVICE, json=request)
    assert response.status_code == 200
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


async def count(url: str, table: Any) -> int:
    engine = open_database(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await engine.dispose()


async def test_cards_issued_are_recorded_without_phi(make_app: AppFactory, database_url: str) -> None:
    pid = "patient-55231"
    request = hook_request([obs("62292-8", 12.345, "ng/mL", patient=pid, id="obs-98765")], None, patient=pid)
    async with make_client(make_app(database_url=database_url)) as client:
        response = await client.post(SERVICE, json=request)
        cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    engine = open_database(database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(issued_cards))).mappings().all()
    await engine.dispose()
    assert {r["kind"] for r in rows} == {"vitd-deficient", "electrolytes-check"}
    check = next(r for r in rows if r["kind"] == "electrolytes-check")
    assert check["card_uuid"] == cards["electrolytes-check"]["uuid"] and check["indicator"] == "info"
    assert [s["label"] for s in check["suggestions"]] == [
        s["label"] for s in cards["electrolytes-check"]["suggestions"]
    ]
    assert check["profile"] == "endocrine-2011" and "+" in check["content_version"]
    text = repr(rows)
    assert pid not in text and "12.345" not in text and "obs-98765" not in text


async def test_feedback_is_stored_once(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        body = {"feedback": [accepted(cards["electrolytes-check"]), overridden(cards["vitd-deficient"])]}
        first = await client.post(FEEDBACK, json=body)
        again = await client.post(FEEDBACK, json=body)
    assert first.status_code == again.status_code == 200
    assert first.json() == {"received": 2, "new": 2} and again.json() == {"received": 2, "new": 0}
    assert await count(database_url, feedback) == 2


async def test_feedback_fields_are_kept(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        entry = overridden(cards["vitd-deficient"], "patient-declined", when="2026-11-25T12:30:00+02:00")
        assert (await client.post(FEEDBACK, json={"feedback": [entry]})).status_code == 200
    engine = open_database(database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(feedback))).mappings().one()
    await engine.dispose()
    assert row["outcome"] == "overridden" and row["override_code"] == "patient-declined"
    assert row["override_display"] == "Patient declined" and row["user_comment"] == "on it"
    assert row["override_system"] == "urn:vitamin-d-cramps:override-reason"
    assert row["outcome_timestamp"] == datetime(2026, 11, 25, 10, 30)  # UTC
    assert row["known_card"] is True


async def test_unknown_cards_are_stored_and_flagged(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        response = await client.post(FEEDBACK, json={"feedback": [stranger()]})
    assert response.status_code == 200
    engine = open_database(database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(feedback))).mappings().one()
    await engine.dispose()
    assert row["known_card"] is False


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"outcome": "ignored"}, "feedback[1].outcome"),
        ({"outcomeTimestamp": "yesterday"}, "feedback[1].outcomeTimestamp"),
        ({"outcomeTimestamp": "2026-11-25T10:00:00"}, "feedback[1].outcomeTimestamp"),  # no time zone
        ({"outcomeTimestamp": "0001-01-01T08:19:00+19:00"}, "feedback[1].outcomeTimestamp"),  # before year 1 in UTC
        ({"outcomeTimestamp": "9999-12-31T23:00:00-05:00"}, "feedback[1].outcomeTimestamp"),  # after 9999 in UTC
        ({"card": "not-a-uuid"}, "feedback[1].card"),
        ({"outcomeTimestamp": 12345}, "feedback[1].outcomeTimestamp"),  # pydantic read it as Unix seconds
        ({"outcomeTimestamp": "2026"}, "feedback[1].outcomeTimestamp"),
        ({"overrideReason": {"reason": {"code": "x"}}}, "feedback[1]"),  # accepted with a reason
    ],
)
async def test_a_malformed_entry_is_400_and_nothing_is_stored(
    make_app: AppFactory, database_url: str, broken: dict[str, Any], field: str
) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        good = accepted(cards["electrolytes-check"])
        later = accepted(cards["electrolytes-check"], when="2026-11-25T10:05:00Z")
        response = await client.post(FEEDBACK, json={"feedback": [good, later | broken]})
    assert response.status_code == 400
    issue_ = response.json()["issue"][0]
    assert issue_["expression"] == [field]
    assert await count(database_url, feedback) == 0


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        ({"system": "urn:vitamin-d-cramps:override-reason", "code": "both-intended"}, "'both-intended'"),
        ({"code": "clinically-indicated"}, "'clinically-indicated'"),  # no system: read as this service's
        ({"system": "http://example.org/ehr-reasons", "code": "patient-declined"}, "'patient-declined'"),
        ({"code": "no-such-reason", "display": "Already addressed"}, "'no-such-reason'"),
    ],
)
async def test_a_reason_the_cards_kind_does_not_offer_is_400_naming_it(
    make_app: AppFactory, database_url: str, reason: dict[str, str], named: str
) -> None:
    """The reasons are declared once with their kinds (catalogue.yaml): a vitd-deficient card does
    not offer "Both products are intended", and its override for that reason is refused, the
    batch with it, so that the report never counts a reason the clinician was not offered."""
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        good = overridden(cards["vitd-deficient"], "patient-declined")
        wrong = {**good, "overrideReason": {"reason": reason}, "outcomeTimestamp": "2026-11-25T10:05:00Z"}
        response = await client.post(FEEDBACK, json={"feedback": [good, wrong]})
    assert response.status_code == 400
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert named in diagnostics and "vitd-deficient" in diagnostics and "patient-declined" in diagnostics
    assert await count(database_url, feedback) == 0


async def test_the_report_counts_reasons_by_code(make_app: AppFactory, database_url: str) -> None:
    """Two codes sent with one display stay two reasons in the report."""
    async with make_client(make_app(database_url=database_url)) as client:
        first, second = await issue(client), await issue(client)
        entries = [overridden(first["vitd-deficient"], "patient-declined"), overridden(second["vitd-deficient"])]
        entries[1]["overrideReason"]["reason"] = {
            **entries[1]["overrideReason"]["reason"],
            "display": "Patient declined",
        }
        assert (await client.post(FEEDBACK, json={"feedback": entries})).status_code == 200
    engine = open_database(database_url)
    report = await build_report(engine)
    await engine.dispose()
    (deficient,) = [k for k in report.kinds if k.kind == "vitd-deficient"]
    assert sorted(deficient.override_reasons.items()) == [("already-addressed", 1), ("patient-declined", 1)]


@pytest.mark.parametrize("body", [{}, {"feedback": []}, {"feedback": "x"}, []])
async def test_feedback_body_shape(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post(FEEDBACK, json=body)
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


async def test_feedback_for_an_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/cds-services/nope/feedback", json={"feedback": []})
    assert response.status_code == 404


async def test_200_concurrent_posts_all_kept_none_twice_and_kept_across_a_restart(
    make_app: AppFactory, database_url: str
) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        card = cards["vitd-deficient"]
        start = datetime(2026, 11, 25, 10, tzinfo=UTC)
        bodies = [{"feedback": [overridden(card, when=(start + timedelta(seconds=i)).isoformat())]} for i in range(200)]
        responses = await asyncio.gather(*(client.post(FEEDBACK, json=b) for b in bodies + bodies[:50]))
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["new"] for r in responses) == 200
    assert await count(database_url, feedback) == 200
    async with make_client(make_app(database_url=database_url)) as client:  # a restart: the same database
        assert (await client.get("/readyz")).status_code == 200
        again = await client.post(FEEDBACK, json=bodies[0])
        assert again.json()["new"] == 0
    assert await count(database_url, feedback) == 200


async def test_report_numbers(make_app: AppFactory, database_url: str) -> None:
    """A scripted day: four deficient patients, two insufficient with leg cramps; what the clinicians did."""
    async with make_client(make_app(database_url=database_url)) as client:
        deficient = [await issue(client, 12, normal_electrolytes()) for _ in range(4)]
        insufficient = [await issue(client, 25, conditions=[condition("R25.2")]) for _ in range(2)]
        feedback_entries = [
            overridden(deficient[0]["vitd-deficient"], "already-addressed"),
            overridden(deficient[1]["vitd-deficient"], "already-addressed"),
            overridden(deficient[2]["vitd-deficient"], "patient-declined"),
            overridden(insufficient[0]["vitd-insufficient"], "not-relevant"),
            # the same card reported twice: the later outcome counts
            overridden(insufficient[0]["electrolytes-check"], "not-relevant", when="2026-11-25T09:00:00Z"),
            accepted(insufficient[0]["electrolytes-check"], when="2026-11-25T09:05:00Z"),
            accepted(insufficient[1]["electrolytes-check"]),
            overridden(insufficient[1]["vitd-insufficient"], "outside-result"),
            stranger(),
        ]
        assert (await client.post(FEEDBACK, json={"feedback": feedback_entries})).status_code == 200
    engine = open_database(database_url)
    report = await build_report(engine)
    await engine.dispose()
    kinds = {k.kind: k for k in report.kinds}
    assert set(kinds) == {"vitd-deficient", "vitd-insufficient", "electrolytes-check"}
    d = kinds["vitd-deficient"]
    assert (d.issued, d.accepted, d.overridden, d.no_feedback) == (4, 0, 3, 1)
    assert d.acceptance_rate == 0
    assert d.override_reasons.most_common() == [("already-addressed", 2), ("patient-declined", 1)]
    i = kinds["vitd-insufficient"]
    assert (i.issued, i.accepted, i.overridden, i.no_feedback) == (2, 0, 2, 0)
    assert sorted(i.override_reasons.items()) == [("not-relevant", 1), ("outside-result", 1)]
    c = kinds["electrolytes-check"]
    assert (c.issued, c.accepted, c.overridden, c.no_feedback) == (2, 2, 0, 0) and c.acceptance_rate == 1
    assert c.accepted_suggestions.most_common() == [("Order a basic metabolic panel (potassium, calcium)", 2)]
    assert report.feedback_on_unknown_cards == 1
    engine = open_database(database_url)
    later = await build_report(engine, since=(datetime.now(UTC) + timedelta(days=1)).date())
    await engine.dispose()
    assert later.kinds == []


@pytest.mark.parametrize(
    ("where", "path"),
    [("userComment", "overrideReason.userComment"), ("display", "overrideReason.reason.display")],
)
async def test_a_nul_character_in_feedback_is_400_on_every_database(
    make_app: AppFactory, database_url: str, where: str, path: str
) -> None:
    """PostgreSQL text cannot hold NUL: refused with the field named, never a 500 from the database."""
    async with make_client(make_app(database_url=database_url)) as client:
        entry = overridden((await issue(client))["vitd-deficient"])
        if where == "userComment":
            entry["overrideReason"]["userComment"] = "fine\x00then"
        else:
            entry["overrideReason"]["reason"] = entry["overrideReason"]["reason"] | {"display": "x\x00"}
        answer = await client.post(FEEDBACK, json={"feedback": [entry]})
        assert answer.status_code == 400 and path in answer.json()["issue"][0]["diagnostics"]
        assert await count(database_url, feedback) == 0


async def test_the_report_prints_hostile_feedback_as_text(
    make_app: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich markup and terminal escapes in an override reason, the card's latest feedback: refused
    now (no card offers them), but a store written before reasons were checked may hold them, so the
    report prints them as text, no markup error, no link, no escape sequence."""
    hostile = ["[/x]", "[link=file:///etc/passwd]click[/link]", "\x1b]8;;file:///etc\x1b\\esc\x07", "[bold]b[/bold]"]
    async with make_client(make_app(database_url=database_url)) as client:
        cards = [(await issue(client))["vitd-deficient"] for _ in hostile]
        for card, code in zip(cards, hostile, strict=True):
            entry = overridden(card)
            entry["overrideReason"]["reason"] = {"code": code, "display": code}
            assert (await client.post(FEEDBACK, json={"feedback": [entry]})).status_code == 400
    engine = open_database(database_url)
    async with engine.begin() as conn:  # as an older version stored them
        await conn.execute(
            feedback.insert(),
            [
                {
                    "card_uuid": card["uuid"],
                    "service": "vitamin-d-cramps",
                    "outcome": "overridden",
                    "accepted_suggestions": [],
                    "override_code": code,
                    "override_display": code,
                    "outcome_timestamp": datetime(2026, 11, 25, 10),
                    "received_at": datetime(2026, 11, 25, 10),
                    "known_card": True,
                }
                for card, code in zip(cards, hostile, strict=True)
            ],
        )
    await engine.dispose()
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "400")
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["report"])  # the command runs its own loop
    assert result.exit_code == 0, result.output
    assert "[/x]" in result.output and "[link=file:///etc/passwd]click[/link]" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
