"""The CDS Hooks endpoints: discovery, each service's hook call, and its feedback."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request

from .errors import ERROR_RESPONSES, bad_request
from .fhir.prefetch import PrefetchUnavailable
from .issuing import issue
from .json_bodies import OrjsonResponse
from .metrics import FEEDBACK, HOOK_CALLS, HOOK_SECONDS, series
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


def add_hook_routes(app: FastAPI, services: Mapping[str, CdsService], clock: Clock) -> None:
    listing = Discovery(services=[definition(s) for s in services.values()]).dump()

    @app.get("/cds-services", response_model=Discovery, summary="CDS Hooks discovery")
    async def discovery() -> OrjsonResponse:
        return OrjsonResponse(listing)

    for service in services.values():
        _add_hook_call(app, service, clock)
        _add_feedback(app, service, clock)


def _add_hook_call(app: FastAPI, service: CdsService, clock: Clock) -> None:
    async def call(hook_request: HookRequest, request: Request) -> OrjsonResponse:
        hook_instance = str(hook_request.hookInstance)
        request.state.hook_instance = hook_instance
        started = time.perf_counter()
        status = 500  # unless an answer comes: an exception is left to ErrorGuard
        kinds: list[str] = []
        log: dict[str, Any] = {}
        try:
            response, kinds, log = await _answer(service, hook_request, request, clock)
            status = response.status_code
            return response
        finally:
            _observe(service.id, hook_instance, status, time.perf_counter() - started, kinds, log)

    app.add_api_route(
        f"/cds-services/{service.id}",
        call,
        methods=["POST"],
        response_model=CdsResponse,
        responses=ERROR_RESPONSES,
        summary=f"{service.hook}: {service.id}",
        name=service.id,
    )


async def _answer(service: CdsService, hook_request: HookRequest, request: Request, clock: Clock) -> Answer:
    if hook_request.hook != service.hook:
        return bad_request("hook", f"this service answers {service.hook} only"), [], {}  # input never echoed
    now = clock()
    try:
        outcome = await service.answer(hook_request, now, request.app.state.fhir)
    except RequestError as exc:
        return bad_request(exc.field, exc.message), [], {}
    except PrefetchUnavailable as exc:
        return _unavailable(exc), [], {"unavailable": "; ".join(f"{m.key.name}: {m.reason}" for m in exc.missing)}
    shown, log = await issue(request, service.id, hook_request, outcome, now)
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
    service: str, hook_instance: str, status: int, elapsed: float, kinds: list[str], log: dict[str, Any]
) -> None:
    """The metrics and the one log line of every hook call, whatever its end."""
    series(HOOK_CALLS, service, str(status)).inc()
    series(HOOK_SECONDS, service).observe(elapsed)
    logger.info(
        "hook call",
        extra={
            "hookInstance": hook_instance,
            "service": service,
            "status": status,
            "ms": round(elapsed * 1000, 2),
            "cards": ",".join(kinds),
            **log,
        },
    )


def _add_feedback(app: FastAPI, service: CdsService, clock: Clock) -> None:
    async def feedback(body: FeedbackRequest, request: Request) -> OrjsonResponse:
        received = clock()
        issuer = getattr(request.state, "issuer", None)
        try:
            stored = await request.app.state.store.store(service.id, body.feedback, received, issuer)
        except FeedbackRefused as exc:
            logger.info("feedback refused", extra={"service": service.id, "status": 400})
            return bad_request(exc.field, str(exc))
        for entry in body.feedback:
            FEEDBACK.labels(entry.outcome).inc()
        answer: dict[str, int] = {"received": len(body.feedback), "new": stored.new}
        if stored.foreign:  # said, so that an EHR knows its feedback acted on nothing
            answer["issued_to_another_ehr"] = stored.foreign
        logger.info("feedback", extra={"service": service.id, **answer, "status": 200})
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
