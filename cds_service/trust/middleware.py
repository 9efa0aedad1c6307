"""The ASGI edge: every CDS endpoint needs a trusted JWT, checked before the body is read."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..json_bodies import OrjsonResponse
from ..metrics import JWT_REJECTIONS, reason_label
from ..protocol import operation_outcome
from . import Unauthorized
from .verifier import Verifier

logger = logging.getLogger("cds_service")


class RequireJwt:
    """Every CDS endpoint (discovery, services, feedback) needs a trusted JWT, checked before the
    body is read. CORS preflights pass: they carry no credentials by design."""

    def __init__(self, app: ASGIApp, public_base_url: str | None) -> None:
        self.app = app
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_cds_path(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        audience = (
            f"{self.public_base_url}{request.url.path}"
            if self.public_base_url
            else f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        )
        verifier: Verifier = request.app.state.verifier
        try:
            claims = await verifier.verify(request.headers.get("authorization"), audience)
        except Unauthorized as exc:
            JWT_REJECTIONS.labels(reason_label(exc.reason)).inc()
            logger.warning("unauthorized", extra={"path": request.url.path, "reason": exc.reason, "status": 401})
            body = operation_outcome("login", "unauthorized")
            await OrjsonResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        scope.setdefault("state", {})["issuer"] = claims["iss"]  # the EHR: it names its patients
        await self.app(scope, receive, send)


def _is_cds_path(path: str) -> bool:
    return path == "/cds-services" or path.startswith("/cds-services/")
