"""What the README and docs/ show holds: the example request, posted to the service, gives the
response docs/example.md shows and the summaries the README shows; the issuers example loads; and
every relative link resolves."""

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
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _block(page: Path, marker: str) -> Any:
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)\n```", page.read_text(), re.S)
    assert match, f"no {marker} block in {page.name}"
    return json.loads(match[1])


async def test_the_examples(make_app: AppFactory) -> None:
    example = DOCS / "example.md"
    request, expected = _block(example, "example-request"), _block(example, "example-response")
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200
    assert without_uuids(response.json()) == without_uuids(expected)
    summaries = [
        {"kind": c["source"]["topic"]["code"], "indicator": c["indicator"], "summary": c["summary"]}
        for c in response.json()["cards"]
    ]
    assert _block(README, "example-summaries") == summaries


def test_the_readme_reads_in_five_minutes() -> None:
    assert len(README.read_bytes()) < 12_000


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert all((page.parent / link).exists() for link in local), [
        link for link in local if not (page.parent / link).exists()
    ]


def test_readme_issuers_example_follows_the_schema(tmp_path: Path) -> None:
    """The Epic- and sandbox-style entries of docs/trust.md load as an issuers file."""
    import yaml

    from cds_service.trust.issuers import load_issuers

    match = re.search(r"```yaml\n(issuers:.*?)```", (DOCS / "trust.md").read_text(), re.S)
    assert match
    document = yaml.safe_load(match[1])
    document["issuers"] = [i for i in document["issuers"] if "jwks" not in i]  # the inline one elides its key
    path = tmp_path / "issuers.yaml"
    path.write_text(yaml.safe_dump(document))
    issuers = load_issuers(path)
    assert "https://sandbox.cds-hooks.org" in issuers and len(issuers) == 2
