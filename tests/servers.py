"""Helpers for tests that start real servers as processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll `url` until it answers below 500; fail if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{process.args} did not answer {url} within {timeout_s:.0f} s")
        time.sleep(0.1)


@contextmanager
def service(
    command: str, settings: dict[str, str], *args: str, output: IO[bytes] | int = subprocess.DEVNULL
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`cds-service <command>` as a real process on a free port, with no CDS_* variable but those
    in `settings` (which may hold others, PROMETHEUS_MULTIPROC_DIR say; `{port}` in a value is the
    port chosen); yields its base URL and the process, and stops it (SIGTERM) afterwards."""
    port = free_port()
    chosen = {name: value.replace("{port}", str(port)) for name, value in settings.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")} | chosen
    proc = subprocess.Popen(
        [sys.executable, "-m", "cds_service", command, "--port", str(port), *args],
        env=env,
        stdout=output,
        stderr=output,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/healthz", proc, timeout_s=30)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
