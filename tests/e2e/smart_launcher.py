"""A harness for end-to-end tests of a SMART on FHIR app: the SMART reference launcher
(smart-launcher-v2, prebuilt in shared/tools/smart-launcher, see its SOURCE.md) as a real node
process on a free loopback port, in front of an open sekmet FHIR server holding the SMART sample
patients. The launcher is a stateless OAuth2 server: the `launch` parameter is the launch itself
(17 positional fields), so a test builds it with `launch_code` and opens `launch_url`.

Fixtures (session-scoped, offered to every e2e module by tests/e2e/conftest.py): `smart_fhir` (the
open FHIR server, loaded) and `launcher` (in front of it). The functions carry other names than the
fixtures, so that a test's `launcher` parameter shadows no import."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import FIXTURES, SMART_PATIENTS, FhirServer, load, start_fhir_server, transaction
from tests.servers import free_port, wait_until_serving

LAUNCHER = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "smart-launcher"
# Patient ids in tests/fixtures/smart-sample (the file r4-smart-8888801.json holds Patient/smart-8888801).
SAMPLE_PATIENTS: tuple[str, ...] = tuple(f"smart-{number}" for number in SMART_PATIENTS)
# The sample bundles hold no Practitioner, yet a launch asking for `openid fhirUser` needs a provider
# (or the launcher answers with its provider-login page): this one is loaded beside them.
PROVIDER = "smart-prac-1"
PUBLIC_CLIENT, CONFIDENTIAL_SYMMETRIC, CONFIDENTIAL_ASYMMETRIC = 0, 1, 2
PKCE_NONE, PKCE_AUTO, PKCE_ALWAYS = 0, 1, 2


@dataclass(frozen=True)
class Launcher:
    """A running launcher; `iss` is the FHIR base an app is launched with (and its `aud`)."""

    base: str
    process: subprocess.Popen[bytes]

    @property
    def iss(self) -> str:
        return f"{self.base}/v/r4/fhir"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.base}/v/r4/auth/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/v/r4/auth/token"

    def stop(self) -> None:
        """SIGTERM (start.sh execs node, so this is node itself); kill if it lingers."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def missing() -> str | None:
    """Why the launcher cannot run here, or None: the fixture skips (a failure in CI) rather than erroring."""
    if not (LAUNCHER / "start.sh").exists() or not (LAUNCHER / "backend" / "index.js").exists():
        return f"the SMART launcher is not at {LAUNCHER} (CI has shared/ beside the clone)"
    if shutil.which("node") is None:
        return "node is not on PATH (the SMART launcher needs node >= 16; apt-get install nodejs)"
    return None


def start_launcher(workdir: Path, fhir_base: str) -> Launcher:
    """Start the launcher proxying /v/r4/fhir to `fhir_base` (an open server: the launcher forwards
    no Authorization) and wait for its discovery document; a failure fails with the log's tail."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if name != "SSL_PORT"}  # SSL_PORT kills it (SOURCE.md)
    env |= {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "FHIR_SERVER_R4": fhir_base,
        "FHIR_SERVER_R3": "",
        "FHIR_SERVER_R2": "",
        "NODE_ENV": "production",  # "development" sends the login and picker pages to localhost:8444
        "SECRET": secrets.token_urlsafe(32),
    }
    log_path = workdir / "launcher.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["./start.sh"], cwd=LAUNCHER, env=env, stdout=log, stderr=subprocess.STDOUT)
    launcher = Launcher(base, process)
    try:
        wait_until_serving(f"{launcher.iss}/.well-known/smart-configuration", process, timeout_s=30)
    except AssertionError as error:
        launcher.stop()
        pytest.fail(f"the SMART launcher did not start ({error}): {log_path.read_text(errors='replace')[-2000:]}")
    return launcher


def launch_code(
    patient: str,
    *,
    provider: str = "",
    encounter: str = "NONE",
    client_type: int = PUBLIC_CLIENT,
    pkce: int = PKCE_ALWAYS,
    client_secret: str = "",
    jwks: str = "",
    jwks_url: str = "",
    auth_error: str = "",
    client_id: str = "",
    redirect_uris: str = "",
    scope: str = "",
) -> str:
    """The `launch` parameter of a provider-EHR launch of one patient with no page shown: base64url
    (unpadded) of the launcher's 17 positional fields. Encounter "NONE" by default, because "AUTO"
    fails against an upstream whose base has a path (sekmet's /fhir). `provider` (a Practitioner id)
    is needed when the app asks for `openid fhirUser` or `profile`. Empty restrictions allow any."""
    fields: list[str | int] = [
        0,  # 0 launch type: provider-ehr
        patient,  # 1 exactly one patient (several would open the picker)
        provider,  # 2 the user, fhirUser = Practitioner/<provider>
        encounter,  # 3 "NONE" or an Encounter id
        1,  # 4 skip_login
        1,  # 5 skip_auth
        0,  # 6 sim_ehr: no EHR frame
        scope,  # 7 allowed scopes
        redirect_uris,  # 8 allowed redirect URIs, comma separated
        client_id,  # 9 required client_id
        client_secret,  # 10 confidential-symmetric secret
        auth_error,  # 11 simulated error, e.g. auth_invalid_scope
        jwks_url,  # 12 confidential-asymmetric JWKS URL
        jwks,  # 13 confidential-asymmetric JWKS as a JSON string
        client_type,  # 14 0 public, 1 confidential-symmetric, 2 confidential-asymmetric
        pkce,  # 15 0 none, 1 auto, 2 always
        "",  # 16 upstream: the launcher's FHIR_SERVER_R4
    ]
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=").decode()


def launch_url(app_launch_url: str, launcher: Launcher, code: str) -> str:
    """What the EHR opens (as the launcher UI's Launch button does): the app's launch URL with
    `iss` and `launch` added to any query it already has."""
    parts = urlsplit(app_launch_url)
    query = urlencode({"iss": launcher.iss, "launch": code})
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def practitioner(pid: str = PROVIDER) -> dict[str, object]:
    return {"resourceType": "Practitioner", "id": pid, "name": [{"family": "Launcher", "given": ["Test"]}]}


@pytest.fixture(scope="session", name="smart_fhir")
def smart_fhir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    """An open sekmet (the launcher forwards without a bearer) holding the three SMART sample
    patients (SAMPLE_PATIENTS) with their Observations, and Practitioner/PROVIDER."""
    server = start_fhir_server(tmp_path_factory.mktemp("sekmet-smart"), bearer=False)
    try:
        for number in SMART_PATIENTS:
            load(server, json.loads((FIXTURES / "smart-sample" / f"r4-smart-{number}.json").read_text()))
        load(server, transaction(practitioner()))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", name="launcher")
def launcher_fixture(smart_fhir: FhirServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """The SMART launcher in front of `smart_fhir`; skipped (so failed in CI) if it or node is absent."""
    if reason := missing():
        pytest.skip(reason)
    running = start_launcher(tmp_path_factory.mktemp("smart-launcher"), smart_fhir.base)
    try:
        yield running
    finally:
        running.stop()
