"""The error bodies every route answers with: FHIR OperationOutcomes, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from . import validation
from .json_bodies import OrjsonResponse
from .protocol import OperationOutcome, operation_outcome

logger = logging.getLogger("cds_service")

# What the hook and feedback routes can answer besides 200, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "model": OperationOutcome}
    for status, text in [
        (400, "not a valid hook request, or a hook this service does not serve"),
        (404, "no such service"),
        (412, "data the service needs was neither prefetched nor fetched from fhirServer"),
        (401, "no trusted JWT for this URL"),
        (413, "request body over the size limit"),
        (415, "a body that is not application/json"),
        (500, "internal error"),
    ]
}
_ISSUE_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly"}


def bad_request(field: str, message: str) -> OrjsonResponse:
    return OrjsonResponse(operation_outcome("invalid", f"{field}: {message}", [field]), 400)


def add_error_handlers(app: FastAPI) -> None:
    """A body that does not validate names its first wrong field; Starlette's HTTP errors (404, 405)
    become OperationOutcomes too."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        field, message = validation.first(exc)
        logger.info("invalid request", extra={"path": request.url.path, "field": field, "status": 400})
        return bad_request(field, message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> OrjsonResponse:
        code = _ISSUE_CODES.get(exc.status_code, "processing")
        return OrjsonResponse(operation_outcome(code, str(exc.detail)), exc.status_code, headers=exc.headers)
