"""The governance page at /admin: refused without the admin token (bearer or login form), off
without CDS_ADMIN_TOKEN, and showing what `cds-service report` shows, week by week, with CSV and
JSON exports; then the same page in real headless Chromium, with a screenshot in docs/."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import create_engine

from cds_service.admin import gate
from cds_service.content.loader import Content
from cds_service.store.schema import feedback
from tests.builders import hook_request, obs
from tests.conftest import AS_OF, AppFactory, make_client
from tests.servers import service
from tests.store.test_feedback import overridden

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/cds-services/vitamin-d-cramps"
TOKEN = "admin-token-for-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WHEN = "2026-11-25T10:00:00Z"


def chart(patient: str = "p1") -> dict[str, Any]:
    """Deficient, no recent electrolytes: the vitamin D card and a calcium check."""
    return hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10", patient=patient)], [], patient=patient)


HOSTILE = "<script>alert(1)</script>=1+1"


def seed(client: httpx.Client, database: Path) -> None:
    """Six charts opened, two of their vitamin D cards overridden, one with a hostile reason. The
    service refuses a reason the card does not offer; a store written before it did may hold one,
    so that override is written to the database directly, as such a version stored it."""
    for i in range(6):
        cards = {c["source"]["topic"]["code"]: c for c in client.post(SERVICE, json=chart(f"p{i}")).json()["cards"]}
        if i < 2:
            entry = overridden(cards["vitd-deficient"], "already-addressed", WHEN)
            if i == 1:
                entry["overrideReason"]["reason"] = {"code": HOSTILE, "display": HOSTILE}
                assert client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}).status_code == 400
                engine = create_engine(f"sqlite:///{database}")
                with engine.begin() as conn:
                    conn.execute(
                        feedback.insert(),
                        {
                            "card_uuid": entry["card"],
                            "service": "vitamin-d-cramps",
                            "outcome": "overridden",
                            "accepted_suggestions": [],
                            "override_code": HOSTILE,
                            "override_display": HOSTILE,
                            "outcome_timestamp": datetime(2026, 11, 25, 10),
                            "received_at": datetime(2026, 11, 25, 10),
                            "known_card": True,
                        },
                    )
                engine.dispose()
            else:
                assert client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}).status_code == 200


async def test_off_without_the_setting(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin")).status_code == 404
    assert (await client.get("/admin/report.json", headers=BEARER)).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}])
async def test_refused_without_the_token(make_app: AppFactory, headers: dict[str, str]) -> None:
    async with make_client(make_app(admin_token=TOKEN)) as client:
        page = await client.get("/admin", headers=headers)
        assert page.status_code == 401 and 'name="token"' in page.text and "Card governance" in page.text
        for path in ("/admin/report.json", "/admin/report.csv"):
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 401 and answer.json()["resourceType"] == "OperationOutcome"
        wrong = await client.post(
            "/admin/login", content="token=nope", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert wrong.status_code == 401 and "not the admin token" in wrong.text and "set-cookie" not in wrong.headers


async def test_behind_a_tls_proxy_the_cookie_is_secure(make_app: AppFactory) -> None:
    app = make_app(admin_token=TOKEN, public_base_url="https://cds.hospital.example.org")
    async with make_client(app) as client:
        signed = await client.post(
            "/admin/login", content=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert "; secure" in signed.headers["set-cookie"].lower()


async def test_the_login_form_sets_a_cookie_that_is_not_the_token(make_app: AppFactory) -> None:
    async with make_client(make_app(admin_token=TOKEN)) as client:
        signed = await client.post(
            "/admin/login", content=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/admin"
        cookie = signed.headers["set-cookie"]
        assert TOKEN not in cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "secure" not in cookie.lower().replace("samesite", "")  # plain http here
        page = await client.get("/admin")
        assert page.status_code == 200 and 'id="kinds"' in page.text
        assert "script-src" not in page.headers["content-security-policy"]  # no script allowed at all
        assert page.headers["cache-control"] == "no-store"
        await client.post("/admin/logout")
        assert (await client.get("/admin")).status_code == 401


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_signing_out_ends_the_session_everywhere(make_app: AppFactory, tmp_path: Path) -> None:
    """The session cookie, copied before sign-out, opens nothing afterwards, on this process or a
    replica sharing the database; a session of another sign-in stays open, and one past its time
    closes."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite'}"
    async with (
        make_client(make_app(admin_token=TOKEN, database_url=database)) as one,
        make_client(make_app(admin_token=TOKEN, database_url=database)) as two,
    ):
        for client in (one, two):
            assert (await client.post("/admin/login", content=f"token={TOKEN}", headers=FORM)).status_code == 303
        copied = one.cookies[gate.COOKIE]
        other = two.cookies[gate.COOKIE]
        assert copied != other
        two.cookies.set(gate.COOKIE, copied, path="/admin")
        assert (await two.get("/admin")).status_code == 200  # the session is the database's, not the process's
        await one.post("/admin/logout")
        for client in (one, two):
            client.cookies.set(gate.COOKIE, copied, path="/admin")
            assert (await client.get("/admin")).status_code == 401
        two.cookies.set(gate.COOKIE, other, path="/admin")
        assert (await two.get("/admin")).status_code == 200
    later = make_app(admin_token=TOKEN, database_url=database, as_of=AS_OF + gate.SESSION + timedelta(minutes=1))
    async with make_client(later) as client:
        client.cookies.set(gate.COOKIE, other, path="/admin")
        assert (await client.get("/admin")).status_code == 401


async def test_wrong_tokens_past_the_limit_make_every_try_wait(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten wrong tokens a minute, then 429 with Retry-After for every try, the right token included
    (its answer must not tell it apart); opening the login page costs nothing; the window passes."""
    now = [1000.0]
    monkeypatch.setattr(gate.time, "monotonic", lambda: now[0])
    async with make_client(make_app(admin_token=TOKEN)) as client:
        for _ in range(gate.TRIES + 5):
            assert (await client.get("/admin")).status_code == 401  # no credential: not a try
        for i in range(gate.TRIES):
            wrong = {"Authorization": f"Bearer guess-{i:012d}"}
            if i % 2:
                assert (await client.get("/admin/report.json", headers=wrong)).status_code == 401
            else:
                assert (await client.post("/admin/login", content=f"token=guess-{i}", headers=FORM)).status_code == 401
        now[0] += 10
        for answer in (
            await client.get("/admin", headers=BEARER),
            await client.get("/admin/report.csv", headers=BEARER),
            await client.post("/admin/login", content=f"token={TOKEN}", headers=FORM),
        ):
            assert answer.status_code == 429 and answer.headers["retry-after"] == "50"
            assert "set-cookie" not in answer.headers
        assert (await client.get("/admin/report.json", headers=BEARER)).json()["issue"][0]["code"] == "throttled"
        now[0] += 50
        assert (await client.get("/admin/report.json", headers=BEARER)).status_code == 200


async def test_a_wrong_session_cookie_is_a_wrong_try(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate.time, "monotonic", lambda: 1000.0)
    async with make_client(make_app(admin_token=TOKEN)) as client:
        for i in range(gate.TRIES):
            client.cookies.set(gate.COOKIE, f"forged-{i}")
            assert (await client.get("/admin")).status_code == 401
        assert (await client.get("/admin")).status_code == 429


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("since=yesterday", "must be dates"),
        ("since=2026-11-20&until=2026-11-01", "not be after"),
        ("since=2000-01-01", "three years"),
        # from an attack run: a 500 (OverflowError) where a report's weeks or day ends leave the calendar
        ("until=9999-12-31", "between 1970-01-01 and 9998-12-31"),
        ("until=0001-01-01", "between"),
        ("since=9999-12-25&until=9999-12-31", "between"),
        ("since=0001-01-01&until=0001-01-10", "between"),
        ("since=9999-12-31&until=0001-01-01", "between"),
    ],
)
async def test_a_bad_range_is_400(make_app: AppFactory, query: str, problem: str) -> None:
    async with make_client(make_app(admin_token=TOKEN)) as client:
        answer = await client.get(f"/admin/report.json?{query}", headers=BEARER)
    assert answer.status_code == 400 and problem in answer.json()["issue"][0]["diagnostics"]


def test_the_exports_and_the_report_agree(tmp_path: Path) -> None:
    settings = {
        "CDS_AUTH": "off",
        "CDS_ADMIN_TOKEN": TOKEN,
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite'}",
    }
    with service("serve", settings) as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        seed(client, tmp_path / "a.sqlite")
        data = client.get("/admin/report.json", headers=BEARER).json()
        table = client.get("/admin/report.csv", headers=BEARER)
    kinds = {k["kind"]: k for k in data["kinds"]}
    assert data["hook_calls"] == {"vitamin-d-cramps": 6}
    assert (kinds["vitd-deficient"]["issued"], kinds["vitd-deficient"]["overridden"]) == (6, 2)
    assert kinds["vitd-deficient"]["override_rate"] == pytest.approx(2 / 6)
    assert table.headers["content-disposition"].startswith('attachment; filename="cds-cards-')
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert {r["kind"] for r in rows} == {"vitd-deficient", "electrolytes-check"}
    deficient = next(r for r in rows if r["kind"] == "vitd-deficient")
    assert (deficient["hook_calls"], deficient["issued"], deficient["overridden"]) == ("6", "6", "2")
    # a reason an EHR sent cannot become a spreadsheet formula
    assert all(not r["top_override_reasons"].startswith(("=", "+", "-", "@")) for r in rows)


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[str]:
    settings = {
        "CDS_AUTH": "off",
        "CDS_ADMIN_TOKEN": TOKEN,
        "CDS_SILENT_KINDS": "electrolytes-check",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'admin.sqlite'}",
    }
    with service("serve", settings) as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        seed(client, tmp_path / "admin.sqlite")
        yield base


def test_the_page_in_chromium(browser: Browser, admin_server: str, content: Content) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=admin_server)
    page = context.new_page()
    refused = page.goto("/admin")
    assert refused is not None and refused.status == 401
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("#kinds")).to_be_visible()
    row = page.locator("#kinds tr[data-kind=vitd-deficient] td")
    expect(row.nth(1)).to_have_text(content.version)  # the human version and the content's hash
    expect(row.nth(2)).to_have_text("-")  # no issuer: authentication is off
    expect(row.nth(3)).to_have_text("6")  # shown
    expect(page.locator("#kinds tr[data-kind=electrolytes-check] td").nth(4)).to_have_text("6")  # silent
    expect(row.nth(8)).to_have_text("2")  # overridden
    # the hostile reason is shown as text, never run
    expect(page.locator("#kinds tr[data-kind=vitd-deficient] td.text").first).to_contain_text(
        "<script>alert(1)</script>"
    )
    assert page.evaluate("() => window.alerted === undefined && document.scripts.length === 0")
    bars = page.locator("#weekly rect")
    assert bars.count() >= 2  # shown and silent, in this week
    assert "6 calls" in page.locator("#weekly").text_content()  # type: ignore[operator]
    with page.expect_download() as download:
        page.click("text=CSV")
    assert download.value.suggested_filename.startswith("cds-cards-")
    shot = ROOT / "docs" / "admin.png" if os.environ.get("UPDATE_SCREENSHOT") else None
    page.screenshot(path=str(shot) if shot else None, full_page=True)  # what it shows is checked above
    page.click("text=Sign out")
    expect(page.locator("#token")).to_be_visible()
    context.close()
