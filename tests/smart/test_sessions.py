"""The SMART app's server-side state: in process, and in a real Redis (Debian's redis-server,
started by pytest-redis) that every worker shares."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
import redis
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor

from cds_service.shared import SharedState
from cds_service.smart import sessions
from cds_service.smart.sessions import SessionStore

pytestmark = pytest.mark.anyio

_redis_process = factories.redis_proc(port=None)


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); make test installs it as root")
    return request.getfixturevalue("_redis_process")  # type: ignore[no-any-return]


@pytest.fixture
async def shared(redis_server: RedisExecutor) -> AsyncIterator[tuple[SharedState, SharedState, str]]:
    """Two workers' connections to one Redis."""
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    redis.Redis.from_url(url).flushdb()
    one, two = SharedState.connect(url), SharedState.connect(url)
    yield one, two, url
    await one.close()
    await two.close()


async def test_a_session_made_by_one_worker_is_read_by_another(shared: tuple[SharedState, SharedState, str]) -> None:
    one, two, url = shared
    await SessionStore(one).put("smart-session", "sid-1", {"access_token": "tok", "patient": "p1"}, 60)
    assert await SessionStore(two).get("smart-session", "sid-1") == {"access_token": "tok", "patient": "p1"}
    assert await SessionStore(two).get("smart-launch", "sid-1") is None  # kinds apart
    keys = redis.Redis.from_url(url).keys()
    assert keys and not any(b"sid-1" in k for k in keys)  # kept under a digest of the id, never the id


async def test_a_launch_taken_is_gone_for_every_worker(shared: tuple[SharedState, SharedState, str]) -> None:
    one, two, _ = shared
    await SessionStore(one).put("smart-launch", "state-1", {"verifier": "v"}, 60)
    taken = await asyncio.gather(*(SessionStore(s).get("smart-launch", "state-1", take=True) for s in (one, two)))
    assert sorted(taken, key=bool) == [None, {"verifier": "v"}]  # one of two racing callbacks gets it


async def test_redis_forgets_an_entry_when_it_expires(shared: tuple[SharedState, SharedState, str]) -> None:
    one, _, _ = shared
    await SessionStore(one).put("smart-session", "sid-2", {"a": 1}, 1)
    await asyncio.sleep(1.5)
    assert await SessionStore(one).get("smart-session", "sid-2") is None


async def test_in_process_entries_expire_serve_once_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(None)
    await store.put("smart-launch", "s", {"v": 1}, 60)
    assert await store.get("smart-launch", "s", take=True) == {"v": 1}
    assert await store.get("smart-launch", "s", take=True) is None
    now = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    await store.put("smart-session", "old", {"v": 2}, 10)
    now[0] += 11
    assert await store.get("smart-session", "old") is None
    monkeypatch.setattr(sessions, "_KEPT", 3)
    for n in range(5):
        await store.put("smart-session", f"id-{n}", {"n": n}, 60)
    kept = [await store.get("smart-session", f"id-{n}") for n in range(5)]
    assert kept == [None, None, {"n": 2}, {"n": 3}, {"n": 4}]  # the oldest go first
    for n in range(10):  # a flood of launches, which anyone may start, pushes out no session
        await store.put("smart-launch", f"state-{n}", {"n": n}, 60)
    assert await store.get("smart-session", "id-4") == {"n": 4}
