"""create_app: the HTTP edge. Routes, error bodies and logging; no clinical decision here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from . import __version__, openapi, validation
from .admin.routes import add_admin
from .content import Content, load_content
from .demo.routes import add_demo
from .fhir.client import FhirClient, make_http_client
from .fhir.prefetch import PrefetchUnavailable
from .json_bodies import OrjsonResponse, OrjsonRoute
from .metrics import CARDS, FEEDBACK, HOOK_CALLS, HOOK_SECONDS, SILENT_CARDS, SNOOZED_CARDS, exposition
from .middleware import BodySizeLimit, ErrorGuard
from .protocol import (
    Card,
    CdsResponse,
    Discovery,
    FeedbackAnswer,
    FeedbackRequest,
    HookRequest,
    OperationOutcome,
    RequestError,
    Status,
    operation_outcome,
)
from .pseudonyms import Pseudonyms
from .services.base import CdsService, Outcome, definition, kind_of
from .services.registry import build_services
from .settings import Settings
from .shared import SharedState
from .store.database import migrate, open_database, ping
from .store.feedback import FeedbackStore
from .trust.issuers import IssuerConfigError, IssuerSpec, load_issuers
from .trust.keys import KeyStore
from .trust.middleware import RequireJwt
from .trust.verifier import Verifier

logger = logging.getLogger("cds_service")

Clock = Callable[[], datetime]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "model": OperationOutcome}
    for status, text in [
        (400, "not a valid hook request, or a hook this service does not serve"),
        (404, "no such service"),
        (412, "data the service needs was neither prefetched nor fetched from fhirServer"),
        (401, "no trusted JWT for this URL"),
        (413, "request body over the size limit"),
        (500, "internal error"),
    ]
}
_ISSUE_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly"}


def _now() -> datetime:
    return datetime.now(UTC)


def _bad_request(field: str, message: str) -> OrjsonResponse:
    return OrjsonResponse(operation_outcome("invalid", f"{field}: {message}", [field]), 400)


def _trusted_issuers(settings: Settings) -> dict[str, IssuerSpec] | None:
    """The issuers to trust, or None when authentication is off (development only; a server process
    says so as it starts, cli.py)."""
    if settings.auth == "off":
        return None
    if settings.trusted_issuers_file is None:
        raise IssuerConfigError("CDS_AUTH=jwt needs CDS_TRUSTED_ISSUERS_FILE (or CDS_AUTH=off for development)")
    return load_issuers(settings.trusted_issuers_file)


def create_app(
    settings: Settings | None = None, *, clock: Clock = _now, content: Content | None = None, demo: bool = False
) -> FastAPI:
    """Build the service. `clock` gives the instant recency is judged at; tests pin it. `demo` adds
    the demo page at /demo (`cds-service demo`)."""
    settings = settings or Settings()
    content = content or load_content(settings.content_dir)
    services = build_services(content, settings)
    issuers = _trusted_issuers(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = open_database(settings.database_url)
        try:
            await migrate(engine)
            app.state.engine = engine
            reasons = content.catalogue
            snooze_days = {(reasons.systems.override_reason, r.code): r.snooze_days for r in reasons.override_reasons}
            app.state.store = store = FeedbackStore(engine, content.version, settings.threshold_profile, snooze_days)
            recorder = asyncio.create_task(store.run())
            app.state.shared = shared = SharedState.connect(settings.redis_url) if settings.redis_url else None
            key = settings.pseudonym_key
            app.state.pseudonyms = Pseudonyms(key.get_secret_value()) if key is not None else None
            app.state.snoozable = frozenset(k for k, spec in content.catalogue.cards.items() if spec.snooze)
            try:
                async with make_http_client(settings) as http:
                    app.state.fhir = FhirClient(http, settings)
                    if issuers is not None:
                        keys = KeyStore(app.state.fhir, shared=shared)
                        app.state.verifier = Verifier(settings, issuers, keys, shared=shared)
                    yield
            finally:
                recorder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recorder
                if shared is not None:
                    await shared.close()
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Vitamin D and leg cramps CDS Hooks service",
        version=__version__,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.router.route_class = OrjsonRoute
    # Outermost last: CORS, then errors, then the JWT (before any body is read), then the size limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if issuers is not None:
        app.add_middleware(RequireJwt, public_base_url=settings.public_base_url)
    app.add_middleware(ErrorGuard)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization"],
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        error = exc.errors()[0]
        field, message = validation.field_path(error["loc"]) or "body", validation.message(error)
        logger.info("invalid request", extra={"path": request.url.path, "field": field, "status": 400})
        return _bad_request(field, message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> OrjsonResponse:
        code = _ISSUE_CODES.get(exc.status_code, "processing")
        return OrjsonResponse(operation_outcome(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    listing = Discovery(services=[definition(s) for s in services.values()]).dump()

    @app.get("/cds-services", response_model=Discovery, summary="CDS Hooks discovery")
    async def discovery() -> OrjsonResponse:
        return OrjsonResponse(listing)

    for service in services.values():
        _add_service_routes(app, service, clock)
    openapi.install(app, services.values())

    @app.get("/healthz", summary="the process is alive", response_model=Status)
    async def healthz() -> OrjsonResponse:
        return OrjsonResponse({"status": "ok"})

    @app.get(
        "/readyz",
        summary="content loaded, database reachable, and Redis when CDS_REDIS_URL is set",
        response_model=Status,
        responses={503: {"description": "not ready", "model": Status}},
    )
    async def readyz(request: Request) -> OrjsonResponse:
        if not await ping(request.app.state.engine):
            return OrjsonResponse({"status": "database unreachable"}, 503)
        shared = request.app.state.shared
        if shared is not None and not await shared.ping():
            return OrjsonResponse({"status": "redis unreachable"}, 503)
        return OrjsonResponse({"status": "ready", "content": content.version})

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "the text exposition format", "content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    if demo:
        add_demo(app, content, settings.threshold_profile)
    if settings.admin_token is not None:
        add_admin(app, settings.admin_token.get_secret_value(), clock, settings.public_base_url)

    logger.info("service ready", extra={"content_version": content.version, "profile": settings.threshold_profile})
    return app


async def _snooze(
    request: Request, hook_request: HookRequest, cards: list[Card], now: datetime
) -> tuple[list[Card], list[Card], str | None, dict[UUID, str]]:
    """The cards to show, those an override snoozed, and the keyed pseudonyms of the patient and of
    the evidence of each card that could be snoozed, to record with them; with no
    CDS_PSEUDONYM_KEY, every card and nothing about the patient. Only a kind the content lets
    snooze can be held back, never a critical card, and a store that cannot be read holds back
    nothing: a card too many, never one lost."""
    pseudonyms: Pseudonyms | None = request.app.state.pseudonyms
    snoozable: frozenset[str] = request.app.state.snoozable
    candidates = [c for c in cards if kind_of(c) in snoozable and c.indicator != "critical"]
    patient = hook_request.context.get("patientId")
    if pseudonyms is None or not candidates or not isinstance(patient, str):
        return cards, [], None, {}
    fhir_server = str(hook_request.fhirServer) if hook_request.fhirServer is not None else ""
    subject = pseudonyms.subject(getattr(request.state, "issuer", None) or fhir_server, patient)
    evidence = {card.uuid: pseudonyms.evidence(kind_of(card), card.evidence) for card in candidates}
    try:
        snoozed = await request.app.state.store.snoozed(subject, now)
    except Exception as exc:  # the database is away
        logger.error("snoozes not read: every card shown", extra={"error": type(exc).__name__})
        snoozed = set()
    held = [c for c in candidates if (kind_of(c), evidence[c.uuid]) in snoozed]
    return [c for c in cards if c not in held], held, subject, evidence


async def _issue(
    request: Request, service: str, hook_request: HookRequest, outcome: Outcome, now: datetime
) -> tuple[list[Card], dict[str, Any]]:
    """The cards to show, once the snoozed ones are set apart; every card decided is counted and
    recorded (written behind), shown, silent or snoozed. Also what the log line says of them."""
    shown, snoozed, subject, evidence = await _snooze(request, hook_request, outcome.cards, now)
    store: FeedbackStore = request.app.state.store
    store.count_call(service, now)
    store.record_cards(service, shown, now, subject=subject, evidence=evidence)
    store.record_cards(service, outcome.silent, now, silent=True)
    store.record_cards(service, snoozed, now, snoozed=True)
    log = dict(outcome.log)
    for counter, cards, name in (
        (CARDS, shown, None),
        (SILENT_CARDS, outcome.silent, "silent"),
        (SNOOZED_CARDS, snoozed, "snoozed"),
    ):
        for card in cards:
            counter.labels(kind_of(card), card.indicator).inc()
        if name and cards:
            log[name] = ",".join(map(kind_of, cards))
    return shown, log


def _add_service_routes(app: FastAPI, service: CdsService, clock: Clock) -> None:
    async def call(hook_request: HookRequest, request: Request) -> OrjsonResponse:
        hook_instance = str(hook_request.hookInstance)
        request.state.hook_instance = hook_instance
        started = time.perf_counter()
        status = 500
        kinds: list[str] = []
        log: dict[str, Any] = {}
        try:
            if hook_request.hook != service.hook:
                status = 400
                return _bad_request("hook", f"this service answers {service.hook}, not {hook_request.hook}")
            now = clock()
            outcome = await service.evaluate(hook_request, now, request.app.state.fhir)
            shown, log = await _issue(request, service.id, hook_request, outcome, now)
            kinds = [kind_of(c) for c in shown]
            status = 200
            return OrjsonResponse(CdsResponse(cards=shown).dump())
        except RequestError as exc:
            status = 400
            return _bad_request(exc.field, exc.message)
        except PrefetchUnavailable as exc:
            status = 412
            log = {"unavailable": "; ".join(f"{m.key.name}: {m.reason}" for m in exc.missing)}
            missing = "; ".join(f"{m.key.name} ({m.key.purpose}): {m.reason}" for m in exc.missing)
            body = operation_outcome(
                "incomplete",
                f"data needed was neither prefetched nor fetched: {missing}",
                [f"prefetch.{m.key.name}" for m in exc.missing],
            )
            return OrjsonResponse(body, 412)
        finally:
            elapsed = time.perf_counter() - started
            HOOK_CALLS.labels(service.id, str(status)).inc()
            HOOK_SECONDS.labels(service.id).observe(elapsed)
            logger.info(
                "hook call",
                extra={
                    "hookInstance": hook_instance,
                    "service": service.id,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "cards": ",".join(kinds),
                    **log,
                },
            )

    app.add_api_route(
        f"/cds-services/{service.id}",
        call,
        methods=["POST"],
        response_model=CdsResponse,
        responses=_ERRORS,
        summary=f"{service.hook}: {service.id}",
        name=service.id,
    )

    async def feedback(body: FeedbackRequest, request: Request) -> OrjsonResponse:
        received = clock()
        new = await request.app.state.store.store(service.id, body.feedback, received)
        for entry in body.feedback:
            FEEDBACK.labels(entry.outcome).inc()
        logger.info("feedback", extra={"service": service.id, "entries": len(body.feedback), "new": new, "status": 200})
        return OrjsonResponse({"received": len(body.feedback), "new": new})

    app.add_api_route(
        f"/cds-services/{service.id}/feedback",
        feedback,
        methods=["POST"],
        response_model=FeedbackAnswer,
        responses={code: _ERRORS[code] for code in (400, 401, 413, 500)},
        summary=f"feedback on {service.id} cards",
        name=f"{service.id}-feedback",
    )
