"""API fuzzing (schemathesis) from the service's own OpenAPI document, against the service running
as a real process with its feedback store.

Every operation gets generated requests, valid and invalid (a bounded run, seeded in CI: about
three thousand cases); every answer must be no 5xx, a documented status with a documented content
type and schema, and every 4xx an OperationOutcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service.app import create_app
from cds_service.settings import Settings
from tests.servers import service

EXAMPLES_PER_OPERATION = 200  # x 10 operations; the hook calls take about 0.15 s each to generate and check
CASES: Counter[str] = Counter()  # per operation, to report how many ran


# The document the service serves, built by the same code at collection (schemathesis cannot load a
# schema from a fixture under pytest 9); a test below checks the running service serves the same.
DOCUMENT = create_app(Settings(auth="off")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("fuzz") / "feedback.sqlite"
    settings = {
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        # Generated fhirServer URLs name random hosts: refuse them all before any DNS lookup.
        "CDS_FHIR_ALLOWED_HOSTS": "ehr.invalid",
    }
    with service("serve", settings, "--no-access-log") as (base, _):
        yield base


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION)
def test_every_operation(case: schemathesis.Case, base_url: str) -> None:
    CASES[case.operation.label] += 1
    response = case.call(base_url=base_url, timeout=30)
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    if 400 <= response.status_code < 500:
        assert response.json()["resourceType"] == "OperationOutcome"


def test_a_few_thousand_cases_ran() -> None:
    operations = sum(len(ops) for ops in DOCUMENT["paths"].values())
    if len(CASES) < operations:
        pytest.skip("only some operations were fuzzed in this run")
    print(f"{sum(CASES.values())} cases: {dict(CASES)}")
    assert sum(CASES.values()) >= 2000
    assert all(CASES[label] >= 150 for label in CASES if label.startswith("POST"))


def test_the_running_service_serves_this_document(base_url: str) -> None:
    assert httpx.get(f"{base_url}/openapi.json").json() == DOCUMENT


def test_the_document_describes_each_service_precisely() -> None:
    """What the fuzzing relies on: the hook, the context model and the prefetch keys per service."""
    body = DOCUMENT["paths"]["/cds-services/vitamin-d-order-select"]["post"]["requestBody"]
    request = body["content"]["application/json"]["schema"]
    assert request["properties"]["hook"] == {"enum": ["order-select"]}
    assert request["properties"]["context"] == {"$ref": "#/components/schemas/OrderSelectContext"}
    prefetch = request["properties"]["prefetch"]["anyOf"][0]["properties"]
    assert set(prefetch) == {"vitaminD", "electrolytes", "conditions", "medications"}
    assert "422" not in str(DOCUMENT["paths"])
