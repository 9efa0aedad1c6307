"""The baseline: the same stack (FastAPI on uvicorn) receiving the same hook request, parsing its
JSON, and answering a fixed response of the size the service answers. What merely reading the
input costs."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request, Response


def make_app(response: bytes) -> FastAPI:
    app = FastAPI()

    @app.post("/cds-services/vitamin-d-cramps")
    async def hook(request: Request) -> Response:
        await request.json()
        return Response(response, media_type="application/json")

    return app


def from_environment() -> FastAPI:
    """For `uvicorn --factory`: answers the file that BENCH_BASELINE_RESPONSE names."""
    return make_app(Path(os.environ["BENCH_BASELINE_RESPONSE"]).read_bytes())
