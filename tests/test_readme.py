"""The README's example request, posted to the service, gives the response the README shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio
README = Path(__file__).resolve().parent.parent / "README.md"


def _block(marker: str) -> Any:
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)\n```", README.read_text(), re.S)
    assert match, f"no {marker} block in the README"
    return json.loads(match[1])


def _without_uuids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<uuid>" if k == "uuid" else _without_uuids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


async def test_readme_example(make_app: AppFactory) -> None:
    request, expected = _block("example-request"), _block("example-response")
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200
    assert _without_uuids(response.json()) == _without_uuids(expected)
