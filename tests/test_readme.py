"""What the README and docs/ show holds: the example request, posted to the service, gives the
response docs/example.md shows and the summaries the README shows; every issuers example of
docs/trust.md starts the service as written; and every relative link resolves."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.content.loader import Content
from cds_service.rendering.renderer import CONTENT_VERSION_EXTENSION
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


async def test_the_examples(make_app: AppFactory, content: Content) -> None:
    example = DOCS / "example.md"
    request, expected = _block(example, "example-request"), _block(example, "example-response")
    async with make_client(make_app(as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))) as client:
        response = await client.post("/cds-services/vitamin-d-cramps", json=request)
    assert response.status_code == 200
    for card in expected["cards"]:
        # the version's hash moves with any edit of cards/: the catalogue's version must match
        extension = card["extension"]
        assert extension[CONTENT_VERSION_EXTENSION].split("+")[0] == content.version.split("+")[0]
        extension[CONTENT_VERSION_EXTENSION] = content.version
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


def _issuers_examples() -> list[tuple[str, str]]:
    """Each issuers file docs/trust.md shows, as (suffix, text), verbatim; the Sandbox's among them."""
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", (DOCS / "trust.md").read_text(), re.S)
    examples = [(f".{kind}", text) for kind, text in blocks if "issuers" in text]
    assert any("iss: https://sandbox.cds-hooks.org\n" in text for _, text in examples)
    return examples


@pytest.mark.parametrize(("suffix", "text"), _issuers_examples())
async def test_every_issuers_example_starts_the_service(
    make_app: AppFactory, tmp_path: Path, suffix: str, text: str
) -> None:
    """Copied verbatim into an issuers file, each example starts the service with CDS_AUTH=jwt, and
    where it names the CDS Hooks Sandbox, a token signed as the Sandbox signs passes with no network
    (its key pinned inline: nothing is fetched, though the token names a jku). CDS Hooks 2.0.1,
    Trusting CDS Clients: the client signs a JWT with its private key and the service verifies it
    against the client's public key, from its JWK Set."""
    from cds_service.trust.issuers import load_issuers

    path = tmp_path / f"issuers{suffix}"
    path.write_text(text)
    issuers = load_issuers(path)
    app = make_app(auth="jwt", trusted_issuers_file=path, public_base_url="https://cds.example.org")
    async with make_client(app) as client:
        assert (await client.get("/cds-services")).status_code == 401
        if SANDBOX_ISSUER in issuers:
            token = {"Authorization": f"Bearer {_signed_as_the_sandbox('https://cds.example.org/cds-services')}"}
            assert (await client.get("/cds-services", headers=token)).status_code == 200


SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX = ROOT.parent / "shared" / "tools" / "cds-hooks-sandbox"


def _signed_as_the_sandbox(aud: str) -> str:
    """A JWT as the built Sandbox makes one (its app.bundle.js: the header, the claims and the
    published private key it signs with; see its SOURCE.md)."""
    import time
    import uuid

    from joserfc import jwt
    from joserfc.jwk import ECKey

    bundle = SANDBOX / "app.bundle.js"
    if not bundle.exists():
        pytest.skip(f"the CDS Hooks Sandbox is not at {SANDBOX}")
    pem = re.search(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", bundle.read_text())
    assert pem, "the Sandbox's signing key is no longer in its bundle"
    key = ECKey.import_key(pem[0].replace("\\n", "\n"))
    header = {
        "alg": "ES384",
        "typ": "JWT",
        "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
        "jku": "https://sandbox.cds-hooks.org/.well-known/jwks.json",
    }
    now = int(time.time())
    claims = {"iss": SANDBOX_ISSUER, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(header, claims, key, algorithms=["ES384"])


def test_a_placeholder_key_is_named_as_the_problem(tmp_path: Path) -> None:
    """docs/trust.md's inline key with its values elided ("...") stops the start saying why."""
    from cds_service.trust.issuers import IssuerConfigError, load_issuers

    path = tmp_path / "issuers.yaml"
    path.write_text('issuers: [{iss: https://ehr.example, jwks: {keys: [{kty: EC, crv: P-384, x: "...", y: "..."}]}}]')
    with pytest.raises(IssuerConfigError) as exc:
        load_issuers(path)
    assert "jwks is not a usable key set: a key's value is not base64url" in str(exc.value)
