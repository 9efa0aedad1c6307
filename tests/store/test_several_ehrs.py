"""One service, several EHRs (docs/trust.md, "Each EHR's own"): each issuer in the trusted issuers
file is answered under its own threshold profile and read only from its own FHIR servers; every
card carries the content version and profile that decided it; the store, the report, the metrics
and the log line keep each EHR, and each content version, apart. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from cds_service.content.loader import Content
from cds_service.hook_routes import CONTENT_VERSION_HEADER
from cds_service.rendering.renderer import CONTENT_VERSION_EXTENSION, PROFILE_EXTENSION
from cds_service.store.database import migrate, open_database
from cds_service.store.feedback import FeedbackStore
from cds_service.store.report import build_report
from cds_service.store.schema import issued_cards
from tests.builders import bundle, hook_request, obs
from tests.conftest import AS_OF, AppFactory, Keys, make_client
from tests.fhir_routes import FhirRoutes
from tests.store.tables import rows
from tests.store.test_bounds import BASE, EHR_A, EHR_B, ehr_token
from tests.store.test_recorder import card
from tests.test_fetch import route_fhir, without_prefetch
from tests.test_metrics import sample

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/vitamin-d-cramps"
FHIR_B = "https://fhir.ehr-b.example.org/r4"
# 15 ng/mL: deficient under the Endocrine Society's cut-points (below 20), inadequate under the
# IOM's (12 to 20): the two EHRs' profiles word it as two card kinds.
VITAMIN_D = [obs("62292-8", 15, "ng/mL", "2026-11-10")]
CHART = hook_request(VITAMIN_D, [])


def _issuers(tmp_path: Path, keys: Keys, fhir_a: str) -> Path:
    public = {"keys": [keys.es384.as_dict(private=False)]}
    path = tmp_path / "issuers.json"
    entries = [
        {"iss": EHR_A, "name": "ehr-a", "jwks": public, "fhir_servers": [fhir_a]},
        {"iss": EHR_B, "name": "ehr-b", "jwks": public, "fhir_servers": [FHIR_B], "threshold_profile": "iom-2011"},
    ]
    path.write_text(json.dumps({"issuers": entries}))
    return path


def _as(keys: Keys, issuer: str, path: str = SERVICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {ehr_token(keys.es384, issuer, BASE + path)}"}


def _kinds(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


async def test_two_ehrs_get_their_own_answers_and_the_report_keeps_them_apart(
    make_app: AppFactory,
    database_url: str,
    tmp_path: Path,
    keys: Keys,
    content: Content,
    fhir_routes: FhirRoutes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fhir_a = fhir_routes.base_url
    routes = route_fhir(fhir_routes, vitamin_d=bundle(*VITAMIN_D)).values()
    app = make_app(
        database_url=database_url,
        auth="jwt",
        public_base_url=BASE,
        trusted_issuers_file=_issuers(tmp_path, keys, fhir_a),
        fhir_allow_insecure=True,
    )
    caplog.set_level(logging.INFO, logger="cds_service")
    async with make_client(app) as client:
        before = (await client.get("/metrics")).text
        by_a = await client.post(SERVICE, json=CHART, headers=_as(keys, EHR_A))
        by_b = await client.post(SERVICE, json=CHART, headers=_as(keys, EHR_B))
        # A's call without prefetch is read from A's own FHIR server
        fetched_by_a = await client.post(SERVICE, json=without_prefetch(fhir_a), headers=_as(keys, EHR_A))
        # B names A's FHIR server: not one of B's, so not read (412: the results are needed), and
        # A's server never sees B's token
        asked = sum(r.call_count for r in routes)
        stray_b = await client.post(SERVICE, json=without_prefetch(fhir_a), headers=_as(keys, EHR_B))
        assert sum(r.call_count for r in routes) == asked and not fhir_routes.unmatched
        after = (await client.get("/metrics")).text

    assert _kinds(by_a) == _kinds(fetched_by_a) == ["vitd-deficient", "electrolytes-check"]
    assert _kinds(by_b) == ["vitd-insufficient"]  # the calcium check comes with a deficiency only
    assert stray_b.status_code == 412
    assert "not one of this EHR's FHIR servers" in stray_b.json()["issue"][0]["diagnostics"]
    for response, profile in ((by_a, "endocrine-2011"), (by_b, "iom-2011")):
        assert response.headers[CONTENT_VERSION_HEADER] == content.version
        for shown in response.json()["cards"]:
            assert shown["extension"] == {CONTENT_VERSION_EXTENSION: content.version, PROFILE_EXTENSION: profile}

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    hook = {"service": "vitamin-d-cramps"}
    assert delta("cds_hook_calls_total", **hook, status="200", issuer="ehr-a") == 2
    assert delta("cds_hook_calls_total", **hook, status="200", issuer="ehr-b") == 1
    assert delta("cds_hook_calls_total", **hook, status="412", issuer="ehr-b") == 1
    assert delta("cds_cards_total", kind="vitd-insufficient", indicator="info", issuer="ehr-b") == 1
    logged = [(r.issuer, r.status) for r in caplog.records if r.getMessage() == "hook call"]  # type: ignore[attr-defined]
    assert logged == [("ehr-a", 200), ("ehr-b", 200), ("ehr-a", 200), ("ehr-b", 412)]

    recorded = await rows(database_url, issued_cards.c.kind, issued_cards.c.issuer, issued_cards.c.profile)
    assert sorted(set(recorded)) == [
        ("electrolytes-check", EHR_A, "endocrine-2011"),
        ("vitd-deficient", EHR_A, "endocrine-2011"),
        ("vitd-insufficient", EHR_B, "iom-2011"),
    ]
    engine = open_database(database_url)
    try:
        report = await build_report(engine)
    finally:
        await engine.dispose()
    counted = {(k.kind, k.issuer): (k.content_version, k.issued, k.calls) for k in report.kinds}
    assert counted == {
        ("electrolytes-check", EHR_A): (content.version, 2, 2),
        ("vitd-deficient", EHR_A): (content.version, 2, 2),
        ("vitd-insufficient", EHR_B): (content.version, 1, 1),
    }


async def test_the_report_keeps_content_versions_apart(database_url: str) -> None:
    """A content update mid-week: each version's cards are counted, and their fire rate taken, over
    the calls answered under that version alone, never the two mixed."""
    engine = open_database(database_url)
    try:
        await migrate(engine)
        for version, calls, shown in (("2026.12.1+aaaa", 4, 1), ("2026.12.2+bbbb", 2, 2)):
            store = FeedbackStore(engine, version, "endocrine-2011")
            for _ in range(calls):
                store.count_call("vitamin-d-cramps", AS_OF, EHR_A)
            store.record_cards("vitamin-d-cramps", [card() for _ in range(shown)], AS_OF, issuer=EHR_A)
            await store.flush()
        report = await build_report(engine)
    finally:
        await engine.dispose()
    rates = {(k.kind, k.content_version, k.issuer): (k.issued, k.calls, k.fire_rate) for k in report.kinds}
    assert rates == {
        ("vitd-deficient", "2026.12.1+aaaa", EHR_A): (1, 4, 0.25),
        ("vitd-deficient", "2026.12.2+bbbb", EHR_A): (2, 2, 1.0),
    }
    assert report.calls == {"vitamin-d-cramps": 6}
