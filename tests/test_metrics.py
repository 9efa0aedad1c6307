"""/metrics, /healthz and /readyz."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from cds_service.metrics import JWT_REASONS, reason_label
from cds_service.store.database import open_database
from tests.builders import bundle, hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, make_client
from tests.fhir_routes import FhirRoutes, Reply
from tests.servers import service
from tests.test_fetch import route_fhir, without_prefetch

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match[1] or "").split(","))) == wanted:
            return float(match[2])
    return 0.0


async def test_counters_follow_a_scripted_session(fetching: httpx.AsyncClient, fhir_routes: FhirRoutes) -> None:
    client = fetching
    before = (await client.get("/metrics")).text
    deficient = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())
    for _ in range(3):
        assert (await client.post(SERVICE, json=deficient)).status_code == 200
    assert (await client.post(SERVICE, json={"hook": "patient-view"})).status_code == 400
    no_data = hook_request()
    del no_data["prefetch"]
    assert (await client.post(SERVICE, json=no_data)).status_code == 412
    # one call reads its data from a FHIR server: six queries, the electrolytes failing
    route_fhir(fhir_routes, bundle(obs("62292-8", 12, "ng/mL")), Reply(404))
    assert (await client.post(SERVICE, json=without_prefetch(fhir_routes.base_url))).status_code == 200
    card = (await client.post(SERVICE, json=deficient)).json()["cards"][0]
    entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}
    assert (await client.post(f"{SERVICE}/feedback", json={"feedback": [entry]})).status_code == 200
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = response.text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("cds_hook_calls_total", service="vitamin-d-cramps", status="200", issuer="none") == 5
    assert delta("cds_hook_calls_total", service="vitamin-d-cramps", status="412", issuer="none") == 1
    assert delta("cds_cards_total", kind="vitd-deficient", indicator="warning", issuer="none") == 5
    assert delta("cds_hook_duration_seconds_count", service="vitamin-d-cramps") == 6  # 400s never reach the route
    assert delta("cds_feedback_total", outcome="overridden", issuer="none") == 1
    assert delta("cds_fhir_queries_total", outcome="ok") == 5
    assert delta("cds_fhir_queries_total", outcome="4xx") == 1  # a status class, never the code
    assert delta("cds_fhir_query_duration_seconds_count") == 6


async def test_health_and_readiness(make_app: AppFactory) -> None:
    async with make_client(make_app()) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["content"].startswith("2026.12.2+")  # the content of the 2026-12-07 revision


async def test_not_ready_when_the_database_is_unreachable(make_app: AppFactory) -> None:
    app = make_app()
    async with make_client(app) as client:
        await app.state.engine.dispose()
        app.state.engine = open_database("postgresql+asyncpg://nobody@127.0.0.1:9/none")
        response = await client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "database unreachable"}
        await app.state.engine.dispose()


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    settings = {
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with service("serve", settings, "--workers", "2") as (base, _):
        deadline = time.monotonic() + 60
        request = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())

        def workers_seen() -> set[str]:
            return {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}

        sent = 0
        while sent < 20 or len(workers_seen()) < 2:  # new connections until both workers have answered
            assert httpx.post(f"{base}{SERVICE}", json=request).status_code == 200
            sent += 1
            assert time.monotonic() < deadline, f"only workers {workers_seen()} answered"
        with httpx.Client(base_url=base) as client:
            texts = [client.get("/metrics", headers={"Connection": "close"}).text for _ in range(4)]
        for text in texts:  # whichever worker answers, the sum is the same
            assert sample(text, "cds_hook_calls_total", service="vitamin-d-cramps", status="200", issuer="none") == sent


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("replay check unavailable: Error 111 connecting to 10.0.0.5:6379", "replay check unavailable"),
        ("key set unavailable: the answer is too large", "key set unavailable"),
        ("HTTP 503", "other"),
        ("jti replayed", "jti replayed"),
        ("no exp", "no exp"),
        ("<script> is not valid", "other"),
    ],
)
def test_a_reason_becomes_a_label_without_the_text_it_carries(reason: str, label: str) -> None:
    assert reason_label(reason) == label


def test_every_reason_trust_writes_is_a_known_label() -> None:
    """Each literal reason of an Unauthorized in trust/ (the words before any ": ") is one of the
    fixed label values, so that no refusal is counted as "other" by mistake."""
    root = Path(__file__).resolve().parents[1] / "cds_service" / "trust"
    written = {
        literal.split(": ", 1)[0]
        for path in root.glob("*.py")
        for literal in re.findall(r'Unauthorized\(f?"([^"{]+)', path.read_text(encoding="utf-8"))
    }
    assert len(written) > 20 and written <= JWT_REASONS, sorted(written - JWT_REASONS)
