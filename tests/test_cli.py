"""The command line, including `demo` (what `make run` starts) as a real process over HTTP."""

from __future__ import annotations

import gc
import json
import os
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


def test_report_command(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report of an empty store, then of one with a card and its feedback, as JSON and table."""
    import asyncio
    import uuid as uuid_
    from datetime import UTC, datetime

    from cds_service.protocol import Card, Coding, FeedbackEntry, Source
    from cds_service.store.database import migrate, open_database
    from cds_service.store.feedback import FeedbackStore

    url = f"sqlite+aiosqlite:///{tmp_path}/report.sqlite"  # type: ignore[str-bytes-safe]
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    empty = CliRunner().invoke(cli, ["report", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout)["kinds"] == []

    async def fill() -> None:
        engine = open_database(url)
        await migrate(engine)
        store = FeedbackStore(engine, "v1", "endocrine-2011")
        card = Card(
            uuid=uuid_.uuid4(),
            summary="s",
            indicator="warning",
            source=Source(label="l", topic=Coding(code="vitd-deficient")),
        )
        store.record_cards("vitamin-d-cramps", [card], datetime(2026, 11, 20, tzinfo=UTC))
        await store.flush()
        entry = FeedbackEntry.model_validate(
            {
                "card": str(card.uuid),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-21T10:00:00Z",
                "overrideReason": {"reason": {"code": "patient-declined", "display": "Patient declined"}},
            }
        )
        await store.store("vitamin-d-cramps", [entry], datetime.now(UTC))
        await engine.dispose()

    asyncio.run(fill())
    result = CliRunner().invoke(cli, ["report", "--json", "--since", "2026-11-01"])
    (kind,) = json.loads(result.stdout)["kinds"]
    assert kind["kind"] == "vitd-deficient" and kind["issued"] == 1 and kind["overridden"] == 1
    assert kind["override_reasons"] == {"patient-declined": 1} and kind["acceptance_rate"] == 0
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps to the terminal's width
    table = CliRunner().invoke(cli, ["report"])
    assert table.exit_code == 0 and "vitd-deficient" in table.stdout and "patient-declined (1)" in table.stdout
    later = CliRunner().invoke(cli, ["report", "--json", "--since", "2026-11-30"])
    assert json.loads(later.stdout)["kinds"] == []


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
