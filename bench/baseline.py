"""The floors: the same stack (FastAPI on uvicorn) receiving the same hook request, parsing its
JSON, and answering a fixed response of the size the service answers. What merely reading the
input costs: with the standard library's parser (Starlette's `request.json()`, the floor the
targets are set against), or with orjson alone (`BENCH_BASELINE_PARSER=orjson`)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from fastapi import FastAPI, Request, Response


def make_app(response: bytes, parser: str = "json") -> FastAPI:
    app = FastAPI()

    if parser == "orjson":

        @app.post("/cds-services/vitamin-d-cramps")
        async def hook_orjson(request: Request) -> Response:
            orjson.loads(await request.body())
            return Response(response, media_type="application/json")

    else:

        @app.post("/cds-services/vitamin-d-cramps")
        async def hook(request: Request) -> Response:
            await request.json()
            return Response(response, media_type="application/json")

    return app


def from_environment() -> FastAPI:
    """For `uvicorn --factory`: answers the file that BENCH_BASELINE_RESPONSE names, parsing with
    the parser BENCH_BASELINE_PARSER names (json, the default, or orjson)."""
    response = Path(os.environ["BENCH_BASELINE_RESPONSE"]).read_bytes()
    return make_app(response, os.environ.get("BENCH_BASELINE_PARSER", "json"))
