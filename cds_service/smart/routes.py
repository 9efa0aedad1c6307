"""The SMART app's routes: the EHR launch and its callback, the page, the client's public keys, and
the demo's page that needs no EHR. Every failure is a page saying what happened, never a trace."""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..content.loader import Content
from ..fhir.client import FhirUnavailable
from ..fhir.facts import patient_name
from ..json_bodies import OrjsonResponse
from ..policies import Policies
from ..rendering import CardRenderer
from ..settings import Settings
from .launch import LAUNCH_TTL_S, LaunchRefused, SmartClient, error_code
from .page import TrendPage
from .reading import TrendReader

logger = logging.getLogger("cds_service")

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "cds_smart"  # the session's id
STATE_COOKIE = "cds_smart_state"  # the launch's state, until its callback
_MAX_PARAMETER = 4096  # a launch, code or state longer than this is no EHR's


def _csp(frame_origins: list[str]) -> str:
    ancestors = " ".join(["'self'", *frame_origins])
    return (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )


class TrendView(NamedTuple):
    """How the trend is read and drawn under one threshold profile."""

    reader: TrendReader
    page: TrendPage


def _views(content: Content, settings: Settings, policies: Policies) -> dict[str, TrendView]:
    """One view per threshold profile any EHR is answered under."""
    views: dict[str, TrendView] = {}
    for name in dict.fromkeys(p.profile for p in policies.all()):
        profile = content.profile(name)
        page = TrendPage(content, profile, CardRenderer(content, name))
        views[name] = TrendView(TrendReader(content, profile, settings), page)
    return views


def add_smart(app: FastAPI, content: Content, settings: Settings, policies: Policies, *, demo: bool = False) -> None:
    """The app at /smart. `demo`: /smart/demo/<patient> shows a demo patient's trend without an EHR.
    A launch is drawn under the threshold profile of the EHR whose FHIR server launched it (its
    `fhir_servers` in the trusted issuers file), as its cards were decided; else the settings'."""
    views = _views(content, settings, policies)
    default = views[policies.default.profile]

    def view_of(iss: str) -> TrendView:
        return views[policies.of_fhir_server(iss).profile]

    reader, page = default
    headers = {
        "Content-Security-Policy": _csp(settings.smart_frame_origins),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    router = APIRouter(prefix="/smart", include_in_schema=False)

    def refused(message: str, status: int) -> HTMLResponse:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Vitamin D and electrolyte trend</title>'
            '<link rel="stylesheet" href="/smart/static/trend.css"></head><body><main class="refused">'
            f"<h1>The trend cannot be shown</h1><p>{html.escape(message)}</p></main></body></html>"
        )
        return HTMLResponse(body, status, headers=headers)

    if demo:
        _add_demo(router, reader, page, refused, headers)
    if settings.smart_launch_url is not None:  # the app set up: an EHR can launch it
        _add_launch(router, settings, view_of, refused, headers)
    app.include_router(router)
    app.mount("/smart/static", StaticFiles(directory=STATIC), name="smart-static")


def _add_launch(
    router: APIRouter,
    settings: Settings,
    view_of: Callable[[str], TrendView],
    refused: Callable[[str, int], HTMLResponse],
    headers: dict[str, str],
) -> None:
    secure = (settings.public_base_url or "").startswith("https://")

    def set_cookie(answer: Response, name: str, value: str, *, max_age: int, path: str) -> None:
        # Inside an EHR's frame a cookie is sent only with SameSite=None, which needs https.
        samesite: Literal["none", "lax"] = "none" if secure else "lax"
        answer.set_cookie(name, value, max_age=max_age, path=path, httponly=True, secure=secure, samesite=samesite)

    def client(request: Request) -> SmartClient:
        return request.app.state.smart  # type: ignore[no-any-return]

    @router.get("/launch")
    async def launch(request: Request, iss: str = "", launch: str = "") -> Response:
        if not iss or not launch or len(iss) > _MAX_PARAMETER or len(launch) > _MAX_PARAMETER:
            return refused("open the app from the EHR: the launch gives no iss or launch parameter", 400)
        try:
            target, state = await client(request).begin(iss, launch)
        except LaunchRefused as exc:
            logger.info("smart launch refused", extra={"reason": exc.message})
            return refused(exc.message, exc.status)
        answer = RedirectResponse(target, 302, headers=headers)
        # The state is bound to this browser too, so that a callback link made by someone else (their
        # code, their state) signs no one in here.
        set_cookie(answer, STATE_COOKIE, state, max_age=LAUNCH_TTL_S, path="/smart/callback")
        return answer

    @router.get("/callback")
    async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        if error:
            said = error_code(error) or "an error"
            logger.info("smart sign-in refused by the EHR", extra={"reason": said})
            return refused(f"the EHR did not authorize the app ({said})", 403)
        if not code or not state or len(code) > _MAX_PARAMETER or len(state) > _MAX_PARAMETER:
            return refused("the EHR's answer holds no code or state", 400)
        if not secrets.compare_digest(request.cookies.get(STATE_COOKIE, "").encode(), state.encode()):
            return refused("this sign-in was not started in this browser (state); open the app from the EHR again", 400)
        try:
            session_id, handle, lifetime = await client(request).complete(state, code)
        except LaunchRefused as exc:
            logger.info("smart sign-in refused", extra={"reason": exc.message})
            return refused(exc.message, exc.status)
        page_path = f"/smart/app/{handle}"
        answer = RedirectResponse(page_path, 303, headers=headers)
        answer.delete_cookie(STATE_COOKIE, path="/smart/callback")
        # The session's cookie goes with its own page only: another launch in this browser, another
        # patient maybe, has its page and its cookie.
        set_cookie(answer, COOKIE, session_id, max_age=lifetime, path=page_path)
        return answer

    @router.get("/app/{handle}")
    async def trend_page(request: Request, handle: str) -> Response:
        session_id = request.cookies.get(COOKIE, "")
        fits = 0 < len(session_id) <= 64 and 0 < len(handle) <= 32
        try:
            session = await client(request).session(session_id, handle) if fits else None
        except LaunchRefused as exc:
            return refused(exc.message, exc.status)
        if session is None:
            return refused("the session has ended or was never opened; open the app from the EHR again", 401)
        fhir = request.app.state.fhir
        reader, page = view_of(session.iss)
        try:
            trend, name = await reader.fetch(fhir, session, datetime.now(UTC))
        except FhirUnavailable as exc:
            logger.info("smart trend not read", extra={"reason": exc.reason})
            return refused(f"the EHR's FHIR server did not give the results: {exc.reason}", 502)
        return HTMLResponse(page.render(trend, patient=name), headers=headers)

    @router.get("/jwks.json")
    async def jwks(request: Request) -> Response:
        keys = client(request).public_keys
        return OrjsonResponse(keys) if keys is not None else refused("this app is a public client: no keys", 404)


def _add_demo(
    router: APIRouter,
    reader: TrendReader,
    page: TrendPage,
    refused: Callable[[str, int], HTMLResponse],
    headers: dict[str, str],
) -> None:
    """/smart/demo/<patient>: a demo patient's trend, read from the demo's own data, with no EHR."""
    from ..demo.routes import demo_record

    @router.get("/demo/{patient_id}")
    async def demo_page(patient_id: str) -> Response:
        resources = demo_record(patient_id)
        patient = next((r for r in resources or () if r.get("resourceType") == "Patient"), None)
        if resources is None or patient is None:
            return refused("no such demo patient", 404)
        labs = [r for r in resources if r.get("resourceType") == "Observation"]
        medications = [r for r in resources if r.get("resourceType") in ("MedicationRequest", "Medication")]
        trend = reader.trend(labs, medications, patient["id"], datetime.now(UTC))
        return HTMLResponse(page.render(trend, patient=patient_name(patient), demo=True), headers=headers)
