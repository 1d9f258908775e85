"""The OpenAPI 3.1 document served at ``/openapi.json``.

Schemas come from the core's pydantic models (by alias, as serialised), so the
document describes exactly what the sandbox writes and the client reads; paths come
from the app's own route table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .._models import (
    Account,
    ErrorEnvelope,
    Message,
    MessageEvent,
    Page,
    PhoneEvent,
    PhoneNumber,
    PhoneStatus,
    SendMessageRequest,
    Usage,
)
from .._version import __version__
from .options import WEBHOOK_EVENTS
from .pipeline import V1Route
from .validation import ENVIRONMENTS, MAX_PAGE_SIZE, STATUSES

_REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[Any], JsonSchemaMode]] = [
    (Message, "serialization"),
    (Page[Message], "serialization"),
    (PhoneNumber, "serialization"),
    (PhoneStatus, "serialization"),
    (Account, "serialization"),
    (Usage, "serialization"),
    (SendMessageRequest, "validation"),
    (ErrorEnvelope, "serialization"),
    (MessageEvent, "serialization"),
    (PhoneEvent, "serialization"),
]
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
_RATE_LIMITED = {
    "type": "object",
    "required": ["success", "error", "retryAfter"],
    "properties": {
        "success": {"const": False},
        "error": {"const": "Rate limit exceeded"},
        "retryAfter": {"type": "integer", "description": "Seconds to wait."},
    },
}


def openapi_document(routes: Iterable[V1Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes``."""
    _, defs = models_json_schema(_MODELS, by_alias=True, ref_template=_REF)
    schemas = dict(defs["$defs"])
    schemas["RateLimited"] = _RATE_LIMITED
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
        "properties": {"success": {"const": True}, "data": schema},
    }


def _error(code: int) -> dict[str, Any]:
    model = "RateLimited" if code == 429 else "ErrorEnvelope"
    return _json(f"HTTP {code}", {"$ref": _REF.format(model=model)})


def _webhook(event: str) -> dict[str, Any]:
    # The documented events only; the live profile's extras are in docs/sandbox.md.
    model = (MessageEvent if event.startswith("message.") else PhoneEvent).__name__
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
