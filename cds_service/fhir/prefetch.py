"""Prefetch resolution: per key, the data was given, is known to be empty, or must be fetched.

Mirrors HAPI FHIR's CDS Hooks module, which treats each prefetch key on its own with an explicit
failure mode: a required key that cannot be had answers 412; an optional one is left out and the
cards say which data was unavailable. All the keys to fetch go out at once, so a hook call costs
about its slowest query.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from ..protocol import HookRequest, RequestError
from .client import Deadline, FhirClient, FhirUnavailable

_TOKEN = re.compile(r"\{\{\s*(context\.[A-Za-z]+|userPractitionerId)\s*\}\}")


@dataclass(frozen=True)
class PrefetchKey:
    name: str
    template: str  # a FHIR query with {{context.*}} and {{userPractitionerId}} tokens
    purpose: str  # what the data is, for error messages and cards
    required: bool = True


@dataclass(frozen=True)
class Unavailable:
    key: PrefetchKey
    reason: str  # safe to log and to show: no URL, no PHI, no token


class PrefetchUnavailable(Exception):
    """Required data was neither prefetched nor fetched: the hook call answers 412."""

    def __init__(self, missing: list[Unavailable]) -> None:
        super().__init__(", ".join(m.key.name for m in missing))
        self.missing = missing


@dataclass(frozen=True)
class Prefetched:
    """The resolved keys: a resource (often a Bundle), None for "nothing there", absent if not had."""

    values: dict[str, dict[str, Any] | None]
    unavailable: tuple[Unavailable, ...]  # optional keys not had
    fetched: tuple[str, ...] = ()  # keys read from the FHIR server

    def missing(self, name: str) -> bool:
        return any(u.key.name == name for u in self.unavailable)

    def resources(self, name: str) -> tuple[list[Any], int]:
        """The resources under a key and the number of Bundle entries that held none."""
        value = self.values.get(name)
        if value is None:
            return [], 0
        return bundle_resources(value)


def bundle_resources(value: dict[str, Any]) -> tuple[list[Any], int]:
    """The resources of a Bundle (a resource alone is its own), and the number of entries that
    held none."""
    if value.get("resourceType") != "Bundle":
        return [value], 0
    entries = value.get("entry", ())
    resources = [e["resource"] for e in entries if isinstance(e, dict) and "resource" in e]
    return resources, len(entries) - len(resources)


def render(template: str, context: dict[str, Any]) -> str:
    """Fill a template's tokens, each value percent-encoded so it cannot change the query's shape.
    A token without a value (say no encounterId) makes the query impossible: FhirUnavailable."""
    literals, tokens = _parts(template)
    filled = [literals[0]]
    for token, literal in zip(tokens, literals[1:], strict=True):
        filled += (quote(_value(token, context), safe=""), literal)
    return "".join(filled)


@lru_cache(maxsize=64)
def _parts(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A template's text between its tokens, and its tokens: split once (the templates are the
    service's own, a handful)."""
    pieces = _TOKEN.split(template)
    return tuple(pieces[::2]), tuple(pieces[1::2])


def _value(token: str, context: dict[str, Any]) -> str:
    if token == "userPractitionerId":
        user = context.get("userId")
        found = (
            user.removeprefix("Practitioner/") if isinstance(user, str) and user.startswith("Practitioner/") else None
        )
    else:
        found = context.get(token.removeprefix("context."))
    if not isinstance(found, str) or not found:
        raise FhirUnavailable(f"the query needs {token}, which the request does not give")
    return found


def _has_next(value: Any) -> bool:
    links = value.get("link") if isinstance(value, dict) and value.get("resourceType") == "Bundle" else None
    return isinstance(links, list) and any(isinstance(x, dict) and x.get("relation") == "next" for x in links)


# FHIR's IssueType codes (hl7.org/fhir/R4/valueset-issue-type.html): the only text of an EHR's
# OperationOutcome that a reason repeats (its diagnostics could hold anything, patient data too).
_ISSUE_TYPES = frozenset(
    {
        *("invalid", "structure", "required", "value", "invariant"),
        *("security", "login", "unknown", "expired", "forbidden", "suppressed"),
        *("processing", "not-supported", "duplicate", "multiple-matches", "not-found", "deleted", "too-long"),
        *("code-invalid", "extension", "too-costly", "business-rule", "conflict"),
        *("transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled"),
        "informational",
    }
)


def _failed_prefetch(value: Any) -> str | None:
    """Why the EHR says it could not prefetch this key, or None. CDS Hooks 2.0.1 ("Prefetch
    tokens"): an EHR that meets errors prefetching sends OperationOutcome(s) "to prevent the CDS
    Service from incurring an unneeded follow-up query". That is an OperationOutcome in place of the
    value, or a Bundle holding one with an error or fatal issue (Epic's warning-level outcome
    entries beside its results are not failures)."""
    if not isinstance(value, dict):
        return None
    if value.get("resourceType") == "OperationOutcome":
        outcomes = [value]
    elif value.get("resourceType") == "Bundle" and isinstance(value.get("entry"), list):
        resources = (e.get("resource") for e in value["entry"] if isinstance(e, dict))
        outcomes = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "OperationOutcome"]
        outcomes = [o for o in outcomes if _has_error(o)]
        if not outcomes:
            return None
    else:
        return None
    codes = {i.get("code") for o in outcomes for i in _issues(o) if isinstance(i.get("code"), str)}
    named = sorted(code for code in codes if code in _ISSUE_TYPES)
    return "the EHR could not prefetch it (OperationOutcome" + (f": {', '.join(named)})" if named else ")")


def _issues(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    issues = outcome.get("issue")
    return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []


def _has_error(outcome: dict[str, Any]) -> bool:
    return any(i.get("severity") in ("error", "fatal") for i in _issues(outcome))


def _check_given(name: str, value: Any) -> None:
    field = f"prefetch.{name}"
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise RequestError(field, "is not a FHIR resource (nor null)")
    if value["resourceType"] == "Bundle" and not isinstance(value.get("entry", []), list):
        raise RequestError(f"{field}.entry", "must be an array")


async def resolve(
    keys: tuple[PrefetchKey, ...], request: HookRequest, fhir: FhirClient, deadline: Deadline | None = None
) -> Prefetched:
    """Sort each key into given, known empty (null), failed at the EHR (an OperationOutcome: not
    queried again) and to fetch (missing), fetch the latter concurrently, and fail only on
    required keys."""
    values, to_fetch, failed = _given(keys, request.prefetch or {})
    # A prefetched Bundle can be partial (the specification's own order-sign example holds one
    # result of two, with a `next` link): its following pages are read like a search's.
    partial = [key for key in keys if _has_next(values.get(key.name))]
    unavailable: list[Unavailable] = failed
    fetched: list[str] = []
    if to_fetch or partial:
        not_read, fetched = await _fetch(to_fetch, partial, values, request, fhir, deadline)
        unavailable += not_read
    if required := [u for u in unavailable if u.key.required]:
        raise PrefetchUnavailable(required)
    return Prefetched(values, tuple(unavailable), tuple(fetched))


def _given(
    keys: tuple[PrefetchKey, ...], given: dict[str, Any]
) -> tuple[dict[str, dict[str, Any] | None], list[PrefetchKey], list[Unavailable]]:
    """The values the EHR sent (None: it has no data for the key, CDS Hooks 2.0.1 "Prefetch
    tokens"), the keys it left out, and those it says it failed to prefetch."""
    values: dict[str, dict[str, Any] | None] = {}
    to_fetch: list[PrefetchKey] = []
    failed: list[Unavailable] = []
    for key in keys:
        if key.name not in given:
            to_fetch.append(key)
            continue
        if (reason := _failed_prefetch(given[key.name])) is not None:
            failed.append(Unavailable(key, reason))
            continue
        if given[key.name] is not None:
            _check_given(key.name, given[key.name])
        values[key.name] = given[key.name]
    return values, to_fetch, failed


async def _fetch(
    to_fetch: list[PrefetchKey],
    partial: list[PrefetchKey],
    values: dict[str, dict[str, Any] | None],
    request: HookRequest,
    fhir: FhirClient,
    deadline: Deadline | None,
) -> tuple[list[Unavailable], list[str]]:
    """Reads the missing keys and the rest of the partial Bundles into `values`, concurrently;
    what could not be read, and the keys that were."""
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    fhir_server = str(request.fhirServer) if request.fhirServer is not None else None
    try:
        server = fhir.server(fhir_server, token)
    except FhirUnavailable as exc:
        return [Unavailable(key, exc.reason) for key in to_fetch], []  # a partial Bundle stands as given
    deadline = deadline or fhir.deadline()

    async def fetch(key: PrefetchKey) -> dict[str, Any] | Unavailable:
        try:
            return await fhir.get(server, render(key.template, request.context), deadline)
        except FhirUnavailable as exc:
            return Unavailable(key, exc.reason)

    async def complete(key: PrefetchKey) -> dict[str, Any] | Unavailable:
        try:
            return await fhir.rest_of(server, values[key.name] or {}, deadline)
        except FhirUnavailable as exc:
            return Unavailable(key, exc.reason)

    unavailable: list[Unavailable] = []
    fetched: list[str] = []
    results = await asyncio.gather(*(fetch(key) for key in to_fetch), *(complete(key) for key in partial))
    for key, result in zip([*to_fetch, *partial], results, strict=True):
        if isinstance(result, Unavailable):
            if key not in partial:  # the given part of a partial Bundle is still data
                unavailable.append(result)
        else:
            values[key.name] = result
            fetched.append(key.name)
    return unavailable, fetched
