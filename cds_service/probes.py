"""What an orchestrator asks of the process: alive, ready, and its Prometheus metrics."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .json_bodies import OrjsonResponse
from .metrics import exposition
from .protocol import Status
from .store.database import ping


def add_probes(app: FastAPI, content_version: str) -> None:
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
        return OrjsonResponse({"status": "ready", "content": content_version})

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "the text exposition format", "content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
