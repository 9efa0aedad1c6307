"""`cds-service evaluate` against the real FHIR server: the cards, in both formats, and the errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds_service.cli import cli
from tests.e2e.conftest import FhirServer, start_fhir_server
from tests.test_demo_patients import EXPECTED


@pytest.fixture(autouse=True)
def _local_server_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("CDS_FHIR_ALLOW_INSECURE", "true")  # the test server is http on loopback
    monkeypatch.setenv("COLUMNS", "200")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["evaluate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cards_as_json(fhir_server: FhirServer) -> None:
    code, out, _ = run(
        "--fhir-server",
        fhir_server.base,
        "--patient",
        "smart-8888803",
        "--token",
        fhir_server.token,
        "--as-of",
        "2015-05-15",
        "--json",
    )
    assert code == 0
    cards = json.loads(out)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["vitd-deficient"]
    assert cards[0]["summary"].startswith("25(OH)D 5 ng/mL on 2015-04-29: vitamin D deficient")


def test_cards_as_a_table(fhir_server: FhirServer) -> None:
    code, out, _ = run(
        "--fhir-server",
        fhir_server.base,
        "--patient",
        "e2e-payne",
        "--token",
        fhir_server.token,
        "--as-of",
        "2026-11-25",
    )
    assert code == 0
    assert "electrolytes-abnormal" in out and "corrected Ca 10.8 mg/dL high on 2026-11-20" in out
    assert "Payne" in out and "ionized calcium settles" in out  # the detail, rendered from Markdown


def test_no_cards(fhir_server: FhirServer) -> None:
    code, out, _ = run(
        "--fhir-server",
        fhir_server.base,
        "--patient",
        "smart-8888801",
        "--token",
        fhir_server.token,
        "--as-of",
        "2016-03-01",
    )
    assert code == 0 and "No cards" in out


def test_unknown_patient(fhir_server: FhirServer) -> None:
    code, _, err = run("--fhir-server", fhir_server.base, "--patient", "nobody-here", "--token", fhir_server.token)
    assert code == 2 and "the patient was not found on the FHIR server (HTTP 404)" in err


def test_a_refused_token(fhir_server: FhirServer) -> None:
    code, _, err = run("--fhir-server", fhir_server.base, "--patient", "smart-8888803", "--token", "not-the-token")
    assert code == 2 and "refused the token (HTTP 401)" in err and "not-the-token" not in err


def test_an_unreachable_server() -> None:
    code, _, err = run("--fhir-server", "http://127.0.0.1:9/fhir", "--patient", "smart-8888803")
    assert code == 2 and "could not be read: connection error" in err


def test_the_address_rules_hold(fhir_server: FhirServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDS_FHIR_ALLOW_INSECURE")
    code, _, err = run("--fhir-server", fhir_server.base, "--patient", "smart-8888803")
    assert code == 2 and "fhirServer refused: not an https URL (CDS_FHIR_ALLOW_INSECURE=true" in err


@pytest.fixture
def empty_fhir_server(tmp_path: Path) -> Iterator[FhirServer]:
    """A server of its own: the demo's SMART patients, dated relative to today, would overwrite
    the dated ones the other tests read from the shared server."""
    server = start_fhir_server(tmp_path)
    yield server
    server.stop()


def test_load_demo_then_evaluate_a_demo_patient(empty_fhir_server: FhirServer) -> None:
    """What the docker-compose loader does to HAPI, done to a real FHIR server here."""
    fhir_server = empty_fhir_server
    args = ["load-demo", "--fhir-server", fhir_server.base, "--token", fhir_server.token]
    for _ in range(2):  # loading again changes nothing
        loaded = CliRunner().invoke(cli, args)
        assert loaded.exit_code == 0, loaded.output
        assert "(16 patients)" in loaded.stdout
    for pid in ("demo-deficient-cramps", "demo-high-supplement", "demo-normal"):
        code, out, _ = run("--fhir-server", fhir_server.base, "--patient", pid, "--token", fhir_server.token, "--json")
        assert code == 0
        assert [c["source"]["topic"]["code"] for c in json.loads(out)["cards"]] == EXPECTED[pid], pid


def test_load_demo_without_a_server() -> None:
    loaded = CliRunner().invoke(cli, ["load-demo", "--fhir-server", "http://127.0.0.1:1/fhir"])
    assert loaded.exit_code == 2 and "does not answer" in loaded.stderr
