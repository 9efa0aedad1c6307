"""The ASGI edge: every CDS endpoint needs a trusted JWT, checked before the body is read."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..json_bodies import OrjsonResponse
from ..metrics import JWT_REJECTIONS, reason_label
from ..protocol import operation_outcome
from ..settings import jwt_needs
from . import Unauthorized
from .verifier import MAX_AUTHORIZATION_BYTES, Verifier

logger = logging.getLogger("cds_service")


class RequireJwt:
    """Every CDS endpoint (discovery, services, feedback) needs a trusted JWT, checked before the
    body is read. CORS preflights pass: they carry no credentials by design.

    The audience expected is the configured public base URL joined with the path called, never
    anything the request says about its host (Host, X-Forwarded-*): without the URL there is no
    audience to check, and the app refuses to start."""

    def __init__(self, app: ASGIApp, public_base_url: str | None) -> None:
        if not public_base_url:
            raise ValueError(jwt_needs("CDS_PUBLIC_BASE_URL"))
        self.app = app
        self.public_base_url = public_base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_cds_path(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path  # the path only: the request's Host never names the audience
        verifier: Verifier = request.app.state.verifier
        try:
            claims = await verifier.verify(_authorization(scope), f"{self.public_base_url}{path}")
        except Unauthorized as exc:
            JWT_REJECTIONS.labels(reason_label(exc.reason)).inc()
            logger.warning("unauthorized", extra={"path": path, "reason": exc.reason, "status": 401, **exc.detail})
            body = operation_outcome("login", "unauthorized")
            await OrjsonResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        scope.setdefault("state", {})["issuer"] = claims["iss"]  # the EHR: it names its patients
        await self.app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    """The first Authorization header, its length checked on the raw bytes before anything of it
    is decoded, so that an oversized token costs nothing but its refusal."""
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            if len(value) > MAX_AUTHORIZATION_BYTES:
                expected = f"at most {MAX_AUTHORIZATION_BYTES} bytes"
                raise Unauthorized("Authorization header too long", expected=expected, received=f"{len(value)} bytes")
            return str(value.decode("latin-1"))
    return None


def _is_cds_path(path: str) -> bool:
    return path == "/cds-services" or path.startswith("/cds-services/")
