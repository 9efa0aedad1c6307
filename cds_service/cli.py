"""The `cds-service` command: serve, demo, evaluate, report."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import httpx
import orjson
import typer
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from . import logs, startup
from .app import create_app
from .content.loader import ContentError, load_content
from .demo import example_request, patients, transaction
from .http_protocol import BoundedHttpToolsProtocol
from .patient_run import PatientRunError, run_patient_view
from .rendering import CardRenderer
from .settings import Settings
from .startup import DatabaseUnreachable, open_migrated
from .store.report import KindReport, Report, build_report
from .store.report import as_json as report_json
from .trust.issuers import IssuerConfigError
from .validation import message

logger = logging.getLogger("cds_service")
cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Vitamin D and leg cramps CDS Hooks service.")

Host = Annotated[str, typer.Option(help="interface to listen on")]
Port = Annotated[int, typer.Option(help="port to listen on")]


def _serving(app: FastAPI, settings: Settings) -> FastAPI:
    """The app as a server process runs it: once started, everything alive (content, models,
    routes: some 140,000 objects) is moved out of the garbage collector's sight. A full collection
    then takes about 2 ms instead of 80, which was the p99 latency of a busy worker
    (bench/README.md). Only for server processes: tests build many apps in one process. A server
    without authentication says so as it starts (`evaluate`, which serves no one, does not)."""
    if settings.auth == "off":
        logger.warning("authentication is off: any caller is trusted (CDS_AUTH=off is for development only)")
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    return app


def _checked_app(demo: bool = False, **overrides: Any) -> tuple[FastAPI, Settings]:
    """The app from CDS_* settings, and the settings, built up front so that a bad content file or
    setting fails fast."""
    settings = _settings(**overrides)
    logs.configure(settings.log_format)
    startup.warn(startup.unknown_variables(os.environ))  # before a refusal a misspelling may explain
    try:
        settings.check_serving()
        return _serving(create_app(settings, demo=demo), settings), settings
    except ContentError as exc:
        typer.echo(f"error: clinical content: {exc}", err=True)
        raise typer.Exit(2) from None
    except IssuerConfigError as exc:
        typer.echo(f"error: trusted issuers: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:  # a setting that does not validate
        typer.echo(f"error: settings: {exc}", err=True)
        raise typer.Exit(2) from None


def _settings(**overrides: Any) -> Settings:
    """The settings from CDS_* variables (and `overrides`), read the one way every command reads
    them: one that does not validate stops the command (exit 2) with its name and its rule."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        typer.echo(f"error: settings: {_settings_problems(exc)}", err=True)
        raise typer.Exit(2) from None


def _settings_problems(exc: ValidationError) -> str:
    """Each setting that does not validate, by its variable's name, with the rule it breaks and
    never the value: pydantic's own text repeats the value (`input_value='short'`), and a secret
    with it (CDS_ADMIN_TOKEN, CDS_PSEUDONYM_KEY, a password in CDS_DATABASE_URL or CDS_REDIS_URL);
    even its length ("not 5") is left out."""
    return "; ".join(
        f"{'CDS_' + '.'.join(map(str, e['loc'])).upper() if e['loc'] else 'settings'}: {_rule(e)}" for e in exc.errors()
    )


def _rule(error: ErrorDetails) -> str:
    limits = error.get("ctx") or {}
    if error["type"] in ("too_short", "string_too_short") and "min_length" in limits:
        return f"must be at least {limits['min_length']} characters long"
    if error["type"] in ("too_long", "string_too_long") and "max_length" in limits:
        return f"must be at most {limits['max_length']} characters long"
    return message(error)


@cli.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes (default: CDS_WORKERS, 1)")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every HTTP request")] = True,
) -> None:
    """Run the service (settings from CDS_* environment variables). On SIGTERM it stops accepting
    connections and gives the calls in flight CDS_SHUTDOWN_GRACE_S to finish."""
    app, settings = _checked_app()
    workers = workers or settings.workers
    if workers > 1 and settings.smart_launch_url is not None and settings.redis_url is None:
        # A launch's callback and its page may reach any worker: they must share their sessions.
        typer.echo("error: settings: the SMART app with more than one worker needs CDS_REDIS_URL", err=True)
        raise typer.Exit(2)
    startup.warn(startup.risky_settings(settings, workers))
    grace = math.ceil(settings.shutdown_grace_s)
    # Reached and migrated once here: a database that cannot be used stops the start with one line
    # (not a traceback from each worker), and workers starting together do not race on a new one.
    _reach_database(settings.database_url)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker process writes its metrics here, and /metrics adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cds-service-metrics-")
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": access_log,
        "http": BoundedHttpToolsProtocol,
    }
    if workers == 1:
        uvicorn.run(app, timeout_graceful_shutdown=grace, **common)
    else:  # each worker process builds its own app from the same settings
        uvicorn.run(
            "cds_service.cli:worker_app", factory=True, workers=workers, timeout_graceful_shutdown=grace, **common
        )


@cli.command("check-content")
def check_content(
    content_dir: Annotated[
        Path | None,
        typer.Option("--content-dir", help="the folder to check (default: CDS_CONTENT_DIR, else the packaged cards/)"),
    ] = None,
) -> None:
    """Check a content folder as the service does at start, under every threshold profile: each
    file, the cross-references between them, and each card kind's templates against its inputs."""
    try:
        content = load_content(content_dir or _settings().content_dir)
        for name in content.thresholds.vitamin_d_profiles:
            CardRenderer(content, name)
    except ContentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"content {content.version}: {len(content.analytes.analytes)} analytes, "
        f"{len(content.catalogue.cards)} card kinds, {len(content.thresholds.vitamin_d_profiles)} profiles, "
        f"{len(content.catalogue.override_reasons)} override reasons: ok"
    )


@cli.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    print_request: Annotated[bool, typer.Option("--print-request", help="print the example request and exit")] = False,
) -> None:
    """Run the service with its demo patient, authentication off and CORS open, and print a
    ready-to-run example request."""
    body = orjson.dumps(example_request(date.today()), option=orjson.OPT_INDENT_2)
    if print_request:
        sys.stdout.buffer.write(body + b"\n")
        return
    people = {} if "CDS_LOG_FORMAT" in os.environ else {"log_format": "text"}  # the demo is read by people
    # Snoozing on, under a key that lives as long as the process (CDS_PSEUDONYM_KEY, if set, wins).
    key = {} if "CDS_PSEUDONYM_KEY" in os.environ else {"pseudonym_key": secrets.token_hex(32)}
    base = f"http://{host}:{port}"
    # The cards link to the SMART app here; the demo page opens its demo mode.
    where = {} if "CDS_PUBLIC_BASE_URL" in os.environ else {"public_base_url": base}
    app, settings = _checked_app(demo=True, auth="off", cors_origins=["*"], **people, **key, **where)
    startup.warn(startup.risky_settings(settings, workers=1))
    _reach_database(settings.database_url)
    path = Path(tempfile.gettempdir()) / "cds-service-demo-request.json"
    path.write_bytes(body)
    typer.echo(
        f"Demo page:  {base}/demo\n"
        f"Example:    {patients()[0]['about']}.\n"
        f"Discovery:  curl -s {base}/cds-services\n"
        "Hook call:  curl -s -X POST -H 'Content-Type: application/json' "
        f"--data @{path} {base}/cds-services/vitamin-d-cramps\n"
        f"API docs:   {base}/docs",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_config=None, http=BoundedHttpToolsProtocol)


@cli.command()
def evaluate(
    fhir_server: Annotated[str, typer.Option("--fhir-server", help="base URL of a FHIR R4 server")],
    patient: Annotated[str, typer.Option("--patient", help="the patient's id on that server")],
    token: Annotated[str | None, typer.Option("--token", help="a bearer token for the server, if it needs one")] = None,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="judge recency as of the end of this day")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the exact CDS Hooks response")] = False,
) -> None:
    """Run the patient-view service against a FHIR server and print its cards."""
    settings = _settings()
    moment = as_of.replace(hour=23, minute=59, second=59, tzinfo=UTC) if as_of else None
    err_console = Console(stderr=True)
    try:
        with err_console.status(f"Reading patient {patient} from {fhir_server} ..."):
            result = asyncio.run(run_patient_view(settings, fhir_server, patient, token, moment))
    except PatientRunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (ContentError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.response, indent=2))
        return
    console = Console()
    cards = result.response["cards"]
    if not cards:
        console.print("No cards: nothing actionable for this patient.")
        return
    colours = {"critical": "red", "warning": "yellow", "info": "blue"}
    table = Table(title=f"Cards for patient {_cell(patient)}")
    for column in ("indicator", "card", "summary", "suggestions"):
        table.add_column(column)
    for card in cards:
        labels = ", ".join(s["label"] for s in card.get("suggestions", [])) or "-"
        indicator = f"[{colours[card['indicator']]}]{card['indicator']}[/]"
        table.add_row(indicator, _cell(card["source"]["topic"]["code"]), _cell(card["summary"]), _cell(labels))
    console.print(table)
    for card in cards:
        console.print(Panel(Markdown(card.get("detail", "")), title=card["source"]["topic"]["code"]))


@cli.command("load-demo")
def load_demo(
    fhir_server: Annotated[str, typer.Option("--fhir-server", help="base URL of the FHIR R4 server to load")],
    token: Annotated[str | None, typer.Option("--token", help="a bearer token for the server, if it needs one")] = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help="seconds to wait for the server to come up")] = 0,
) -> None:
    """Put the demo patients into a FHIR server (one transaction of PUTs; loading again changes
    nothing), so that `evaluate` and hook calls without prefetch can read them there."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    base = fhir_server.rstrip("/")
    deadline = time.monotonic() + wait
    with httpx.Client(timeout=60, headers=headers) as http:
        while True:
            try:
                http.get(f"{base}/metadata").raise_for_status()
                break
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    typer.echo(f"error: {fhir_server} does not answer: {type(exc).__name__}", err=True)
                    raise typer.Exit(2) from None
                time.sleep(2)
        bundle = transaction(date.today())
        answer = http.post(base, content=orjson.dumps(bundle))
    if answer.status_code != 200:
        typer.echo(f"error: the server refused the transaction: HTTP {answer.status_code}", err=True)
        raise typer.Exit(2)
    patients_loaded = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    typer.echo(f"loaded {len(bundle['entry'])} resources ({patients_loaded} patients) into {fhir_server}")


class ReportColumn(NamedTuple):
    heading: str
    number: bool  # right-aligned
    value: Callable[[KindReport], str]


# The report table's columns, the kind first: a new figure is one line here, and both layouts show it.
REPORT_COLUMNS = [
    ReportColumn("kind", False, lambda k: k.kind),
    ReportColumn("content version", False, lambda k: k.content_version or "-"),
    ReportColumn("issuer", False, lambda k: k.issuer or "-"),
    ReportColumn("issued", True, lambda k: str(k.issued)),
    ReportColumn("silent", True, lambda k: str(k.silent)),
    ReportColumn("snoozed", True, lambda k: str(k.snoozed)),
    ReportColumn("fires", True, lambda k: f"{k.fire_rate:.1%}" if k.fire_rate is not None else "-"),
    ReportColumn("accepted", True, lambda k: str(k.accepted)),
    ReportColumn("overridden", True, lambda k: str(k.overridden)),
    ReportColumn("no feedback", True, lambda k: str(k.no_feedback)),
    ReportColumn("acceptance", True, lambda k: f"{k.acceptance_rate:.0%}" if k.acceptance_rate is not None else "-"),
    ReportColumn(
        "top override reasons",
        False,
        lambda k: ", ".join(f"{r} ({n})" for r, n in k.override_reasons.most_common(3)) or "-",
    ),
    ReportColumn(
        "accepted suggestions",
        False,
        lambda k: ", ".join(f"{s} ({n})" for s, n in k.accepted_suggestions.most_common()) or "-",
    ),
]


@cli.command()
def report(
    since: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only cards issued on or after this day (UTC)")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only cards issued on or before this day (UTC)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table, with the weeks")] = False,
) -> None:
    """Card outcomes per kind from the feedback store (CDS_DATABASE_URL)."""
    settings = _settings()
    _refuse_a_missing_store(settings.database_url)
    first, last = since.date() if since else None, until.date() if until else None
    try:
        result = asyncio.run(_report(settings.database_url, first, last))
    except DatabaseUnreachable as exc:  # names the store by its host, never its password
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (SQLAlchemyError, OSError) as exc:  # by its kind only: the text may hold the URL
        typer.echo(f"error: the feedback store (CDS_DATABASE_URL) cannot be read: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report_json(result, first, last), indent=2))
        return
    console = Console()
    span = (f" since {first}" if first else "") + (f" until {last}" if last else "")
    if not result.kinds:
        console.print(f"Card outcomes{span}: no cards issued.")
    for table in _report_tables(console, f"Card outcomes{span}", result.kinds):
        console.print(table)
    calls = ", ".join(f"{service} {n}" for service, n in sorted(result.calls.items())) or "none recorded"
    console.print(f"Hook calls answered with cards decided: {calls}. Fires: cards decided per call.")
    if result.feedback_on_unknown_cards:
        console.print(f"Feedback about cards this service did not issue: {result.feedback_on_unknown_cards}")


def _refuse_a_missing_store(url: str) -> None:
    """A SQLite file that is not there is a wrong CDS_DATABASE_URL or folder (its default path is
    relative): say so, rather than create an empty store and report nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    if not Path(parsed.database).is_file():
        typer.echo(
            f"error: no feedback store at {Path(parsed.database).resolve()}: set CDS_DATABASE_URL to the "
            "service's (a relative SQLite path is read from the current folder)",
            err=True,
        )
        raise typer.Exit(2)


def _report_tables(console: Console, title: str, kinds: list[KindReport]) -> list[Table]:
    """One table with a column per figure when it fits the console's width (long text wraps within
    its cell), else one table per kind with a row per figure: nothing is cut."""
    if not kinds:
        return []
    wide = Table(title=title)
    for column in REPORT_COLUMNS:
        wide.add_column(column.heading, justify="right" if column.number else "left", overflow="fold")
    for kind in kinds:
        wide.add_row(*(_cell(column.value(kind)) for column in REPORT_COLUMNS))
    unbounded = console.options.update_width(sys.maxsize)  # a measurement is capped at the width given
    if Measurement.get(console, unbounded, wide).minimum <= console.width:
        return [wide]
    narrow = []
    for kind in kinds:
        table = Table(title=f"{title}: {_cell(kind.kind)}", show_header=False)
        table.add_column(overflow="fold")
        table.add_column(overflow="fold")
        for column in REPORT_COLUMNS[1:]:  # the kind is the title
            table.add_row(column.heading, _cell(column.value(kind)))
        narrow.append(table)
    return narrow


# C0 and C1 control characters and DEL: escape sequences that would drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _cell(text: str) -> str:
    """Stored text (an override reason's display comes from the EHR) as a table cell: Rich markup
    escaped, so `[/x]` is text and `[link=...]` no link, and control characters dropped."""
    return escape(_CONTROL.sub("", text))


async def _report(url: str, since: date | None, until: date | None) -> Report:
    engine = await open_migrated(url)
    try:
        return await build_report(engine, since, until)
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    engine = await open_migrated(url)
    await engine.dispose()


def _reach_database(url: str) -> None:
    """The database opened and migrated before a server starts, or exit 2 with one line saying
    where (its host, never its password) and why."""
    try:
        asyncio.run(_migrate(url))
    except DatabaseUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def worker_app() -> FastAPI:
    """The app of one worker process when `serve --workers` runs several."""
    settings = _settings()
    settings.check_serving()  # `serve` checked them already; a worker started otherwise checks again
    logs.configure(settings.log_format)
    return _serving(create_app(settings), settings)


def main() -> None:
    cli()
