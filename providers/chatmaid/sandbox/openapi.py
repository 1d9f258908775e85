"""The OpenAPI 3.1 document served at ``/openapi.json``.

Schemas are written by hand from the API docs (``schemas.py``), never generated from
the client's models, so the document is a third reading of the docs that the sandbox's
answers are tested against; paths come from the app's own route table.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from .._version import __version__
from .options import WEBHOOK_EVENTS
from .pipeline import V1Route
from .schemas import SCHEMAS
from .validation import ENVIRONMENTS, MAX_PAGE_SIZE, STATUSES

_REF = "#/components/schemas/{model}"
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "phoneNumberId": {"type": "string", "description": "Filter by sender phone ID."},
    "status": {"type": "string", "enum": list(STATUSES)},
    "environment": {
        "type": "string",
        "enum": list(ENVIRONMENTS),
        "description": "Defaults to the API key's environment.",
    },
    "page": {"type": "integer", "minimum": 1, "default": 1},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
    "period": {"type": "string", "enum": ["day", "week", "month"], "default": "month"},
}


def openapi_document(routes: Iterable[V1Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes``."""
    schemas = copy.deepcopy(SCHEMAS)  # each document its own: callers may change theirs
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chatmaid API (chatmaid-sandbox)",
            "version": __version__,
            "description": "The public /v1 contract as the local sandbox serves it.",
        },
        "servers": [{"url": "https://developers-api.chatmaid.net"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": {event: _webhook(event) for event in sorted(WEBHOOK_EVENTS)},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "sk_test_* or sk_live_*",
                }
            },
        },
    }


def _operation(route: V1Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": f"Accepted scopes: {', '.join(route.rule.accepted)}.",
        "parameters": [
            *(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", route.path)
            ),
            *({"name": n, "in": "query", "schema": _QUERY_SCHEMAS[n]} for n in route.query),
        ],
        "responses": {
            str(route.status): _json("Success", _success(route.data)),
            **{str(code): _error(code) for code in route.errors},
        },
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=route.body)}}},
        }
    return operation


def _success(data: str) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "array", "items": {"$ref": _REF.format(model=data[:-2])}}
        if data.endswith("[]")
        else {"$ref": _REF.format(model=data)}
    )
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"type": "boolean", "const": True}, "data": schema},
    }


def _error(code: int) -> dict[str, Any]:
    model = "RateLimited" if code == 429 else "ErrorEnvelope"
    return _json(f"HTTP {code}", {"$ref": _REF.format(model=model)})


def _webhook(event: str) -> dict[str, Any]:
    # The documented events only; the live profile's extras are in docs/sandbox.md.
    model = "MessageEvent" if event.startswith("message.") else "PhoneEvent"
    return {
        "post": {
            "summary": f"{event} delivery (signed: X-Chatmaid-Signature)",
            "requestBody": {
                "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}
            },
            "responses": {"200": {"description": "Any 2xx acknowledges the delivery."}},
        }
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
