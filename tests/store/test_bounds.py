"""Feedback bounded before the database sees it, identity tied to the EHR that received a card, and
a report that reads only its range: each attack of the third hardening round, on SQLite and on a
real PostgreSQL."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import event, func, select

from cds_service.protocol import USER_COMMENT_LIMIT
from cds_service.store import report as report_module
from cds_service.store.database import open_database
from cds_service.store.report import build_report
from cds_service.store.schema import feedback, snoozes
from tests.conftest import AS_OF, AppFactory, Keys, make_client
from tests.store.test_feedback import count, issue, overridden
from tests.store.test_snooze import FEEDBACK, KEY, SERVICE, WHEN, chart

pytestmark = pytest.mark.anyio


# --- feedback fields -------------------------------------------------------------------------------


def _with(entry: dict[str, Any], path: tuple[str, ...], value: str) -> dict[str, Any]:
    entry = copy.deepcopy(entry)  # the reason is the card's own dict
    target = entry
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return entry


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        (("overrideReason", "userComment"), USER_COMMENT_LIMIT),
        (("overrideReason", "reason", "code"), 200),
        (("overrideReason", "reason", "system"), 500),
        (("overrideReason", "reason", "display"), 500),
    ],
)
async def test_feedback_fields_are_bounded_before_the_database(
    make_app: AppFactory, database_url: str, path: tuple[str, ...], limit: int
) -> None:
    """A field one character over its limit is a 400 naming it and nothing of the batch is stored
    (PostgreSQL used to answer 500 for a code over 200 characters); at the limit it is read. A 2 MB
    comment never reaches the database."""
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        good = overridden(cards["electrolytes-check"], "addressed")
        for size in (limit + 1, 2_000_000):
            over = _with(overridden(cards["vitd-deficient"], "patient-declined"), path, "x" * size)
            response = await client.post(FEEDBACK, json={"feedback": [good, over]})
            assert response.status_code == 400, response.text
            assert response.json()["issue"][0]["expression"] == [f"feedback[1].{'.'.join(path)}"]
        assert await count(database_url, feedback) == 0
        if path[-1] in ("userComment", "display"):  # a code or system of that length is no reason offered
            at_limit = _with(overridden(cards["vitd-deficient"], "patient-declined"), path, "x" * limit)
            assert (await client.post(FEEDBACK, json={"feedback": [at_limit]})).status_code == 200
            assert await count(database_url, feedback) == 1


# --- the EHR a card was issued to --------------------------------------------------------------------

EHR_A, EHR_B = "https://ehr-a.example.org", "https://ehr-b.example.org"
BASE = "http://cds.test"


def ehr_token(key: ECKey, issuer: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode({"alg": "ES384", "typ": "JWT", "kid": key.kid}, claims, key, algorithms=["ES384"])


def _issuers(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "issuers.json"
    public = {"keys": [keys.es384.as_dict(private=False)]}
    path.write_text(json.dumps({"issuers": [{"iss": EHR_A, "jwks": public}, {"iss": EHR_B, "jwks": public}]}))
    return path


async def test_another_ehrs_override_does_not_snooze_the_card(
    make_app: AppFactory, database_url: str, tmp_path: Path, keys: Keys
) -> None:
    """EHR B overrides the card EHR A's call received (its uuid seen in a log, say): the override is
    answered, not stored, and said to concern a card issued to another EHR; A's patient still
    gets the card. A's own override of it snoozes it."""
    app = make_app(
        database_url=database_url,
        pseudonym_key=KEY,
        auth="jwt",
        public_base_url=BASE,
        trusted_issuers_file=_issuers(tmp_path, keys),
    )

    def headers(issuer: str, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {ehr_token(keys.es384, issuer, BASE + path)}"}

    async with make_client(app) as client:

        async def chart_of_a() -> dict[str, dict[str, Any]]:
            response = await client.post(SERVICE, json=chart(), headers=headers(EHR_A, SERVICE))
            assert response.status_code == 200, response.text
            return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}

        card = (await chart_of_a())["vitd-deficient"]
        entry = overridden(card, "already-addressed", WHEN)
        by_b = await client.post(FEEDBACK, json={"feedback": [entry]}, headers=headers(EHR_B, FEEDBACK))
        assert by_b.status_code == 200
        assert by_b.json() == {"received": 1, "new": 0, "issued_to_another_ehr": 1}
        assert "vitd-deficient" in await chart_of_a()
        by_a = await client.post(FEEDBACK, json={"feedback": [entry]}, headers=headers(EHR_A, FEEDBACK))
        # B's entry took no place: A's, the same entry, is stored as new
        assert by_a.status_code == 200 and by_a.json() == {"received": 1, "new": 1}
        assert "vitd-deficient" not in await chart_of_a()  # A's own override snoozes it
    engine = open_database(database_url)
    async with engine.connect() as conn:
        kept = (await conn.execute(select(feedback.c.known_card))).scalars().all()
        snoozed = (await conn.execute(select(func.count()).select_from(snoozes))).scalar_one()
    await engine.dispose()
    assert kept == [True] and snoozed == 1  # only A's entry kept


# --- the report reads its range ----------------------------------------------------------------------


async def test_the_report_reads_only_the_rows_and_columns_of_its_range(
    make_app: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old feedback with long comments stays in the database when a one-week report is built: the
    queries never name the comment, and only the week's rows come back."""
    async with make_client(make_app(database_url=database_url)) as client:
        cards = await issue(client)
        assert (
            await client.post(FEEDBACK, json={"feedback": [overridden(cards["vitd-deficient"], "patient-declined")]})
        ).status_code == 200
    engine = open_database(database_url)
    old = AS_OF - timedelta(days=400)
    async with engine.begin() as conn:
        await conn.execute(
            feedback.insert(),
            [
                {
                    "card_uuid": str(uuid.uuid4()),
                    "service": "vitamin-d-cramps",
                    "outcome": "overridden",
                    "accepted_suggestions": [],
                    "override_code": "patient-declined",
                    "user_comment": "c" * USER_COMMENT_LIMIT,
                    "outcome_timestamp": old.replace(tzinfo=None) + timedelta(seconds=i),
                    "received_at": old.replace(tzinfo=None),
                    "known_card": False,
                }
                for i in range(300)
            ],
        )
    statements: list[str] = []
    answers_read: list[int] = []
    tally = report_module._tally

    def counting(issued: Any, answers: list[Any], *rest: Any) -> Any:
        answers_read.append(len(answers))
        return tally(issued, answers, *rest)

    monkeypatch.setattr(report_module, "_tally", counting)
    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    report = await build_report(engine, since=(AS_OF - timedelta(days=7)).date(), until=AS_OF.date())
    everything = await build_report(engine)
    await engine.dispose()
    read = [s for s in statements if "FROM feedback" in s]
    assert read and all("user_comment" not in s for s in read)
    assert answers_read == [1, 301]  # the week's one answer; the 300 old ones only without a range
    deficient = {k.kind: k for k in report.kinds}["vitd-deficient"]
    assert deficient.overridden == 1 and report.feedback_on_unknown_cards == 0
    assert everything.feedback_on_unknown_cards == 300
