"""The OpenAPI 3.1 description of the HTTP API, generated from the route table.

Nothing here names a route: every path, operation, parameter, body and answer
comes from ``actors.httpapi.routes.ROUTES``, so the document cannot drift
from what the server routes.
"""

from __future__ import annotations

from typing import Any

from actors.httpapi.routes import ROUTES, SCHEMAS, Route

__all__ = ["REASONS", "document"]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"

REASONS = {
    400: "the body is not JSON",
    401: "no key, or a wrong one",
    403: "the key's scope does not allow this",
    404: "unknown charge point, transaction, tag or key",
    409: "the charge point is not connected",
    422: "invalid input (an OCPP payload against the 1.6 schema, a bad argument, a request the central system refuses to send)",
    503: "the central system does not answer",
    504: "no answer from the charge point within the call timeout",
}


def document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The whole OpenAPI document for ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "csms HTTP API",
            "version": API_VERSION,
            "description": "The OCPP 1.6-J central system's HTTP API: what 'ctl' reads and sends. Every request "
                           "but the health check and this document carries 'Authorization: Bearer KEY' "
                           "(ctl api-key create NAME --scope read|operate|admin). read: GET; operate: also OCPP "
                           "requests; admin: also changes to stations, tags and keys.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a key from 'ctl api-key create'"}},
        },
    }


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "security": [] if route.scope is None else [{"bearer": []}],
        "responses": {str(route.status): {"description": "answered",
                                          "content": {route.media: {"schema": route.answer_schema}}}},
    }
    if route.scope is not None:
        operation["x-scope"] = route.scope
        operation["description"] = f"Needs a key of scope {route.scope} or above."
    if route.params:
        operation["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.where == "path", "description": p.description,
             "schema": p.schema}
            for p in route.params
        ]
    if route.body is not None:
        operation["requestBody"] = {"required": route.kind == "call" or bool(route.body.get("required")),
                                    "content": {"application/json": {"schema": route.body}}}
    errors = set(route.errors) | ({401, 403, 503} if route.scope is not None else set())
    if route.body is not None:
        errors.add(400)
    for status in sorted(errors):
        operation["responses"][str(status)] = _json(REASONS[status], {"$ref": "#/components/schemas/Error"})
    return operation


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
