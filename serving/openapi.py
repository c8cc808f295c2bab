"""The OpenAPI document, with the problem responses every operation can give spelled out.

FastAPI documents a 422 with its own error shape and nothing else; this API answers every error
as an RFC 7807 ``application/problem+json`` document instead. So each operation's responses are
completed here with the statuses it can really return and the one ``Problem`` schema, which is
what lets schemathesis check that every response an operation gives is documented and matches.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 7807 problem details; extension members may follow",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:ordernimbus:problem:forecast-set-not-found"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "422: the failing fields"},
        "problems": {"type": "array", "items": {"type": "object"}, "description": "rejected input, located"},
        "total": {"type": "integer"},
        "job_id": {"type": "string", "description": "409 on jobs: the job already running"},
    },
    "additionalProperties": True,
}
ERRORS = {
    400: "bad request (a parameter the store refuses, a malformed cursor)",
    401: "missing, invalid, revoked or expired credential",
    403: "the credential's role may not do this",
    404: "not found in this tenant",
    409: "conflict with the current state",
    413: "request body too large",
    415: "unsupported upload type",
    422: "request validation failed",
    429: "rate limit exceeded (see Retry-After)",
    500: "unexpected error (logged; the detail says nothing about internals)",
    501: "not available in this deployment (the slim Lambda package)",
    502: "a model artifact could not be read",
    503: "the database is unreachable",
}
_PUBLIC = {"/v1/health": (500,), "/v1/ready": (500, 503)}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _add_problems(operation, _PUBLIC.get(path, tuple(ERRORS)))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_problems(operation: dict[str, Any], statuses: tuple[int, ...]) -> None:
    responses = operation.setdefault("responses", {})
    for status in statuses:
        entry = responses.setdefault(str(status), {"description": ERRORS[status]})
        if str(status) == "422":  # FastAPI's default 422 shape is not what the API sends
            entry["description"] = ERRORS[422]
        entry["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
