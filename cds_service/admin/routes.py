"""/admin: the governance page, its login, and the report's exports (JSON, CSV).

The token is accepted as a bearer token (compared in constant time), or once through the login
form, which opens a server-side session (admin/gate.py) that signing out ends. Every
answer is `no-store`, and the page carries a content security policy that allows no script.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape

from ..json_bodies import OrjsonResponse
from ..protocol import operation_outcome
from ..services.base import Clock
from ..store.report import Report, as_csv, as_json, build_report
from .charts import weekly
from .gate import COOKIE, SESSION, Gate, Verdict

_DEFAULT_WEEKS = 12
_EARLIEST, _LATEST = date(1970, 1, 1), date(9998, 12, 31)
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Range(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def add_admin(app: FastAPI, token: str, clock: Clock, public_base_url: str | None = None) -> None:
    """`public_base_url`: behind a proxy that ends TLS, the https the browser sees (the session
    cookie is then Secure although the request reached the service over http)."""
    gate = Gate(token)
    router = APIRouter(prefix="/admin", include_in_schema=False)

    async def refusal(request: Request, html: bool) -> Response | None:
        """None when the admin token came with the request; otherwise the answer, 429 once the
        wrong tries have used up the window (the right token too then waits: a guess must not
        be told apart by its answer)."""
        if (wait := gate.wait_s()) is not None:
            return _too_many(wait, html)
        verdict = await gate.check(request, clock())
        if verdict is Verdict.GOOD:
            return None
        return _login(401) if html else _refused()

    async def report_for(request: Request) -> tuple[Report, date, date]:
        since, until = _range(request, clock().astimezone(UTC).date())
        await request.app.state.store.flush()  # this process's latest calls and cards, written behind
        return await build_report(request.app.state.engine, since, until), since, until

    @router.get("")
    async def page(request: Request) -> Response:
        if (refused := await refusal(request, html=True)) is not None:
            return refused
        try:
            report, since, until = await report_for(request)
        except _Range as exc:
            return HTMLResponse(f"<p>{escape(exc.message)}</p>", 400, headers=_HEADERS)
        html = _TEMPLATES.get_template("page.html").render(
            report=report, since=since, until=until, chart=weekly(report, since, until), pct=_pct
        )
        return HTMLResponse(html, headers=_HEADERS)

    @router.post("/login")
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        if (wait := gate.wait_s()) is not None:
            return _too_many(wait, html=True)
        if gate.token(form.get("token", [""])[0]) is not Verdict.GOOD:
            return _login(401, "That is not the admin token.")
        answer = RedirectResponse("/admin", 303, headers=_HEADERS)
        secure = request.url.scheme == "https" or (public_base_url or "").startswith("https://")
        session = await gate.open_session(request.app.state.engine, clock())
        answer.set_cookie(
            COOKIE,
            session,
            max_age=int(SESSION.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/admin",
        )
        return answer

    @router.post("/logout")
    async def sign_out(request: Request) -> Response:
        await gate.close_session(request.app.state.engine, request.cookies.get(COOKIE))
        answer = RedirectResponse("/admin", 303, headers=_HEADERS)
        answer.delete_cookie(COOKIE, path="/admin")
        return answer

    async def exported(request: Request, answer: Callable[[Report, date, date], Response]) -> Response:
        """The report an export asks for, as `answer` writes it, or the answer that refuses it."""
        if (refused := await refusal(request, html=False)) is not None:
            return refused
        try:
            return answer(*await report_for(request))
        except _Range as exc:
            return OrjsonResponse(operation_outcome("invalid", exc.message), 400, headers=_HEADERS)

    @router.get("/report.json")
    async def export_json(request: Request) -> Response:
        return await exported(
            request, lambda r, since, until: OrjsonResponse(as_json(r, since, until), headers=_HEADERS)
        )

    @router.get("/report.csv")
    async def export_csv(request: Request) -> Response:
        return await exported(request, _csv)

    app.include_router(router)


def _login(status: int, problem: str | None = None) -> HTMLResponse:
    html = _TEMPLATES.get_template("login.html").render(problem=problem)
    return HTMLResponse(html, status, headers=_HEADERS | {"WWW-Authenticate": "Bearer"})


def _csv(report: Report, since: date, until: date) -> Response:
    headers = _HEADERS | {"Content-Disposition": f'attachment; filename="cds-cards-{since}-{until}.csv"'}
    return Response(as_csv(report), media_type="text/csv; charset=utf-8", headers=headers)


def _too_many(wait_s: int, html: bool) -> Response:
    headers = _HEADERS | {"Retry-After": str(wait_s)}
    message = f"Too many wrong admin tokens: try again in {wait_s} s."
    if html:
        return HTMLResponse(f"<p>{escape(message)}</p>", 429, headers=headers)
    return OrjsonResponse(operation_outcome("throttled", message), 429, headers=headers)


def _refused() -> OrjsonResponse:
    body = operation_outcome("login", "the admin token is required")
    return OrjsonResponse(body, 401, headers=_HEADERS | {"WWW-Authenticate": "Bearer"})


def _range(request: Request, today: date) -> tuple[date, date]:
    """`since` and `until` (YYYY-MM-DD, both included); the last twelve weeks by default."""
    try:
        until = date.fromisoformat(request.query_params.get("until") or today.isoformat())
        given = request.query_params.get("since")
        since = date.fromisoformat(given) if given else _weeks_before(until)
    except ValueError:
        raise _Range("since and until must be dates, YYYY-MM-DD") from None
    if not (_EARLIEST <= since <= _LATEST and _EARLIEST <= until <= _LATEST):  # weeks and day ends stay dates
        raise _Range(f"since and until between {_EARLIEST} and {_LATEST}")
    if since > until:
        raise _Range("since must not be after until")
    if until - since > timedelta(days=3 * 366):
        raise _Range("a range of at most three years")
    return since, until


def _weeks_before(until: date) -> date:
    """The default start: _DEFAULT_WEEKS weeks ending with `until`, never before _EARLIEST."""
    span = timedelta(weeks=_DEFAULT_WEEKS) - timedelta(days=1)
    return until - span if until - _EARLIEST > span else _EARLIEST


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
