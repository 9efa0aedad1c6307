"""`make fhir` (scripts/local_fhir.py): the local FHIR server starts without Docker, the demo
patients are loaded into it, the commands it prints give cards when run as printed, and Ctrl-C
stops it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_fhir() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The script as `make fhir PORT=...` runs it, and what it printed once it was ready."""
    port = free_port()
    script = subprocess.Popen(
        [sys.executable, "scripts/local_fhir.py", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert script.stdout is not None
    printed: list[str] = []
    while not printed or not printed[-1].startswith("Ctrl-C stops"):
        line = script.stdout.readline()
        assert line, f"the script ended before it was ready: {''.join(printed)[-2000:]}"
        printed.append(line.rstrip("\n"))
    try:
        yield script, printed
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()


def _command(printed: list[str], word: str) -> str:
    (line,) = [line.strip() for line in printed if line.startswith("  ") and word in line]
    return line


def test_the_printed_evaluate_gives_cards(local_fhir: tuple[subprocess.Popen[str], list[str]]) -> None:
    _, printed = local_fhir
    assert any("(16 patients)" in line for line in printed)  # `cds-service load-demo` ran
    evaluate = _command(printed, " evaluate ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")} | {"COLUMNS": "200"}
    done = subprocess.run(["bash", "-c", evaluate], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "vitd-deficient" in done.stdout and "electrolytes-check" in done.stdout


def test_the_printed_hook_call_gives_cards(local_fhir: tuple[subprocess.Popen[str], list[str]]) -> None:
    """As printed, against `CDS_FHIR_ALLOW_INSECURE=true make run` (here on a free port)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    _, printed = local_fhir
    curl = _command(printed, "curl ")
    with service("demo", {"CDS_FHIR_ALLOW_INSECURE": "true"}) as (base, _):
        call = curl.replace("http://127.0.0.1:8000", base)
        done = subprocess.run(["bash", "-c", call], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cards = json.loads(done.stdout)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["vitd-deficient", "electrolytes-check"]


def test_docs_show_the_printed_evaluate(local_fhir: tuple[subprocess.Popen[str], list[str]]) -> None:
    """docs/fhir.md's command is the one `make fhir` prints (there at its default port, from .venv)."""
    _, printed = local_fhir
    match = re.search(r"<!-- local-evaluate -->\s*```sh\n(.*?)\n```", (ROOT / "docs" / "fhir.md").read_text(), re.S)
    assert match
    evaluate = _command(printed, " evaluate ")
    program, base = evaluate.split()[1], evaluate.split("--fhir-server ")[1].split()[0]
    documented = match[1].replace(".venv/bin/cds-service", program).replace("http://127.0.0.1:8090/fhir", base)
    assert documented == evaluate


def test_ctrl_c_stops_it(local_fhir: tuple[subprocess.Popen[str], list[str]]) -> None:
    script, printed = local_fhir
    base = _command(printed, " evaluate ").split("--fhir-server ")[1].split()[0]
    assert httpx.get(f"{base}/metadata").status_code == 200
    script.send_signal(signal.SIGINT)
    assert script.wait(timeout=20) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/metadata")
