"""The README's example request, posted to the service, gives the response the README shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppFactory, make_client
from tests.rules import without_uuids

pytestmark = pytest.mark.anyio
README = Path(__file__).resolve().parent.parent / "README.md"


def _block(marker: str) -> Any:
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)\n```", README.read_text(), re.S)
    assert match, f"no {marker} block in the README"
    return json.loads(match[1])


async def test_readme_example(make_app: AppFactory) -> None:
    request, expected = _block("example-request"), _block("example-response")
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200
    assert without_uuids(response.json()) == without_uuids(expected)


def test_readme_issuers_example_follows_the_schema(tmp_path: Path) -> None:
    """The Epic- and sandbox-style entries of the README load as an issuers file."""
    import yaml

    from cds_service.auth import load_issuers

    match = re.search(r"```yaml\n(issuers:.*?)```", README.read_text(), re.S)
    assert match
    document = yaml.safe_load(match[1])
    document["issuers"] = [i for i in document["issuers"] if "jwks" not in i]  # the inline one elides its key
    path = tmp_path / "issuers.yaml"
    path.write_text(yaml.safe_dump(document))
    issuers = load_issuers(path)
    assert "https://sandbox.cds-hooks.org" in issuers and len(issuers) == 2
