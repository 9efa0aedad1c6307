"""The clinical content ships inside the installed package, not only beside the source."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_cards(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("cds_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cards").rglob("*") if p.is_file()}
    assert expected and {f"cds_service/{name}" for name in expected} <= names
    data = {
        p.relative_to(ROOT).as_posix()
        for folder in ("demo", "admin", "store/migrations")
        for p in (ROOT / "cds_service" / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    wanted = {
        "cds_service/demo/static/demo.js",
        "cds_service/demo/smart/SOURCE.md",
        "cds_service/admin/templates/page.html",
    }
    assert wanted <= data <= names
