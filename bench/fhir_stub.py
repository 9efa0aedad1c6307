"""A FHIR server stub for workloads (c) and (d): canned search results for the typical patient.

Under `/fhir` every query is answered after BENCH_STUB_DELAY_S (50 ms, workload (c)); under
`/nodelay/fhir` at once (workload (d)), so that the service's own CPU bounds its throughput. On one
core this stub answers 4,000-7,000 queries a second, several times what (d) asks of it (six per hook
call); bench/run.py reports how busy its core was.
"""

from __future__ import annotations

import asyncio
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.workloads import patient_data

DELAY = float(os.environ.get("BENCH_STUB_DELAY_S", "0.05"))
DATA = {key: json.dumps(value).encode() for key, value in patient_data(40).items()}


def _key(request: Request) -> str:
    path, codes = request.url.path, request.query_params.get("code", "")
    if path.endswith("/Condition"):
        return "conditions"
    if path.endswith("/MedicationRequest"):
        return "medications"
    if path.endswith("/ServiceRequest"):
        return "pendingOrders"
    if "/Patient/" in path:
        return "patient"
    return "vitaminD" if "62292-8" in codes else "electrolytes"


async def fhir(request: Request) -> Response:
    await asyncio.sleep(DELAY)
    return Response(DATA[_key(request)], media_type="application/fhir+json")


async def fhir_now(request: Request) -> Response:
    return Response(DATA[_key(request)], media_type="application/fhir+json")


app = Starlette(routes=[Route("/fhir/{path:path}", fhir), Route("/nodelay/fhir/{path:path}", fhir_now)])
