"""Snooze after override, on SQLite and PostgreSQL: a card overridden for a reason that snoozes is
not shown again to that patient while the results it was built on stay the same, for the days the
content sets; a newer result, another patient or the end of the snooze shows it again; replicas
on one database agree; the store keeps keyed pseudonyms, never the patient id; without the key
there is no snoozing and nothing about the patient is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from cds_service.settings import Settings
from cds_service.store.database import open_database
from cds_service.store.feedback import FeedbackStore
from cds_service.store.report import build_report
from cds_service.store.schema import db_time, feedback, issued_cards, snoozes
from tests.builders import hook_request, obs
from tests.conftest import AS_OF, AppFactory, make_client
from tests.store.tables import rows
from tests.store.test_feedback import overridden
from tests.test_metrics import sample

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"
FEEDBACK = f"{SERVICE}/feedback"
KEY = "k" * 40
PATIENT = "snooze-patient-7"
WHEN = AS_OF.isoformat().replace("+00:00", "Z")


def chart(value: float = 12, day: str = "2026-11-10", patient: str = PATIENT) -> dict[str, Any]:
    """Deficient, no recent electrolytes: the vitamin D card and a calcium check."""
    return hook_request([obs("62292-8", value, "ng/mL", day, patient=patient)], [], patient=patient)


async def open_chart(client: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = await client.post(SERVICE, json=request)
    assert response.status_code == 200
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


async def override(client: httpx.AsyncClient, card: dict[str, Any], reason: str = "already-addressed") -> None:
    response = await client.post(FEEDBACK, json={"feedback": [overridden(card, reason, WHEN)]})
    assert response.status_code == 200


async def test_an_overridden_card_stays_away_until_a_newer_result(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        cards = await open_chart(client, chart())
        assert set(cards) == {"vitd-deficient", "electrolytes-check"}
        await override(client, cards["vitd-deficient"])
        before = (await client.get("/metrics")).text
        assert set(await open_chart(client, chart())) == {"electrolytes-check"}  # the other kind still shows
        after = (await client.get("/metrics")).text
        labels = {"kind": "vitd-deficient", "indicator": "warning", "issuer": "none"}
        assert (
            sample(after, "cds_snoozed_cards_total", **labels) - sample(before, "cds_snoozed_cards_total", **labels)
            == 1
        )
        assert set(await open_chart(client, chart(patient="another-patient"))) == {
            "vitd-deficient",
            "electrolytes-check",
        }
        newer = chart()
        newer["prefetch"]["vitaminD"]["entry"].append(
            {"resource": obs("62292-8", 11, "ng/mL", "2026-11-20", patient=PATIENT)}
        )
        assert "vitd-deficient" in await open_chart(client, newer)  # the data changed: shown again
    engine = open_database(database_url)
    try:
        report = {k.kind: k for k in (await build_report(engine)).kinds}
        async with engine.connect() as conn:
            stored = [
                tuple(map(str, row))
                for table in (issued_cards, feedback, snoozes)
                for row in await conn.execute(select(table))
            ]
    finally:
        await engine.dispose()
    assert (report["vitd-deficient"].issued, report["vitd-deficient"].snoozed) == (3, 1)
    assert report["vitd-deficient"].fire_rate == 1.0  # every one of the four calls decided one
    assert not any(PATIENT in cell for row in stored for cell in row)  # a keyed pseudonym, never the id


@pytest.mark.parametrize(
    ("reason", "days"), [("already-addressed", 90), ("not-relevant", 365), ("patient-declined", 180)]
)
async def test_the_snooze_lasts_the_days_of_its_reason(
    make_app: AppFactory, database_url: str, reason: str, days: int
) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"], reason)
    ((until,),) = await rows(database_url, snoozes.c.until)
    assert until == db_time(AS_OF + timedelta(days=days))


async def test_the_card_comes_back_when_the_snooze_ends(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"])
    for offset, shown in ((timedelta(days=89, hours=23), False), (timedelta(days=90, minutes=1), True)):
        async with make_client(make_app(as_of=AS_OF + offset, database_url=database_url, pseudonym_key=KEY)) as client:
            assert ("vitd-deficient" in await open_chart(client, chart())) is shown


async def test_two_replicas_agree(make_app: AppFactory, database_url: str) -> None:
    async with (
        make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as one,
        make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as two,
    ):
        await override(one, (await open_chart(one, chart()))["vitd-deficient"])
        assert "vitd-deficient" not in await open_chart(two, chart())
        assert "vitd-deficient" not in await open_chart(one, chart())


def by(user: str) -> dict[str, Any]:
    """The chart as this clinician opens it."""
    request = chart()
    request["context"]["userId"] = user
    return request


@pytest.mark.parametrize(
    ("scope", "hidden_from_a_colleague"), [("clinician", False), ("patient", True)], ids=["clinician", "patient"]
)
async def test_the_snooze_scope_says_whom_an_override_hides_the_card_from(
    make_app: AppFactory, database_url: str, scope: str, hidden_from_a_colleague: bool
) -> None:
    """CDS_SNOOZE_SCOPE=clinician (the default): one clinician's override hides the card from that
    clinician, for that patient; a colleague opening the same chart still sees it. `patient`: from
    every clinician of the patient."""
    app = make_app(database_url=database_url, pseudonym_key=KEY, snooze_scope=scope)
    async with make_client(app) as client:
        await override(client, (await open_chart(client, by("Practitioner/a")))["vitd-deficient"])
        assert "vitd-deficient" not in await open_chart(client, by("Practitioner/a"))
        seen_by_colleague = "vitd-deficient" in await open_chart(client, by("Practitioner/b"))
        assert seen_by_colleague is not hidden_from_a_colleague


async def test_snooze_scope_off_snoozes_nothing(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY, snooze_scope="off")) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"])
        assert "vitd-deficient" in await open_chart(client, chart())
    assert {subject for (subject,) in await rows(database_url, issued_cards.c.subject)} == {None}


@pytest.mark.parametrize(("reason", "status"), [("outside-result-elsewhere", 400), (None, 200)])
async def test_no_snooze_without_a_snoozing_reason(
    make_app: AppFactory, database_url: str, reason: str | None, status: int
) -> None:
    """Without a reason, or with one the card does not offer (refused), the card is not snoozed."""
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        card = (await open_chart(client, chart()))["vitd-deficient"]
        entry: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN}
        if reason is not None:
            entry["overrideReason"] = {"reason": {"system": card["overrideReasons"][0]["system"], "code": reason}}
        assert (await client.post(FEEDBACK, json={"feedback": [entry]})).status_code == status
        assert "vitd-deficient" in await open_chart(client, chart())


async def test_without_the_key_nothing_is_snoozed_and_nothing_about_the_patient_kept(
    make_app: AppFactory, database_url: str
) -> None:
    async with make_client(make_app(database_url=database_url)) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"])
        assert "vitd-deficient" in await open_chart(client, chart())
    kept = await rows(database_url, issued_cards.c.subject, issued_cards.c.evidence)
    assert kept and set(kept) == {(None, None)} and await rows(database_url, snoozes.c.subject) == []


async def test_a_new_key_lets_every_snooze_lapse(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"])
    async with make_client(make_app(database_url=database_url, pseudonym_key="n" * 40)) as client:
        assert "vitd-deficient" in await open_chart(client, chart())


async def test_an_ehr_clock_in_the_future_cannot_lengthen_a_snooze(make_app: AppFactory, database_url: str) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        card = (await open_chart(client, chart()))["vitd-deficient"]
        entry = overridden(card, "already-addressed", "2036-01-01T00:00:00Z")
        assert (await client.post(FEEDBACK, json={"feedback": [entry]})).status_code == 200
    ((until,),) = await rows(database_url, snoozes.c.until)
    assert until == db_time(AS_OF + timedelta(days=90))  # from when it was received (the service's clock)


async def test_a_store_that_cannot_be_read_snoozes_nothing(
    make_app: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        await override(client, (await open_chart(client, chart()))["vitd-deficient"])

        async def away(*args: object) -> set[tuple[str, str]]:
            raise ConnectionError("database away")

        monkeypatch.setattr(FeedbackStore, "snoozed", away)
        assert "vitd-deficient" in await open_chart(client, chart())  # a card too many, never one lost


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="pseudonym_key"):
        Settings(pseudonym_key="too-short")


async def test_a_critical_card_is_never_snoozed(make_app: AppFactory, database_url: str) -> None:
    very_high = hook_request([obs("62292-8", 160, "ng/mL", "2026-11-10", patient=PATIENT)], [], patient=PATIENT)
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        card = (await open_chart(client, very_high))["vitd-high"]
        assert card["indicator"] == "critical"
        await override(client, card, "not-relevant")
        assert "vitd-high" in await open_chart(client, very_high)


async def test_a_card_of_an_abnormal_value_is_never_snoozed(make_app: AppFactory, database_url: str) -> None:
    """vitd-high (not critical here) shows an abnormal value on its own: the content does not let
    it snooze, and its override stores no snooze."""
    high = hook_request([obs("62292-8", 120, "ng/mL", "2026-11-10", patient=PATIENT)], [], patient=PATIENT)
    async with make_client(make_app(database_url=database_url, pseudonym_key=KEY)) as client:
        card = (await open_chart(client, high))["vitd-high"]
        assert card["indicator"] != "critical"
        await override(client, card, "not-relevant")
        assert "vitd-high" in await open_chart(client, high)
    assert await rows(database_url, snoozes.c.subject) == []
