from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from joserfc.jwk import ECKey, RSAKey
from playwright.sync_api import Browser, sync_playwright

from cds_service.app import create_app
from cds_service.content.loader import Content, load_content
from cds_service.json_bodies import decode
from cds_service.settings import Settings
from cds_service.store.database import migrate, open_database
from tests.fhir_routes import FhirRoutes
from tests.rules import check_response
from tests.servers import service

AS_OF = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# Property tests and API fuzzing: no per-example deadline (the machine is shared and noisy); in CI
# a seeded run, so that a failure there can be replayed exactly.
hypothesis_settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "ci", parent=hypothesis_settings.get_profile("dev"), derandomize=True, database=None
)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in-process configure logging; undo it after each test."""
    loggers = [logging.getLogger(name) for name in ("", "cds_service", "httpx", "httpcore")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


# --- signing keys, as EHRs hold them (test_auth, test_scale_out) -------------------------------


@dataclass
class Keys:
    es256: ECKey
    es384: ECKey
    es512: ECKey
    rsa: RSAKey
    other_es384: ECKey  # trusted by nobody
    rotated_es384: ECKey  # published later

    def for_alg(self, alg: str) -> ECKey | RSAKey:
        return {"ES256": self.es256, "ES384": self.es384, "ES512": self.es512}.get(alg, self.rsa)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        es256=ECKey.generate_key("P-256", parameters={"kid": "es256"}),
        es384=ECKey.generate_key("P-384", parameters={"kid": "es384"}),
        es512=ECKey.generate_key("P-521", parameters={"kid": "es512"}),
        rsa=RSAKey.generate_key(2048, parameters={"kid": "rsa"}),
        other_es384=ECKey.generate_key("P-384", parameters={"kid": "es384"}),
        rotated_es384=ECKey.generate_key("P-384", parameters={"kid": "es384-2026"}),
    )


@pytest.fixture(scope="session")
def content() -> Content:
    return load_content()


@pytest.fixture
def fhir_routes() -> Iterator[FhirRoutes]:
    """A FHIR server on loopback answering from the routes a test declares; at the end every request
    must have met a route and (unless the test says otherwise) every route a request."""
    routes = FhirRoutes()
    with routes.running():
        yield routes
    routes.check()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


AppFactory = Callable[..., FastAPI]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the latest migration, copied for each app (faster than migrating each)."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite"

    async def build() -> None:
        engine = open_database(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
def make_app(content: Content, tmp_path: Path, migrated_sqlite: Path) -> AppFactory:
    """create_app with the clock pinned to AS_OF (or `as_of`) and settings given as keywords;
    authentication is off unless a test asks for it (tests/test_auth.py does); each app gets its
    own SQLite database unless `database_url` is given."""

    def factory(as_of: datetime = AS_OF, **settings: object) -> FastAPI:
        settings.setdefault("auth", "off")
        if "database_url" not in settings:
            database = tmp_path / f"feedback-{uuid.uuid4().hex}.sqlite"
            shutil.copy(migrated_sqlite, database)
            settings["database_url"] = f"sqlite+aiosqlite:///{database}"
        return create_app(Settings(**settings), clock=lambda: as_of, content=content)  # type: ignore[arg-type]

    return factory


async def _check_rules(response: httpx.Response) -> None:
    """Every successful hook call made in a test must obey the response rules."""
    request = response.request
    path = request.url.path
    is_hook = path.startswith("/cds-services/") and not path.endswith("/feedback")
    if request.method == "POST" and is_hook and response.status_code == 200:
        await response.aread()
        patient = decode(request.content)["context"]["patientId"]  # as the service reads it
        check_response(response.json(), patient)


@asynccontextmanager
async def make_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, with its lifespan (and so its FHIR client) running."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app, raise_app_exceptions=False),
            base_url="http://cds.test",
            event_hooks={"response": [_check_rules]},
        ) as client,
    ):
        yield client


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(make_app()) as c:
        yield c


@pytest.fixture
async def fetching(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service allowed to read from the `fhir_routes` server (http, on loopback)."""
    async with make_client(make_app(fhir_allow_insecure=True)) as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (CI=true, set by .ci/run) a skipped test fails: every check there must really run."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"


# --- a real browser: Debian's Chromium driven by Playwright (never a downloaded browser) -----------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium); make test installs it as root")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    """`cds-service demo` as a real process on a free port (what `make run` starts)."""
    with service("demo", {"CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite'}"}) as (base, _):
        yield base
