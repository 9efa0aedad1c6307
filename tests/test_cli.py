"""The command line, including `demo` (what `make run` starts) as a real process over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from typer.testing import CliRunner

from cds_service.cli import cli
from cds_service.demo import example_request


def test_print_request_is_dated_relative_to_today() -> None:
    result = CliRunner().invoke(cli, ["demo", "--print-request"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == example_request(date.today())


def test_python_dash_m_works() -> None:
    done = subprocess.run([sys.executable, "-m", "cds_service", "--help"], capture_output=True, text=True, check=True)
    assert "serve" in done.stdout and "demo" in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_server() -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/cds-services", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        else:
            pytest.fail("the demo did not start within 30 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_serves_discovery_and_the_example(demo_server: str) -> None:
    services = httpx.get(f"{demo_server}/cds-services").json()["services"]
    assert [s["id"] for s in services] == ["vitamin-d-cramps"]
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
