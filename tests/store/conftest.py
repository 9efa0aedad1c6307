"""Databases for the store tests: a SQLite file, and a real PostgreSQL that this suite starts
with the machine's pg_ctl (as the `postgres` user when the suite runs as root, which pg_ctl
refuses, so pytest-postgresql's own launcher cannot be used here)."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.servers import free_port


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on a free loopback port; yield its server URL (no database part)."""
    pg_ctl, initdb = _pg_bin("pg_ctl"), _pg_bin("initdb")
    if pg_ctl is None or initdb is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); make test installs it as root")
    base = Path(tempfile.mkdtemp(prefix="cds-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=base)

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "60", "start")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


async def _create_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind (the service migrates it at start)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}"
    server: str = request.getfixturevalue("postgres_server")
    name = f"cds_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(server, name))
    return f"{server}/{name}"
