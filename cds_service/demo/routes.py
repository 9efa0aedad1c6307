"""The demo page (`cds-service demo` only): an EHR in a browser that calls the real service."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ..content.loader import Content
from ..content.wording import capitalize
from ..json_bodies import OrjsonResponse
from . import SMART_ABOUT, SMART_PATIENTS, patient_resources, patients, smart_patient, smart_resources

STATIC = Path(__file__).resolve().parent / "static"


def _display(content: Content, profile_name: str) -> dict[str, Any]:
    """What the page shows beside the cards: the profile's cut-offs, units, ranges and codes, all
    from the content, so that the page never says other than the cards."""
    profile = content.profile(profile_name)
    analytes = content.analytes
    return {
        "profile": {
            "name": profile_name,
            "label": profile.label,
            "deficient_below": profile.deficient_below,
            "insufficient_below": profile.insufficient_below,
            "insufficient_label": profile.insufficient_label,
            "high_above": profile.high_above,
            "very_high_above": profile.very_high_above,
        },
        "vitamin_d_units": analytes.units["vitamin_d"].factors(),
        "electrolytes": [
            {
                "name": capitalize(analytes.analytes[key].name),
                "codes": analytes.codes(key, "measured", "total"),
                "unit": analytes.units[key].canonical,
                "range": analytes.ranges[key].model_dump(),
            }
            for key in analytes.judged
        ],
        "vitamin_d_codes": analytes.codes("vitamin_d", "total", "proxy"),
    }


def _listing() -> list[dict[str, Any]]:
    listing = [{"id": p["id"], "about": p["about"], "name": p["patient"]["name"][0]} for p in patients()]
    return listing + [
        {"id": f"smart-{n}", "about": SMART_ABOUT, "name": smart_patient(n)["name"][0]} for n in SMART_PATIENTS
    ]


def demo_record(patient_id: str) -> list[dict[str, Any]] | None:
    """The demo patient's resources as of today; None for a patient the demo does not have."""
    today = date.today()
    spec = next((p for p in patients() if p["id"] == patient_id), None)
    if spec is not None:
        return patient_resources(spec, today)
    if patient_id.removeprefix("smart-") in SMART_PATIENTS:
        return smart_resources(patient_id.removeprefix("smart-"), today)
    return None


def _record(patient_id: str) -> dict[str, Any]:
    """The patient's resources as of today, as a Bundle; 404 for a patient the demo does not have."""
    found = demo_record(patient_id)
    if found is None:
        raise HTTPException(404, "no such demo patient")
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in found]}


def add_demo(app: FastAPI, content: Content, profile_name: str) -> None:
    router = APIRouter(prefix="/demo", include_in_schema=False)
    display = _display(content, profile_name)
    listing = _listing()

    @router.get("")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @router.get("/settings")
    async def settings() -> OrjsonResponse:
        return OrjsonResponse(display)

    @router.get("/patients")
    async def patient_list() -> OrjsonResponse:
        return OrjsonResponse(listing)

    @router.get("/patients/{patient_id}")
    async def record(patient_id: str) -> OrjsonResponse:
        return OrjsonResponse(_record(patient_id))

    app.include_router(router)
    app.mount("/demo/static", StaticFiles(directory=STATIC), name="demo-static")
