"""Two attacks of the third hardening round where time and memory are the point, replayed against a
real `cds-service serve` process: a valueString built to make a pattern backtrack (it held the
event loop 6.3 s, health checks too), and a FHIR page of 20 KB of gzip that inflated to millions of
empty entries (+589 MB for one call)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.builders import bundle, condition, hook_request, obs
from tests.fhir_routes import FhirRoutes
from tests.servers import service
from tests.test_fetch import route_fhir, without_prefetch
from tests.test_fhir_bounds import empty_entries, gzipped

URL = "/cds-services/vitamin-d-cramps"


def _peak_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def test_a_backtracking_value_text_neither_stalls_the_call_nor_the_health_check(tmp_path: Path) -> None:
    settings = {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}"}
    hostile = [
        obs("2823-3", None, None, "2026-11-20", valueString=" " * 24_000 + "a"),
        obs("2823-3", None, None, "2026-11-21", valueString="4" + " " * 24_000 + "4"),
        obs("17861-6", None, None, "2026-11-21", valueString="<" + " " * 24_000),
    ]
    request = hook_request([obs("62292-8", 40, "ng/mL")], hostile, conditions=[condition("R25.2")])
    with service("serve", settings) as (base, _):
        worst = [0.0]
        done = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                while not done.is_set():
                    started = time.monotonic()
                    client.get("/healthz")
                    worst[0] = max(worst[0], time.monotonic() - started)

        watcher = threading.Thread(target=probe)
        watcher.start()
        try:
            started = time.monotonic()
            for _ in range(5):
                answer = httpx.post(f"{base}{URL}", json=request, timeout=30)
                assert answer.status_code == 200
            took = time.monotonic() - started
        finally:
            done.set()
            watcher.join()
    assert took < 5 and worst[0] < 1.0, (took, worst[0])
    check = {c["source"]["topic"]["code"]: c for c in answer.json()["cards"]}["electrolytes-check"]
    assert "could not be interpreted" in check["detail"]  # the unreadable potassium is named


def test_a_gzip_bomb_page_costs_the_process_little_memory(tmp_path: Path, fhir_routes: FhirRoutes) -> None:
    settings = {
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'g.sqlite'}",
        "CDS_FHIR_ALLOW_INSECURE": "true",
        "CDS_FHIR_ALLOWED_HOSTS": "127.0.0.1",
    }
    route_fhir(
        fhir_routes,
        vitamin_d=bundle(obs("62292-8", 12, "ng/mL", "2026-11-10")),
        electrolytes=gzipped(empty_entries(6_500_000)),
    )
    with service("serve", settings) as (base, process):
        warm = httpx.post(f"{base}{URL}", json=hook_request([obs("62292-8", 12, "ng/mL")], []), timeout=30)
        assert warm.status_code == 200
        before = _peak_kb(process.pid)
        answer = httpx.post(f"{base}{URL}", json=without_prefetch(fhir_routes.base_url), timeout=60)
        grown_mb = (_peak_kb(process.pid) - before) / 1024
    assert answer.status_code == 200
    deficient = {c["source"]["topic"]["code"]: c for c in answer.json()["cards"]}["vitd-deficient"]
    assert "could not be read from the EHR's FHIR server" in deficient["detail"]  # said, not hidden
    assert grown_mb < 40, grown_mb  # was +589 MB


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_dates_of_a_megabyte_are_not_kept_by_the_process(tmp_path: Path) -> None:
    """60 dates of 1 MB kept 65 MB for the life of the process (a cache keyed by any date text):
    now a text longer than any FHIR date is refused unread, and the process keeps nothing of it."""
    settings = {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite'}"}
    with service("serve", settings) as (base, process), httpx.Client(base_url=base, timeout=30) as client:
        normal = hook_request([obs("62292-8", 12, "ng/mL")], [])
        for _ in range(5):  # the service warm, its caches and pools in place
            assert client.post(URL, json=normal).status_code == 200
        before = _rss_kb(process.pid)
        for i in range(60):
            date = f"2026-11-{i % 28 + 1:02d}T00:00:00." + "0" * 1_000_000 + "Z"  # a valid date, once
            answer = client.post(URL, json=hook_request([obs("62292-8", 12, "ng/mL", date)], []))
            assert answer.status_code == 200
        kept_mb = (_rss_kb(process.pid) - before) / 1024
    assert kept_mb < 12, kept_mb  # the unbounded cache kept 27 MB here (65 MB in the attack run)
