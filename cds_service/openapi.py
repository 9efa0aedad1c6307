"""The OpenAPI document, as precise as the service's reading of its input.

FastAPI documents a hook body as the generic HookRequest; here each service's body names its hook,
its context model and its prefetch keys (a Bundle of resources, an OperationOutcome, or null; the
Observations with the fields the service reads), errors are the OperationOutcomes they are, and
FastAPI's 422, which the service never sends (it answers 400), is dropped. API fuzzing
(tests/test_openapi_fuzz.py) generates its requests from this document and checks the answers
against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from .fhir.labs import Observation
from .services.base import CdsService

_REF = "#/components/schemas/{name}"
# Any request whose header block passes the limit gets it, before any route (http_protocol.py).
_HEADERS_TOO_LARGE = {
    "description": "request headers over the size limit",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _fhir_components() -> dict[str, Any]:
    """The FHIR types the readers validate (fhir/models.py), named Fhir* beside the wire models."""
    _, components = msgspec.json.schema_components([Observation], ref_template=_REF.format(name="Fhir{name}"))
    return {f"Fhir{name}": schema for name, schema in components.items()} | {
        "FhirResource": {
            "type": "object",
            "required": ["resourceType"],
            "properties": {"resourceType": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"}, "id": {"type": "string"}},
        },
        "FhirBundle": {
            "type": "object",
            "required": ["resourceType"],
            "properties": {
                "resourceType": {"enum": ["Bundle"]},
                "type": {"type": "string"},
                "entry": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "fullUrl": {"type": "string"},
                            "resource": {"anyOf": [_ref("FhirObservation"), _ref("FhirResource")]},
                        },
                    },
                },
            },
        },
    }


def _hook_request(service: CdsService) -> dict[str, Any]:
    prefetch = {
        key.name: _nullable(_ref("FhirResource"))
        if "?" not in key.template
        else {"anyOf": [_ref("FhirBundle"), _ref("OperationOutcome"), {"type": "null"}]}
        for key in service.prefetch
    }
    return {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"enum": [service.hook]},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": _nullable({"type": "string", "format": "uri", "minLength": 1}),
            "fhirAuthorization": _nullable(_ref("FhirAuthorization")),
            "context": _ref(service.context_model.__name__),
            "prefetch": _nullable({"type": "object", "properties": prefetch}),
        },
    }


def install(app: FastAPI, services: Iterable[CdsService]) -> None:
    """Replace app.openapi with the precise document (built once, on first request)."""
    services = list(services)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schemas = document["components"]["schemas"]
        for operations in document["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
                operation["responses"]["431"] = _HEADERS_TOO_LARGE
        for name in ("HTTPValidationError", "ValidationError", "HookRequest"):
            schemas.pop(name, None)
        schemas |= _fhir_components()
        for service in services:
            model = service.context_model
            context = model.model_json_schema(ref_template="#/components/schemas/{model}")
            if "draftOrders" in context["properties"]:
                context["properties"]["draftOrders"] = _ref("FhirBundle")
            schemas[model.__name__] = context
            body = document["paths"][f"/cds-services/{service.id}"]["post"]["requestBody"]
            body["content"]["application/json"]["schema"] = _hook_request(service)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# /docs: Swagger UI (5.x, which reads OpenAPI 3.1) from the pinned fastapi-offline package, served by
# the service itself, so
# that nothing on its origin (which also serves /admin) loads a script from elsewhere, and the page
# works in a hospital network without internet.
_DOCS_ASSETS = "/docs/assets"
_DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def add_docs(app: FastAPI) -> None:
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )
        return HTMLResponse(bytes(page.body), headers=_DOCS_HEADERS)

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    assets = Path(str(resources.files("fastapi_offline") / "static"))
    app.mount(_DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
