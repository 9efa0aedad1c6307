"""Prometheus metrics. With several worker processes (`serve --workers N`), each worker writes to
PROMETHEUS_MULTIPROC_DIR and /metrics adds them up (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import REGISTRY

# `issuer`: the calling EHR's name in the trusted issuers file ("none" with authentication off), a
# label of a fixed set whatever a caller sends: only a trusted issuer reaches a route.
HOOK_CALLS = Counter("cds_hook_calls_total", "Hook calls answered", ["service", "status", "issuer"])
HOOK_SECONDS = Histogram(
    "cds_hook_duration_seconds",
    "Time to answer a hook call",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CARDS = Counter("cds_cards_total", "Cards issued and shown", ["kind", "indicator", "issuer"])
SILENT_CARDS = Counter(
    "cds_silent_cards_total", "Cards decided for a kind that runs silent, never shown", ["kind", "indicator", "issuer"]
)
SNOOZED_CARDS = Counter(
    "cds_snoozed_cards_total",
    "Cards not shown: an override snoozed their kind for the patient",
    ["kind", "indicator", "issuer"],
)
FHIR_QUERIES = Counter("cds_fhir_queries_total", "FHIR queries made for missing prefetch", ["outcome"])
# Every value the outcome label of cds_fhir_queries_total may take: a fixed set, whatever a FHIR
# server answers (a status code becomes its class, never its number: a server could otherwise make
# some 900 series).
FHIR_OUTCOMES = frozenset(
    {
        "ok",
        "2xx",  # an HTTP answer other than 200, by class
        "3xx",
        "4xx",
        "5xx",
        "other_status",  # a status outside 200-599 (a server may send 600 or 999)
        "timeout",  # the query's timeout or the hook call's deadline
        "connection_error",
        "tls_error",
        "refused",  # the address policy, or a redirect, next link or query off the fhirServer
        "too_large",  # past the byte, JSON value or entry bound
        "invalid_answer",  # not JSON, not the FHIR resource asked for, a looping next link
        "other",
    }
)
FHIR_SECONDS = Histogram(
    "cds_fhir_query_duration_seconds", "Time of one FHIR query, all its pages", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4)
)
FEEDBACK = Counter("cds_feedback_total", "Feedback entries stored", ["outcome", "issuer"])
JWT_REJECTIONS = Counter("cds_jwt_rejections_total", "Calls refused for their JWT", ["reason"])


_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "jti", "sub", "tenant")
# Why a token is refused (trust/), as metric label values: a fixed set (tests/test_metrics.py checks
# that every reason trust/ writes is in it); a reason outside it is counted as "other".
JWT_REASONS = frozenset(
    {
        "no Authorization header",
        "Authorization header too long",
        "not a Bearer token",
        "not a compact JWS",
        "header is not base64url JSON",
        "payload is not base64url JSON",
        "header is not a JSON object",
        "payload is not a JSON object",
        "typ is not JWT",
        "alg not allowed",
        "crit header not supported",
        "no kid",
        "issuer not trusted",
        "key type does not match alg",
        "key curve does not match alg",
        "bad signature",
        "jku not on the issuer's list",
        "unknown kid",
        "key set unavailable",
        "key set is not a JWKS",
        "expired",
        "aud is not the URL called",
        "iat in the future",
        "not yet valid (nbf)",
        "lifetime too long",
        "tenant does not match",
        "replay check unavailable",
        "jti replayed",
        *(f"no {claim}" for claim in _CLAIMS),
        *(f"{claim} is not valid" for claim in _CLAIMS),
        *(f"{claim} is not a finite number" for claim in ("exp", "iat", "nbf")),
    }
)


@lru_cache(maxsize=1024)
def series(metric: MetricWrapperBase, *values: str) -> Any:
    """A metric's series for label values of a fixed set (services, statuses, card kinds): looked up
    once, not at every hook call (`labels` takes a lock and checks its values each time)."""
    return metric.labels(*values)


def reason_label(reason: str) -> str:
    """A refusal's reason as a label: the words before any ": " (after which a reason may carry an
    exception's text), one of JWT_REASONS, else "other": input never multiplies a metric's series."""
    label = reason.split(": ", 1)[0]
    return label if label in JWT_REASONS else "other"


def status_class(status: int) -> str:
    """An HTTP status as a label value: its class, "2xx" to "5xx", or "other_status"."""
    return f"{status // 100}xx" if 200 <= status <= 599 else "other_status"


def fhir_outcome(outcome: str) -> str:
    """The outcome label of a FHIR query: the value given if it is one of FHIR_OUTCOMES, else "other"."""
    return outcome if outcome in FHIR_OUTCOMES else "other"


def exposition() -> bytes:
    """The metrics in Prometheus text format, summed over worker processes when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
