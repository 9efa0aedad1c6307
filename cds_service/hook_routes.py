"""The CDS Hooks endpoints: discovery, each service's hook call, and its feedback."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request

from .errors import ERROR_RESPONSES, bad_request
from .fhir.prefetch import PrefetchUnavailable
from .issuing import issue
from .json_bodies import OrjsonResponse
from .metrics import FEEDBACK, HOOK_CALLS, HOOK_SECONDS, series
from .policies import Policies, Policy
from .protocol import (
    CdsResponse,
    Discovery,
    FeedbackAnswer,
    FeedbackRequest,
    HookRequest,
    RequestError,
    operation_outcome,
)
from .services.base import CdsService, Clock, definition, kind_of
from .store.feedback import FeedbackRefused

logger = logging.getLogger("cds_service")

# What a hook call answers, the kinds of the cards it shows, and what its log line adds.
Answer = tuple[OrjsonResponse, list[str], dict[str, Any]]

# The version of the clinical content (cards/) that decided an answer: on every hook call's answer
# and on discovery, as on every card (rendering/renderer.py) and in the record of each card issued.
CONTENT_VERSION_HEADER = "X-CDS-Content-Version"


def add_hook_routes(app: FastAPI, policies: Policies, clock: Clock, content_version: str) -> None:
    """Each route is the default policy's service in the OpenAPI document; a call is answered by
    its issuer's (policies.py), which may run another threshold profile or other silent kinds."""
    services = policies.default.services
    listing = Discovery(services=[definition(s) for s in services.values()]).dump()
    version = {CONTENT_VERSION_HEADER: content_version}

    @app.get("/cds-services", response_model=Discovery, summary="CDS Hooks discovery")
    async def discovery() -> OrjsonResponse:
        return OrjsonResponse(listing, headers=version)

    for service in services.values():
        _add_hook_call(app, service, policies, clock, version)
        _add_feedback(app, service, policies, clock)


def _add_hook_call(
    app: FastAPI, service: CdsService, policies: Policies, clock: Clock, version: dict[str, str]
) -> None:
    async def call(hook_request: HookRequest, request: Request) -> OrjsonResponse:
        hook_instance = str(hook_request.hookInstance)
        request.state.hook_instance = hook_instance
        policy = policies.of(getattr(request.state, "issuer", None))
        started = time.perf_counter()
        status = 500  # unless an answer comes: an exception is left to ErrorGuard
        kinds: list[str] = []
        log: dict[str, Any] = {}
        try:
            response, kinds, log = await _answer(policy, service.id, hook_request, request, clock)
            response.headers.update(version)
            status = response.status_code
            return response
        finally:
            _observe(service.id, policy.label, hook_instance, status, time.perf_counter() - started, kinds, log)

    app.add_api_route(
        f"/cds-services/{service.id}",
        call,
        methods=["POST"],
        response_model=CdsResponse,
        responses=ERROR_RESPONSES,
        summary=f"{service.hook}: {service.id}",
        name=service.id,
    )


async def _answer(policy: Policy, service_id: str, hook_request: HookRequest, request: Request, clock: Clock) -> Answer:
    service = policy.services[service_id]
    if hook_request.hook != service.hook:
        return bad_request("hook", f"this service answers {service.hook} only"), [], {}  # input never echoed
    now = clock()
    state = request.app.state
    fhir = state.fhir_views.get(policy.label, state.fhir)  # the issuer's own FHIR servers, if it lists them
    try:
        outcome = await service.answer(hook_request, now, fhir)
    except RequestError as exc:
        return bad_request(exc.field, exc.message), [], {}
    except PrefetchUnavailable as exc:
        return _unavailable(exc), [], {"unavailable": "; ".join(f"{m.key.name}: {m.reason}" for m in exc.missing)}
    shown, log = await issue(request, policy, service.id, hook_request, outcome, now)
    return OrjsonResponse(CdsResponse(cards=shown).dump()), [kind_of(c) for c in shown], log


def _unavailable(exc: PrefetchUnavailable) -> OrjsonResponse:
    """412, naming each key neither prefetched nor fetched, what it is for, and why."""
    missing = "; ".join(f"{m.key.name} ({m.key.purpose}): {m.reason}" for m in exc.missing)
    body = operation_outcome(
        "incomplete",
        f"data needed was neither prefetched nor fetched: {missing}",
        [f"prefetch.{m.key.name}" for m in exc.missing],
    )
    return OrjsonResponse(body, 412)


def _observe(
    service: str, issuer: str, hook_instance: str, status: int, elapsed: float, kinds: list[str], log: dict[str, Any]
) -> None:
    """The metrics and the one log line of every hook call, whatever its end."""
    series(HOOK_CALLS, service, str(status), issuer).inc()
    series(HOOK_SECONDS, service).observe(elapsed)
    logger.info(
        "hook call",
        extra={
            "hookInstance": hook_instance,
            "service": service,
            "issuer": issuer,
            "status": status,
            "ms": round(elapsed * 1000, 2),
            "cards": ",".join(kinds),
            **log,
        },
    )


def _add_feedback(app: FastAPI, service: CdsService, policies: Policies, clock: Clock) -> None:
    async def feedback(body: FeedbackRequest, request: Request) -> OrjsonResponse:
        received = clock()
        issuer = getattr(request.state, "issuer", None)
        label = policies.of(issuer).label
        try:
            stored = await request.app.state.store.store(service.id, body.feedback, received, issuer)
        except FeedbackRefused as exc:
            logger.info("feedback refused", extra={"service": service.id, "issuer": label, "status": 400})
            return bad_request(exc.field, str(exc))
        for entry in body.feedback:
            series(FEEDBACK, entry.outcome, label).inc()
        answer: dict[str, int] = {"received": len(body.feedback), "new": stored.new}
        if stored.foreign:  # said, so that an EHR knows its feedback acted on nothing
            answer["issued_to_another_ehr"] = stored.foreign
        logger.info("feedback", extra={"service": service.id, "issuer": label, **answer, "status": 200})
        return OrjsonResponse(answer)

    app.add_api_route(
        f"/cds-services/{service.id}/feedback",
        feedback,
        methods=["POST"],
        response_model=FeedbackAnswer,
        responses={code: ERROR_RESPONSES[code] for code in (400, 401, 413, 415, 500)},
        summary=f"feedback on {service.id} cards",
        name=f"{service.id}-feedback",
    )
