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
