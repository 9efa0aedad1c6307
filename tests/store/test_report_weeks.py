"""The report week by week and over a range of days, on SQLite and PostgreSQL: what the
governance page and `cds-service report` both read."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cds_service.store.database import open_database
from cds_service.store.report import Report, build_report, week_of
from tests.builders import hook_request, obs
from tests.conftest import AS_OF, AppFactory, make_client

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"


async def report(url: str, since: date | None = None, until: date | None = None) -> Report:
    engine = open_database(url)
    try:
        return await build_report(engine, since, until)
    finally:
        await engine.dispose()


async def test_weeks_and_range(make_app: AppFactory, database_url: str) -> None:
    # AS_OF is a Wednesday: two calls that week, one the week before, one on the Monday after
    moments = [AS_OF, AS_OF, AS_OF - timedelta(days=7), AS_OF + timedelta(days=5)]
    for moment in moments:
        async with make_client(make_app(as_of=moment, database_url=database_url)) as client:
            request = hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10")], [])
            assert (await client.post(SERVICE, json=request)).status_code == 200
    this_week = week_of(AS_OF.date())
    assert this_week.weekday() == 0 and this_week <= AS_OF.date()

    whole = await report(database_url)
    assert [(w.start, w.calls) for w in whole.weeks] == [
        (this_week - timedelta(weeks=1), {"vitamin-d-cramps": 1}),
        (this_week, {"vitamin-d-cramps": 2}),
        (this_week + timedelta(weeks=1), {"vitamin-d-cramps": 1}),
    ]
    assert [{k.kind: k.issued for k in w.kinds}["vitd-deficient"] for w in whole.weeks] == [1, 2, 1]
    assert {k.kind: k.issued for k in whole.kinds}["vitd-deficient"] == 4 and whole.calls == {"vitamin-d-cramps": 4}

    # both ends included, as UTC days
    only = await report(database_url, since=AS_OF.date(), until=AS_OF.date())
    assert [w.start for w in only.weeks] == [this_week] and only.calls == {"vitamin-d-cramps": 2}
    assert {k.kind: k.issued for k in only.kinds}["vitd-deficient"] == 2
    assert (await report(database_url, since=AS_OF.date() + timedelta(days=6))).kinds == []
