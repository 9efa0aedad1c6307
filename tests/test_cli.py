"""The command line, including `demo` (what `make run` starts) as a real process over HTTP."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from cds_service.cli import _serving, cli
from cds_service.demo import example_request
from cds_service.settings import Settings
from tests.conftest import AppFactory

ROOT = Path(__file__).resolve().parent.parent


def test_print_request_is_dated_relative_to_today() -> None:
    result = CliRunner().invoke(cli, ["demo", "--print-request"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == example_request(date.today())


def test_python_dash_m_works() -> None:
    done = subprocess.run([sys.executable, "-m", "cds_service", "--help"], capture_output=True, text=True, check=True)
    assert "serve" in done.stdout and "demo" in done.stdout


def test_demo_serves_discovery_and_the_example(demo_server: str) -> None:
    services = httpx.get(f"{demo_server}/cds-services").json()["services"]
    assert [s["id"] for s in services] == ["vitamin-d-cramps", "vitamin-d-order-select", "vitamin-d-order-sign"]
    response = httpx.post(f"{demo_server}/cds-services/vitamin-d-cramps", json=example_request(date.today()))
    assert response.status_code == 200
    kinds = [c["source"]["topic"]["code"] for c in response.json()["cards"]]
    assert kinds == ["vitd-deficient", "electrolytes-check"]


def test_serve_refuses_to_start_without_issuers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDS_AUTH", raising=False)
    monkeypatch.delenv("CDS_TRUSTED_ISSUERS_FILE", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "CDS_AUTH=jwt needs CDS_TRUSTED_ISSUERS_FILE" in result.output


def _store(path: Path, *kinds: str, reason: str = "patient-declined") -> str:
    """A SQLite feedback store with a card of each kind issued on 2026-11-20 and overridden."""
    import asyncio
    import uuid as uuid_
    from datetime import UTC, datetime

    from cds_service.protocol import Card, Coding, FeedbackEntry, Source
    from cds_service.store.database import migrate, open_database
    from cds_service.store.feedback import FeedbackStore

    url = f"sqlite+aiosqlite:///{path}"

    async def fill() -> None:
        engine = open_database(url)
        await migrate(engine)
        store = FeedbackStore(engine, "v1", "endocrine-2011")
        for kind in kinds:
            card = Card(
                uuid=uuid_.uuid4(), summary="s", indicator="warning", source=Source(label="l", topic=Coding(code=kind))
            )
            store.record_cards("vitamin-d-cramps", [card], datetime(2026, 11, 20, tzinfo=UTC))
            await store.flush()
            entry = FeedbackEntry.model_validate(
                {
                    "card": str(card.uuid),
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-21T10:00:00Z",
                    "overrideReason": {"reason": {"code": reason, "display": "Declined"}},
                }
            )
            await store.store("vitamin-d-cramps", [entry], datetime.now(UTC))
        await engine.dispose()

    asyncio.run(fill())
    return url


def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report of an empty store, then of one with a card and its feedback, as JSON and table."""
    monkeypatch.setenv("CDS_DATABASE_URL", _store(tmp_path / "empty.sqlite"))
    empty = CliRunner().invoke(cli, ["report", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout)["kinds"] == []
    table = CliRunner().invoke(cli, ["report"])
    assert table.exit_code == 0 and "Card outcomes: no cards issued." in table.stdout

    monkeypatch.setenv("CDS_DATABASE_URL", _store(tmp_path / "report.sqlite", "vitd-deficient"))
    result = CliRunner().invoke(cli, ["report", "--json", "--since", "2026-11-01"])
    (kind,) = json.loads(result.stdout)["kinds"]
    assert kind["kind"] == "vitd-deficient" and kind["issued"] == 1 and kind["overridden"] == 1
    assert kind["override_reasons"] == {"patient-declined": 1} and kind["acceptance_rate"] == 0
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps to the terminal's width
    table = CliRunner().invoke(cli, ["report"])
    assert table.exit_code == 0 and "vitd-deficient" in table.stdout and "patient-declined (1)" in table.stdout
    later = CliRunner().invoke(cli, ["report", "--json", "--since", "2026-11-30"])
    assert json.loads(later.stdout)["kinds"] == []


def test_report_refuses_a_store_that_is_not_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from another folder, the default (relative) SQLite path names no store: `report` says
    so and which setting to give, and creates nothing (it used to create an empty store)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2
    assert f"no feedback store at {tmp_path / 'data' / 'cds-service.sqlite'}" in result.stderr
    assert "set CDS_DATABASE_URL" in result.stderr
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/elsewhere/feedback.sqlite")
    assert CliRunner().invoke(cli, ["report", "--json"]).exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_report_of_a_store_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "feedback.sqlite").write_text("not a database")
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/feedback.sqlite")
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2
    assert "the feedback store (CDS_DATABASE_URL) cannot be read: DatabaseError" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("width", [60, 80, 120, 250])
def test_the_report_table_fits_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Whatever the width, no line is longer and no value is cut: one table where a column per
    figure fits, else one table per kind (it was cut at 80 columns, names and all ending in "…")."""
    reason = "patient-declined-supplementation-review"
    url = _store(tmp_path / "r.sqlite", "vitd-deficient", "electrolytes-abnormal", reason=reason)
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", str(width))
    out = CliRunner().invoke(cli, ["report"]).stdout
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out
    flat = re.sub(r"[\s│┃]+", "", out)  # a value wrapped within its row's cell, put back together
    assert all(re.sub(r"\s", "", text) in flat for text in ("vitd-deficient", "electrolytes-abnormal", f"{reason} (1)"))
    assert ("┃ kind " in out) == (width >= 200)  # one table, its heading row; else a table per kind


def test_a_report_column_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A figure added to REPORT_COLUMNS shows in both layouts (another column is coming: the
    content version)."""
    from cds_service import cli as cli_module

    added = cli_module.ReportColumn("content version", False, lambda k: "v-test-9")
    monkeypatch.setattr(cli_module, "REPORT_COLUMNS", [*cli_module.REPORT_COLUMNS, added])
    monkeypatch.setenv("CDS_DATABASE_URL", _store(tmp_path / "r.sqlite", "vitd-deficient"))
    for width in ("60", "250"):
        monkeypatch.setenv("COLUMNS", width)
        out = CliRunner().invoke(cli, ["report"]).stdout
        assert "content version" in out and "v-test-9" in out


@pytest.mark.anyio
async def test_a_server_process_freezes_what_it_started_with(make_app: AppFactory) -> None:
    """Once started, the objects alive are out of the collector's sight (see `_serving`)."""
    gc.unfreeze()
    try:
        async with LifespanManager(_serving(make_app(), Settings(auth="off"))):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_evaluate_does_not_warn_about_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ "any caller is trusted" is about a server; `evaluate` serves no one."""
    from cds_service.app import create_app

    caplog.set_level("WARNING", logger="cds_service")
    create_app(Settings(auth="off"))
    assert "any caller is trusted" not in caplog.text
    _serving(create_app(Settings(auth="off")), Settings(auth="off"))
    assert "any caller is trusted" in caplog.text


def test_evaluate_names_the_setting_that_allows_a_local_http_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's first `evaluate` is against a local http server: the refusal says what lifts it."""
    monkeypatch.delenv("CDS_FHIR_ALLOW_INSECURE", raising=False)
    result = CliRunner().invoke(cli, ["evaluate", "--fhir-server", "http://127.0.0.1:9/fhir", "--patient", "p1"])
    assert result.exit_code == 2
    assert "not an https URL (CDS_FHIR_ALLOW_INSECURE=true allows http" in result.stderr


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["run"], "/cds-service demo --port 8000"),
        (["run", "PORT=8080"], "/cds-service demo --port 8080"),
        (["serve", "PORT=8080"], "/cds-service serve --port 8080"),
        (["fhir"], "scripts/local_fhir.py --port 8090"),
        (["fhir", "PORT=9090"], "scripts/local_fhir.py --port 9090"),
    ],
)
def test_make_targets_take_a_port(args: list[str], command: str) -> None:
    """What `make` would run (`-n`: nothing is installed or started), with and without PORT."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1].endswith(command)
