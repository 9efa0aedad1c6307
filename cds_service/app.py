"""create_app: the service put together from its parts. Routes, error bodies, start and stop
each live in a module of their own."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from . import __version__, openapi
from .admin.routes import add_admin
from .content.loader import Content, load_content
from .demo.routes import add_demo
from .errors import add_error_handlers
from .hook_routes import add_hook_routes
from .json_bodies import JsonRoute, OrjsonResponse
from .lifespan import lifespan
from .middleware import BodySizeLimit, ErrorGuard, RequestId
from .policies import build_policies
from .probes import add_probes
from .services.base import Clock
from .settings import Settings, jwt_needs
from .smart.launch import private_key
from .smart.routes import add_smart
from .trust.issuers import IssuerConfigError, IssuerSpec, load_issuers
from .trust.middleware import RequireJwt


def _now() -> datetime:
    return datetime.now(UTC)


def _trusted_issuers(settings: Settings) -> dict[str, IssuerSpec] | None:
    """The issuers to trust, or None when authentication is off (development only; a server process
    says so as it starts, cli.py)."""
    if settings.auth == "off":
        return None
    if settings.trusted_issuers_file is None:
        raise IssuerConfigError("CDS_AUTH=jwt needs CDS_TRUSTED_ISSUERS_FILE (or CDS_AUTH=off for development)")
    if settings.public_base_url is None:  # aud is never built from a request's Host header
        raise IssuerConfigError(jwt_needs("CDS_PUBLIC_BASE_URL"))
    return load_issuers(settings.trusted_issuers_file)


def create_app(
    settings: Settings | None = None, *, clock: Clock = _now, content: Content | None = None, demo: bool = False
) -> FastAPI:
    """Build the service. `clock` gives the instant recency is judged at; tests pin it. `demo` adds
    the demo page at /demo (`cds-service demo`)."""
    settings = settings or Settings()
    content = content or load_content(settings.content_dir)
    # The demo page plays the EHR and opens the app's demo mode from a card's link.
    base = settings.public_base_url
    trend_url = settings.smart_launch_url or (f"{base}/smart/launch" if demo and base is not None else None)
    issuers = _trusted_issuers(settings)
    policies = build_policies(content, settings, issuers, trend_url)
    key_file = settings.smart_private_key_file  # read here, once: a key that cannot be used stops the start
    smart_key = private_key(key_file) if key_file is not None and settings.smart_launch_url is not None else None
    app = FastAPI(
        title="Vitamin D and leg cramps CDS Hooks service",
        version=__version__,
        default_response_class=OrjsonResponse,
        lifespan=lifespan(settings, content, issuers, policies, smart_key),
        docs_url=None,  # served by openapi.add_docs, from the service itself
        redoc_url=None,
    )
    app.router.route_class = JsonRoute
    # No redirect from a trailing slash: its Location would be built from the request's Host header,
    # and a 307 makes a client send its body (patient data) to that host.
    app.router.redirect_slashes = False
    _add_middleware(app, settings, jwt=issuers is not None)
    add_error_handlers(app)
    add_hook_routes(app, policies, clock, content.version)
    openapi.install(app, policies.default.services.values())
    openapi.add_docs(app)
    add_probes(app, content.version)
    if demo:
        add_demo(app, content, settings.threshold_profile)
    if demo or settings.smart_launch_url is not None:
        add_smart(app, content, settings, policies, demo=demo)
    if settings.admin_token is not None:
        add_admin(app, settings.admin_token.get_secret_value(), clock, settings.public_base_url)
    return app


def _add_middleware(app: FastAPI, settings: Settings, jwt: bool) -> None:
    """Outermost last: CORS, then the request id (so every answer and log line below has it), then
    errors, then the JWT (before any body is read), then the size limit."""
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if jwt:
        app.add_middleware(RequireJwt, public_base_url=settings.public_base_url)
    app.add_middleware(ErrorGuard)
    app.add_middleware(RequestId)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            # Any request header an allowed origin asks for (X-Request-ID, an EHR's own): the origin
            # list is the gate, every call still needs its JWT, and no cookie is ever allowed.
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "X-CDS-Content-Version"],
        )
