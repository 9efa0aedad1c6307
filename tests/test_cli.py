"""The command line, including `demo` (what `make run` starts) as a real process over HTTP."""

from __future__ import annotations

import gc
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from cds_service import startup
from cds_service.cli import _serving, cli
from cds_service.demo import example_request
from cds_service.settings import Settings
from cds_service.startup import DatabaseUnreachable
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
    assert "CDS_DATABASE_URL" in result.stderr and "cannot be used: DatabaseError" in result.stderr
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
    # run from `make test` too, where make's own variables would make it print the folders it enters
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1].endswith(command)


SECRET_SETTINGS = [
    ("CDS_ADMIN_TOKEN", "sh0rt-s3cret", "must be at least 16 characters long"),
    ("CDS_PSEUDONYM_KEY", "pseudonym-s3cret", "must be at least 32 characters long"),
    ("CDS_DATABASE_URL", "mysql://cds:db-s3cret@db.example.org/cds", "sqlite+aiosqlite://"),
    ("CDS_REDIS_URL", "http://:redis-s3cret@redis.example.org:6379/0", "redis://"),
    # from an attack run: a password holding a / (as a random base64 one may) read as a port, and
    # quoted by the URL parser's own message
    ("CDS_REDIS_URL", "redis://:s3cret/x@127.0.0.1:1/0", "must be percent-encoded"),
    ("CDS_DATABASE_URL", "postgresql+asyncpg://cds:db-s3cret/cds", "must be percent-encoded"),
]


@pytest.mark.parametrize("command", ["serve", "report", "evaluate", "check-content"])
@pytest.mark.parametrize(
    ("variable", "value", "rule"), SECRET_SETTINGS, ids=[f"{s[0]}-{i}" for i, s in enumerate(SECRET_SETTINGS)]
)
def test_a_settings_error_names_the_setting_and_rule_never_the_secret(
    monkeypatch: pytest.MonkeyPatch, command: str, variable: str, value: str, rule: str
) -> None:
    """Every command reads its settings one way: a secret that does not validate is reported by its
    variable and the rule it breaks, without pydantic's `input_value='...'` or even its length."""
    monkeypatch.setenv(variable, value)
    args = {"evaluate": ["--fhir-server", "http://127.0.0.1:1/fhir", "--patient", "p"]}.get(command, [])
    result = CliRunner().invoke(cli, [command, *args])
    assert result.exit_code == 2
    assert f"error: settings: {variable}: " in result.output and rule in result.output
    assert "s3cret" not in result.output and "input_value" not in result.output, result.output
    assert f"not {len(value)}" not in result.output


def _unusable_databases(tmp_path: Path) -> list[tuple[str, str]]:
    """An unreachable PostgreSQL (nothing listens on port 1) and a SQLite file that cannot be made
    (its folder would be a file), each with what the error line must name."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return [
        ("postgresql+asyncpg://cds:pg-s3cret@127.0.0.1:1/cds", "(postgresql+asyncpg://127.0.0.1:1/cds)"),
        (f"sqlite+aiosqlite:///{blocker}/db.sqlite", f"(sqlite+aiosqlite:///{blocker}/db.sqlite)"),
    ]


@pytest.mark.parametrize("command", ["serve", "demo", "report"])
@pytest.mark.parametrize("which", [0, 1], ids=["postgresql unreachable", "sqlite unwritable"])
def test_a_database_that_cannot_be_used_stops_the_start_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, which: int
) -> None:
    """Not "service ready" and then a long traceback: one line naming CDS_DATABASE_URL by its
    host (never its password), and exit 2."""
    url, named = _unusable_databases(tmp_path)[which]
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    monkeypatch.setenv("CDS_AUTH", "off")
    result = CliRunner().invoke(cli, [command, "--port", "1"] if command != "report" else [command])
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    if command == "report" and url.startswith("sqlite"):  # no file there: the report never makes one
        assert line.startswith("error: no feedback store at ") and "CDS_DATABASE_URL" in line
    else:
        assert line.startswith(f"error: the database at CDS_DATABASE_URL {named} cannot be used: ")
    assert "s3cret" not in result.output and "Traceback" not in result.output and "ready" not in result.output


@pytest.mark.anyio
async def test_ready_is_said_only_once_the_database_answered(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    app = make_app()
    assert "service ready" not in caplog.text  # building the app reaches nothing
    async with LifespanManager(app):
        messages = [r.getMessage() for r in caplog.records]
        assert messages[-1] == "service ready"
        assert any(m.startswith("Running upgrade") or "SQLiteImpl" in m for m in messages[:-1])
    caplog.clear()
    url, named = _unusable_databases(tmp_path)[0]
    with pytest.raises(DatabaseUnreachable):
        async with LifespanManager(make_app(database_url=url)):
            pass
    (line,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert line.getMessage().startswith(f"the database at CDS_DATABASE_URL {named} cannot be used: ")
    assert "service ready" not in caplog.text and "s3cret" not in caplog.text


def _no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("CDS_")]:
        monkeypatch.delenv(name)


def test_a_misspelled_setting_is_named_with_the_one_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CDS_* variable that is no setting was silently ignored; here the misspelling explains the
    refusal that follows it."""
    _no_settings_from_outside(monkeypatch)
    monkeypatch.setenv("CDS_TRUSTED_ISSUER_FILE", "/etc/cds/issuers.yaml")
    monkeypatch.setenv("cds_treshold_profile", "ada-2024")
    monkeypatch.setenv("CDS_NOTHING_LIKE_IT", "1")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2 and "CDS_AUTH=jwt needs CDS_TRUSTED_ISSUERS_FILE" in result.output
    warned = [json.loads(x)["message"] for x in result.output.splitlines() if x.startswith("{")]
    assert warned == [
        "CDS_NOTHING_LIKE_IT is no setting",
        "CDS_TRUSTED_ISSUER_FILE is no setting (did you mean CDS_TRUSTED_ISSUERS_FILE?)",
        "cds_treshold_profile is no setting (did you mean CDS_THRESHOLD_PROFILE?)",
    ]


def test_an_unknown_variable_forges_no_log_line() -> None:
    """From an attack run: a variable's name is the environment's, and a line break in it wrote a
    line of its own in a text log."""
    (said,) = startup.unknown_variables({"CDS_FOO\n2026-12-07 CRITICAL cds_service FORGED": ""})
    assert "\n" not in said and said.startswith("CDS_FOO\\n2026-12-07 CRITICAL")


def test_no_setting_of_the_repository_is_unknown() -> None:
    """Every CDS_* name the repository's tests, docs and deployment files set is a setting (none
    is CDS_-prefixed for another purpose), so that none of them is warned about."""
    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("docs/*.md"), root / "README.md", *root.glob("deploy/**/*.y*ml"), *root.glob("tests/*.py")]
    written = {m for f in files for m in re.findall(r"\bCDS_[A-Z0-9_]*[A-Z0-9]\b", f.read_text(encoding="utf-8"))}
    # this file's misspellings, the one docs/deployment.md shows, and a prefix in prose
    made_up = {"CDS_TRUSTED_ISSUER_FILE", "CDS_NOTHING_LIKE_IT", "CDS_TRESHOLD_PROFILE", "CDS_FHIR", "CDS_FOO"}
    assert len(written) > 20
    assert startup.unknown_variables(dict.fromkeys(written - made_up, "")) == []


# The CDS Hooks Sandbox's public key (its .well-known/jwks.json): its private key is published.
SANDBOX_KEY = {
    "kty": "EC",
    "use": "sig",
    "crv": "P-384",
    "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
    "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
    "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
    "alg": "ES384",
}
SANDBOX_JWKS_URL = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


def test_risky_settings_are_said_with_why() -> None:
    risky = startup.risky_settings(Settings(auth="off", fhir_allow_insecure=True), workers=3)
    assert len(risky) == 2
    assert risky[0].startswith("3 workers without CDS_REDIS_URL: each keeps its own jti replay cache")
    assert risky[1].startswith("CDS_FHIR_ALLOW_INSECURE=true: ")
    assert startup.risky_settings(Settings(auth="off", redis_url="redis://redis:6379/0"), workers=3) == []
    assert startup.risky_settings(Settings(auth="off"), workers=1) == []


def test_weak_or_shared_secrets_and_a_plain_http_base_are_said_by_name(tmp_path: Path) -> None:
    """From an attack run: each passed its setting's check (16 and 32 characters) and started
    without a word. Said by name, never with the value."""
    token, key = "a" * 16, "ab" * 20
    settings = Settings(auth="off", admin_token=token, pseudonym_key=key)
    assert [s.split(" ", 1)[0] for s in startup.risky_settings(settings, workers=1)] == [
        "CDS_ADMIN_TOKEN",
        "CDS_PSEUDONYM_KEY",
    ]
    shared = secrets.token_hex(32)
    said = startup.risky_settings(Settings(auth="off", admin_token=shared, pseudonym_key=shared), workers=1)
    assert said == ["CDS_ADMIN_TOKEN and CDS_PSEUDONYM_KEY are the same secret: whoever signs in to /admin holds both"]
    assert all(token not in s and key not in s and shared not in s for s in said)
    random = Settings(auth="off", admin_token=secrets.token_hex(16), pseudonym_key=secrets.token_hex(32))
    assert startup.risky_settings(random, workers=1) == []
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [{"iss": "https://ehr.example.org", "jwks_url": "https://e/j"}]}))
    for base, warned in (("http://cds.example.org", True), ("https://cds.example.org", False)):
        jwt_on = Settings(auth="jwt", trusted_issuers_file=issuers, public_base_url=base)
        said = startup.risky_settings(jwt_on, workers=1)
        assert any(s.startswith("CDS_PUBLIC_BASE_URL is plain http") for s in said) is warned


@pytest.mark.parametrize(
    ("issuer", "named"),
    [
        ({"jwks": {"keys": [{**SANDBOX_KEY, "kid": "renamed"}]}}, "the CDS Hooks Sandbox's public key"),
        ({"jwks_url": SANDBOX_JWKS_URL}, "the CDS Hooks Sandbox's key set"),
        ({"jwks_url": "https://ehr.example.org/jwks", "jku": [SANDBOX_JWKS_URL]}, "the CDS Hooks Sandbox's key set"),
        ({"jwks": {"keys": [ECKey.generate_key("P-384").as_dict(private=False)]}}, None),
        ({"jwks_url": "https://ehr.example.org/jwks"}, None),
    ],
    ids=["its key inline, by thumbprint", "its key set URL", "its key set as a jku", "another key", "another URL"],
)
def test_trusting_the_sandboxs_published_key_is_warned_about(
    tmp_path: Path, issuer: dict[str, Any], named: str | None
) -> None:
    """Anyone can sign with the Sandbox's key (CDS Hooks 2.0.1, "Trusting CDS Clients": the service
    trusts an issuer's key, so a key whose private half is public trusts everyone)."""
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": "https://ehr.example.org", **issuer}]}))
    settings = Settings(auth="jwt", trusted_issuers_file=path, public_base_url="https://cds.example.org")
    said = startup.risky_settings(settings, workers=1)
    if named is None:
        assert said == []
    else:
        assert said == [
            f"the trusted issuer https://ehr.example.org is trusted with {named}, whose private key is "
            "public: anyone can sign its tokens (tests and development only)"
        ]


def test_serve_says_each_risk_once_before_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Said by `serve` itself, before any worker starts (the start is stopped here by an unusable
    database, after the warnings)."""
    _no_settings_from_outside(monkeypatch)
    monkeypatch.setenv("CDS_AUTH", "off")
    monkeypatch.setenv("CDS_WORKERS", "2")
    monkeypatch.setenv("CDS_FHIR_ALLOW_INSECURE", "true")
    monkeypatch.setenv("CDS_DATABASE_URL", _unusable_databases(tmp_path)[0][0])
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    warned = [json.loads(x)["message"] for x in result.output.splitlines() if x.startswith("{")]
    assert [w.split(":", 1)[0] for w in warned] == [
        "authentication is off",
        "2 workers without CDS_REDIS_URL",
        "CDS_FHIR_ALLOW_INSECURE=true",
    ]
