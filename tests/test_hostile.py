"""Hostile requests, each with the answer it must get: never a 5xx, never a fetch it should not
make. (FHIR servers that misbehave are in test_faults.py.)"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.builders import hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, make_client
from tests.servers import free_port
from tests.test_fetch import without_prefetch

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
JSON = {"Content-Type": "application/json"}
DEFICIENT = obs("62292-8", 12, "ng/mL", "2026-11-10")


def kinds(answer: httpx.Response) -> list[str]:
    return [c["source"]["topic"]["code"] for c in answer.json()["cards"]]


def diagnostics(answer: httpx.Response) -> str:
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


# --- the body itself --------------------------------------------------------------------------------


async def test_a_50_mb_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    answer = await client.post(URL, content=b" " * (50 * 1024 * 1024), headers=JSON)
    assert answer.status_code == 413 and "larger than" in diagnostics(answer)


async def test_a_50_mb_body_without_a_length_is_cut_off(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b" " * (1024 * 1024)

    answer = await client.post(URL, content=chunks(), headers=JSON)
    assert answer.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser should follow
        b'{"hook": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001,
        b'{"hook": "patient-view\xff\xfe"}',  # not UTF-8
        b'{"hook": "patient-view", "context": NaN}',  # not JSON
        b'{"hook": "patient-view",',  # cut short
        b"",
    ],
    ids=["nested-arrays", "nested-objects", "invalid-utf8", "nan", "truncated", "empty"],
)
async def test_bodies_that_are_not_json_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post(URL, content=body, headers=JSON)
    assert answer.status_code == 400
    diagnostics(answer)


async def test_nesting_that_json_allows_is_still_a_clean_answer(client: httpx.AsyncClient) -> None:
    request = hook_request([DEFICIENT], normal_electrolytes())
    request["context"]["deep"] = orjson.loads(b"[" * 500 + b"]" * 500)  # a field the hook does not define
    request["prefetch"]["conditions"] = {"resourceType": "Bundle", "entry": [{"resource": request["context"]["deep"]}]}
    answer = await client.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


async def test_duplicate_keys_take_the_last_value(client: httpx.AsyncClient) -> None:
    """As JavaScript's JSON.parse and most EHR stacks read them: the value written last counts."""
    request = orjson.dumps(hook_request([obs("62292-8", 50, "ng/mL", "2026-11-10")], normal_electrolytes()))
    body = request.replace(b'"value":50', b'"value":50,"value":12', 1)
    assert body != request
    answer = await client.post(URL, content=body, headers=JSON)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]
    assert "12 ng/mL" in answer.json()["cards"][0]["detail"]


# --- what the prefetch holds ----------------------------------------------------------------------


async def test_a_bundle_of_100000_entries(client: httpx.AsyncClient) -> None:
    filler = [{"resource": {"resourceType": "Observation"}}] * 100_000
    request = hook_request([DEFICIENT], normal_electrolytes())
    request["prefetch"]["vitaminD"]["entry"] += filler
    body = orjson.dumps(request)
    assert len(body) < 5 * 1024 * 1024  # under the default body limit: the service must read it all
    answer = await client.post(URL, content=body, headers=JSON)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


async def test_bundle_entries_that_are_not_resources_are_skipped(client: httpx.AsyncClient) -> None:
    junk: list[Any] = [1, "x", None, [], {}, {"resource": 5}, {"resource": {"no": "type"}}, {"resource": []}]
    request = hook_request([DEFICIENT], normal_electrolytes())
    request["prefetch"]["vitaminD"]["entry"] = junk + request["prefetch"]["vitaminD"]["entry"]
    answer = await client.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


async def test_a_bundle_of_nothing_but_junk_is_no_result(client: httpx.AsyncClient) -> None:
    request = hook_request([], normal_electrolytes())
    request["prefetch"]["vitaminD"] = {"resourceType": "Bundle", "entry": [1, "x", {"resource": 5}]}
    answer = await client.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == []


# --- fhirServer: where the service must never go --------------------------------------------------


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("file:///etc/passwd", "fhirServer refused"),
        ("http://169.254.169.254/latest/meta-data", "fhirServer refused"),  # cloud metadata
        ("https://169.254.169.254/fhir", "not a public address"),
        ("https://[::1]/fhir", "not a public address"),  # IPv6 loopback
        ("https://localhost/fhir", "not a public address"),  # a name that resolves to 127.0.0.1
        ("https://127.0.0.1:1/fhir", "not a public address"),
        ("https://10.0.0.8/fhir", "not a public address"),
    ],
)
async def test_fhir_servers_the_service_must_not_contact(client: httpx.AsyncClient, server: str, reason: str) -> None:
    answer = await client.post(URL, json=without_prefetch(server=server))
    assert answer.status_code == 412 and reason in diagnostics(answer)


async def test_a_name_resolving_to_loopback_is_refused_even_with_a_server_there(make_app: AppFactory) -> None:
    """A listening server on 127.0.0.1, named `localhost`: refused at connection, never reached."""
    with socket.socket() as listener:
        port = free_port()
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(0)
        async with make_client(make_app()) as client:
            answer = await client.post(URL, json=without_prefetch(server=f"https://localhost:{port}/fhir"))
        assert answer.status_code == 412 and "not a public address" in diagnostics(answer)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


@pytest.mark.parametrize("host", ["xn--", "a.xn--", "\uff41.xn--"])
async def test_a_prefetched_next_link_to_a_host_no_one_can_decode_leaves_the_bundle_as_given(
    fetching: httpx.AsyncClient, host: str
) -> None:
    """From an attack run: a partial Bundle's `next` link to a host IDNA cannot decode was a 500; it
    is another server's link, not followed, and the given page stands."""
    request = hook_request([DEFICIENT], normal_electrolytes(), conditions=[], medications=[])
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing is read from it
    request["prefetch"]["vitaminD"]["link"] = [{"relation": "next", "url": f"http://{host}/fhir/Observation?p=2"}]
    answer = await fetching.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


@pytest.mark.parametrize("host", ["xn--a", "a.xn--", "\uff41.xn--"])
async def test_a_fhir_server_whose_host_no_one_can_decode_is_refused_not_an_error(
    fetching: httpx.AsyncClient, host: str
) -> None:
    """An attack run on the SMART app (whose iss meets the same rules) found such a host a 500 where
    the URL is checked; a hook's fhirServer is refused before, as the request's own fault."""
    answer = await fetching.post(URL, json=without_prefetch(f"https://{host}/fhir"))
    assert answer.status_code == 400 and "fhirServer" in answer.text


async def test_prefetch_is_used_whatever_the_fhir_server(client: httpx.AsyncClient) -> None:
    """Full prefetch and a hostile fhirServer: nothing is fetched, so nothing is refused."""
    request = hook_request([DEFICIENT], normal_electrolytes(), conditions=[], medications=[])
    request["fhirServer"] = "file:///etc/passwd"
    answer = await client.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


# --- identifiers and tokens that would have been 500s, or worse -----------------------------------


@pytest.mark.parametrize(
    "patient",
    [
        *(".", "..", "...", "a/b", "../Patient", "p%2F1", "p?x=1", "p#1", "p 1", "x" * 65),
        *("$everything", "_history", "_search", "p1,p2", "..;", "..;x", "p;v=1"),  # from an attack run
    ],
)
async def test_a_patient_id_that_is_not_a_fhir_id_is_400(client: httpx.AsyncClient, patient: str) -> None:
    """`..` would make the Patient read a search of every patient on the EHR's server, with its token;
    `$everything` and `_history` a type-level operation, `p1,p2` a search of two patients, and `..;`
    a read of the base to a server that drops path parameters."""
    request = without_prefetch("https://ehr.example.org/fhir")
    request["context"]["patientId"] = patient
    answer = await client.post(URL, json=request)
    assert answer.status_code == 400 and "context.patientId" in diagnostics(answer)


@pytest.mark.parametrize(
    "patient", ["Tbt3KuCY0B5PSrJvCu2j-PlK.aiHsu2xUjUM8bWpetXoB", "1288992", "pat\u2011123", "x" * 64]
)
async def test_unusual_but_valid_patient_ids_pass(client: httpx.AsyncClient, patient: str) -> None:
    request = hook_request([DEFICIENT], normal_electrolytes(), patient=patient)
    for key in ("vitaminD", "electrolytes"):
        for entry in request["prefetch"][key]["entry"]:
            entry["resource"]["subject"]["reference"] = f"Patient/{patient}"
    answer = await client.post(URL, json=request)
    assert answer.status_code == 200 and kinds(answer) == ["vitd-deficient"]


@pytest.mark.parametrize("token", ["tök€n", "a b", "line\nbreak", ""])
async def test_an_access_token_that_cannot_be_a_header_is_400(client: httpx.AsyncClient, token: str) -> None:
    request = without_prefetch("https://ehr.example.org/fhir")
    request["fhirAuthorization"]["access_token"] = token
    answer = await client.post(URL, json=request)
    assert answer.status_code == 400 and "fhirAuthorization.access_token" in diagnostics(answer)
    assert token not in answer.text or not token


async def test_a_fhir_server_name_that_cannot_exist_is_412(client: httpx.AsyncClient) -> None:
    answer = await client.post(URL, json=without_prefetch(server=f"https://{'a' * 70}.example.org/fhir"))
    assert answer.status_code == 412 and "not a valid host name" in diagnostics(answer)
