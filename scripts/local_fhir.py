"""`make fhir`: a local FHIR R4 server to try the service on, without Docker. It is the server the
end-to-end tests start (sekmet-fhir, installed with the test dependencies), open and on loopback
only, with a fresh database that Ctrl-C discards. The demo patients are loaded into it with
`cds-service load-demo` (dated as of today), and the commands that give their cards are printed.

    python scripts/local_fhir.py [--port 8090]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpx

BIN = Path(sys.executable).parent
PATIENT = "demo-deficient-cramps"  # leg cramps, furosemide, 25(OH)D 14 ng/mL: two cards
SERVICE = "http://127.0.0.1:8000"  # where `make run` serves


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for(base: str, sekmet: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    """Until the server answers its CapabilityStatement; exits with its log if it stops or is slow."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if sekmet.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"error: the FHIR server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def _shown(path: Path) -> str:
    """A program's path as a person would type it here: relative when under this folder."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def _commands(base: str) -> str:
    hook = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": base,
        "context": {"userId": "Practitioner/demo-clinician", "patientId": PATIENT},
    }
    cds = _shown(BIN / "cds-service")
    return (
        f"FHIR server: {base} (open, on loopback only; the demo patients loaded, dated as of today)\n\n"
        f"The cards of a demo patient (any id of cds_service/demo/patients.yaml will do):\n"
        f"  CDS_FHIR_ALLOW_INSECURE=true {cds} evaluate --fhir-server {base} --patient {PATIENT}\n\n"
        "A hook call without prefetch, as the CDS Hooks Sandbox makes it (the service reads the patient\n"
        "from this server), with `CDS_FHIR_ALLOW_INSECURE=true make run` serving:\n"
        f"  curl -s -X POST -H 'Content-Type: application/json' {SERVICE}/cds-services/vitamin-d-cramps"
        f" --data {shlex.quote(json.dumps(hook))}\n\n"
        "Ctrl-C stops the server and discards its data."
    )


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends it as Ctrl-C does: the server stopped, its folder removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090, help="the port to serve FHIR on (default 8090)")
    port = parser.parse_args().port
    sekmet_bin = BIN / "sekmet"
    if not sekmet_bin.exists():
        sys.exit(f"error: {sekmet_bin} not found: `make fhir` installs it (with the test dependencies)")
    if not _port_free(port):
        sys.exit(f"error: port {port} is in use: choose another with `make fhir PORT=...`")
    base = f"http://127.0.0.1:{port}/fhir"
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored (`&`)
    with tempfile.TemporaryDirectory(prefix="cds-local-fhir-") as folder:
        workdir = Path(folder)
        settings = "host: 127.0.0.1\nlog_inbound: false\nsimulator:\n  enabled: false\n"
        (workdir / "settings.yaml").write_text(settings)
        env = os.environ | {
            "SEKMET_CONFIG": str(workdir / "settings.yaml"),
            "SEKMET_BASE_URL": base,
            "SEKMET_PORT": str(port),
            "SEKMET_DB": str(workdir / "fhir.sqlite"),
        }
        log = workdir / "sekmet.log"
        with log.open("wb") as out:
            sekmet = subprocess.Popen([str(sekmet_bin), "serve"], cwd=workdir, env=env, stdout=out, stderr=out)
        try:
            _wait_for(base, sekmet, log)
            subprocess.run([sys.executable, "-m", "cds_service", "load-demo", "--fhir-server", base], check=True)
            print(_commands(base), flush=True)
            sekmet.wait()
            sys.exit(f"error: the FHIR server stopped:\n{log.read_text()[-2000:]}")
        except KeyboardInterrupt:
            print("\nstopped", flush=True)
        except subprocess.CalledProcessError:
            sys.exit("error: the demo patients could not be loaded")
        finally:
            sekmet.terminate()
            try:
                sekmet.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sekmet.kill()
                sekmet.wait()


if __name__ == "__main__":
    main()
