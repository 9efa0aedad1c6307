"""Several workers and replicas: the JWT replay cache and the key sets shared through a real Redis
(pytest-redis starts Debian's redis-server), and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor

from cds_service.fhir.client import FhirClient, make_http_client
from cds_service.settings import Settings
from cds_service.shared import SharedState
from cds_service.trust import Unauthorized
from cds_service.trust.keys import KeyStore
from tests.builders import obs
from tests.conftest import Keys
from tests.fault_server import SLOW_S, FaultServer
from tests.servers import service
from tests.test_auth import SANDBOX, JwksServer, bearer, hook, public_jwks, sandbox_token
from tests.test_fetch import without_prefetch

_redis_process = factories.redis_proc(port=None)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    """Debian's redis-server, started by pytest-redis; a skip naming the package where it is missing."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); make test installs it as root")
    return request.getfixturevalue("_redis_process")  # type: ignore[no-any-return]


pytestmark = pytest.mark.anyio
PATH = "/cds-services/vitamin-d-cramps"
TOKENS = 24


@pytest.fixture
def jwks(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer(public_jwks(keys.es384))
    yield server
    server.close()


@pytest.fixture
def two_workers(
    tmp_path: Path, redis_server: RedisExecutor, jwks: JwksServer
) -> Iterator[tuple[str, redis.Redis, Path]]:
    """`serve --workers 2` with CDS_REDIS_URL set; yields its base URL, a Redis client and the
    directory where each worker writes its metrics."""
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [{"iss": SANDBOX, "jwks_url": jwks.url, "jku": [jwks.url]}]}))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = {
        "CDS_AUTH": "jwt",
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:{port}",
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers),
        "CDS_REDIS_URL": url,
        "CDS_FHIR_ALLOW_INSECURE": "true",  # the JWKS is served over http on loopback
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}",
        "CDS_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    with service("serve", settings, "--no-access-log") as (base, _):
        yield base, client, metrics
    client.close()


def _call(base: str, token: str) -> int:
    """One hook call on a connection of its own, so that either worker may take it."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.post(PATH, json=hook(), headers=bearer(token)).status_code


def test_a_token_replayed_to_any_worker_is_refused_and_key_sets_are_fetched_once(
    two_workers: tuple[str, redis.Redis, Path],
    keys: Keys,
    jwks: JwksServer,
) -> None:
    base, client, metrics = two_workers
    tokens = [sandbox_token(keys, jwks.url, aud=f"{base}{PATH}") for _ in range(TOKENS)]
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda t: _call(base, t), tokens))
        again = list(pool.map(lambda t: _call(base, t), tokens))
    assert first == [200] * TOKENS
    assert again == [401] * TOKENS
    assert len(client.keys("cds-service:jti:*")) == TOKENS  # remembered in Redis, not in a worker
    assert jwks.fetches == 1  # the first worker to need it fetched it; the other read it from Redis
    workers = {p.name.split("_")[-1] for p in metrics.glob("counter_*.db")}
    assert len(workers) == 2, "both workers must have taken calls for this test to show anything"


def test_without_redis_the_service_is_not_ready_and_refuses_calls(
    two_workers: tuple[str, redis.Redis, Path],
    keys: Keys,
    jwks: JwksServer,
    redis_server: RedisExecutor,
) -> None:
    base, _, _ = two_workers
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    redis_server.stop()
    try:
        assert httpx.get(f"{base}/readyz").status_code == 503
        assert _call(base, sandbox_token(keys, jwks.url, aud=f"{base}{PATH}")) == 401  # fails closed
    finally:
        redis_server.start()


def test_sigterm_lets_the_call_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    data: dict[str, list[dict[str, Any]]] = {
        "patient": [{"resourceType": "Patient", "id": "fault-slow"}],
        "vitaminD": [obs("62292-8", 12, "ng/mL", "2026-11-10", patient="fault-slow")],
    }
    with FaultServer(data).running() as fhir:
        settings = {
            "CDS_AUTH": "off",
            "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}",
            "CDS_FHIR_ALLOW_INSECURE": "true",
            "CDS_FHIR_TIMEOUT_S": "5",
            "CDS_FHIR_DEADLINE_S": "8",
            "CDS_SHUTDOWN_GRACE_S": "10",
        }
        with service("serve", settings, "--no-access-log") as (base, process):
            slow = without_prefetch(server=fhir.base_url)
            slow["context"]["patientId"] = "fault-slow"  # every query answers after SLOW_S
            answers: list[httpx.Response] = []
            call = threading.Thread(target=lambda: answers.append(httpx.post(f"{base}{PATH}", json=slow, timeout=30)))
            started = time.monotonic()
            call.start()
            time.sleep(0.5)  # the call is waiting on the FHIR server
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{base}/healthz", timeout=2)  # no new connection once shutting down
            call.join(20)
            assert process.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
    assert [a.status_code for a in answers] == [200]  # the whole answer, not a dropped connection
    assert [c["source"]["topic"]["code"] for c in answers[0].json()["cards"]][0] == "vitd-deficient"
    assert time.monotonic() - started >= SLOW_S


async def test_a_failing_key_set_is_fetched_once_a_minute_by_all_workers(redis_server: RedisExecutor) -> None:
    """Two workers sharing Redis, tokens with unknown kids against a key set that never loads:
    one fetch between them, not one per worker or per token."""
    failing = JwksServer({"keys": "not a list"})
    settings = Settings(auth="off", fhir_allow_insecure=True)
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    redis.Redis.from_url(url).flushdb()
    clock = [time.time()]
    try:
        async with make_http_client(settings) as http:
            stores = [
                KeyStore(FhirClient(http, settings), clock=lambda: clock[0], shared=SharedState.connect(url))
                for _ in range(2)
            ]
            for i in range(20):
                with pytest.raises(Unauthorized):
                    await stores[i % 2].key(failing.url, f"kid-{i}")
            assert failing.fetches == 1
            clock[0] += 61
            for i in range(4):
                with pytest.raises(Unauthorized):
                    await stores[i % 2].key(failing.url, f"later-{i}")
            assert failing.fetches == 2
    finally:
        failing.close()
