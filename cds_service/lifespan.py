"""What the app opens at start and closes at stop: the database and its writer, Redis, the FHIR
client, the JWT verifier. Kept on `app.state` for the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from .content.loader import Content
from .fhir.client import FhirClient, make_http_client
from .policies import Policies
from .pseudonyms import Pseudonyms
from .settings import Settings
from .shared import SharedState
from .smart.launch import ClientKey, SmartClient
from .smart.sessions import SessionStore
from .startup import DatabaseUnreachable, open_migrated
from .store.feedback import FeedbackStore
from .trust.issuers import IssuerSpec
from .trust.keys import KeyStore
from .trust.verifier import Verifier

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
logger = logging.getLogger("cds_service")


def _store(engine: AsyncEngine, content: Content, settings: Settings) -> FeedbackStore:
    catalogue = content.catalogue
    system = catalogue.systems.override_reason
    snooze_days = {(system, r.code): r.snooze_days for r in catalogue.override_reasons}
    offered = {kind: frozenset(r.code for r in catalogue.reasons(kind)) for kind in catalogue.cards}
    return FeedbackStore(engine, content.version, settings.threshold_profile, snooze_days, offered, system)


def lifespan(
    settings: Settings,
    content: Content,
    issuers: dict[str, IssuerSpec] | None,
    policies: Policies,
    smart_key: ClientKey | None = None,
) -> Lifespan:
    """`issuers` None: authentication is off, and no verifier is built. `policies`: each issuer's
    own FHIR servers get a client restricted to them. `smart_key`: the SMART app's client key, when
    it is a confidential client."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        try:
            engine = await open_migrated(settings.database_url)
        except DatabaseUnreachable as exc:  # `serve` and `demo` check first; this, any other start
            logger.error(str(exc))
            raise
        try:
            app.state.engine = engine
            app.state.store = store = _store(engine, content, settings)
            recorder = asyncio.create_task(store.run())
            app.state.shared = shared = SharedState.connect(settings.redis_url) if settings.redis_url else None
            key = settings.pseudonym_key
            app.state.pseudonyms = Pseudonyms(key.get_secret_value()) if key is not None else None
            app.state.snoozable = frozenset(k for k, spec in content.catalogue.cards.items() if spec.snooze)
            try:
                async with make_http_client(settings) as http:
                    app.state.fhir = fhir = FhirClient(http, settings)
                    app.state.fhir_views = {
                        p.label: fhir.restricted(p.fhir_servers) for p in policies.all() if p.fhir_servers
                    }
                    if settings.smart_launch_url is not None:
                        app.state.smart = SmartClient(settings, app.state.fhir, SessionStore(shared), smart_key)
                    if issuers is not None:
                        keys = KeyStore(app.state.fhir, shared=shared)
                        app.state.verifier = Verifier(settings, issuers, keys, shared=shared)
                    # Said only now that the database has answered and all is open.
                    ready = {
                        "content_version": content.version,
                        "profile": settings.threshold_profile,
                        "issuers": ",".join(p.label for p in policies.all()[1:]),  # their names, from the file
                    }
                    logger.info("service ready", extra=ready)
                    yield
            finally:
                recorder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recorder
                if shared is not None:
                    await shared.close()
        finally:
            await engine.dispose()

    return run
