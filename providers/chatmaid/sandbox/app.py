"""The sandbox's Starlette app: the eight ``/v1`` endpoints, ``/openapi.json``, the admin
API under ``/_sandbox`` and the inbox page at ``/``.

>>> app = create_app()  # a seeded sandbox with default options; serve it with uvicorn
"""

from __future__ import annotations

import json
from math import ceil

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from .admin import admin_routes
from .auth import READ_ACCOUNT, READ_MESSAGES, READ_PHONES, SEND_MESSAGES
from .inbox import web_routes
from .openapi import openapi_document
from .options import SandboxOptions
from .pipeline import Call, V1Route
from .responses import ApiError, error_response, ok, requested_url
from .runtime import Sandbox
from .seed import seeded_state
from .state import USAGE_PERIODS, MessageRecord, PhoneRecord, SandboxState, utcnow
from .validation import json_object, parse_list_query, parse_period, parse_send
from .wire import iso

_LIST_FILTERS = ("phoneNumberId", "status", "environment", "page", "limit")
_READ_ERRORS = (401, 403, 404, 429)


def v1_routes() -> tuple[V1Route, ...]:
    """The public contract: method, path, scopes, handler, and documented statuses."""
    return (
        V1Route("POST", "/v1/messages/send", SEND_MESSAGES, send_message, "Send a message",
                201, "Message", (400, 401, 403, 404, 429), body="SendMessageRequest"),
        V1Route("GET", "/v1/messages", READ_MESSAGES, list_messages, "List messages",
                200, "Page_Message_", (400, 401, 403, 429), query=_LIST_FILTERS),
        V1Route("GET", "/v1/messages/{messageId}", READ_MESSAGES, get_message,
                "Get a message", 200, "Message", _READ_ERRORS),
        V1Route("GET", "/v1/phone-numbers", READ_PHONES, list_phone_numbers,
                "List phone numbers", 200, "PhoneNumber[]", (401, 403, 429)),
        V1Route("GET", "/v1/phone-numbers/{id}", READ_PHONES, get_phone_number,
                "Get a phone number by ID or URL-encoded E.164", 200, "PhoneNumber",
                _READ_ERRORS),
        V1Route("GET", "/v1/phone-numbers/{id}/status", READ_PHONES, get_phone_status,
                "Get a phone's connection status", 200, "PhoneStatus", _READ_ERRORS),
        V1Route("GET", "/v1/account", READ_ACCOUNT, get_account, "Get the account",
                200, "Account", (401, 403, 429)),
        V1Route("GET", "/v1/account/usage", READ_ACCOUNT, get_usage, "Get usage",
                200, "Usage", (400, 401, 403, 429), query=("period",)),
    )  # fmt: skip


def create_app(
    state: SandboxState | None = None, options: SandboxOptions | None = None
) -> Starlette:
    """A sandbox app over ``state`` (default: the seed) with ``options`` (default: defaults)."""
    opts = options or SandboxOptions()
    sandbox = Sandbox(state or seeded_state(opts), opts)
    public = v1_routes()
    document = json.dumps(openapi_document(public)).encode()

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    routes: list[BaseRoute] = [
        *(route.bind(sandbox) for route in public),
        Route("/openapi.json", openapi),
        Mount("/_sandbox", routes=admin_routes()),
        *web_routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _server_error,
        },
        lifespan=sandbox.lifespan,
    )
    app.state.sandbox = sandbox
    return app


# -- messages -----------------------------------------------------------------------


async def send_message(call: Call) -> Response:
    """``POST /v1/messages/send``: 201 with the message (the original one on key reuse)."""
    raw = await call.request.body()
    message = call.sandbox.lifecycle.accept(call.key, parse_send(json_object(raw)), raw)
    return ok(message.to_api(live=call.sandbox.state.settings.live), 201)


async def list_messages(call: Call) -> Response:
    """``GET /v1/messages``: one page, newest first, in the key's environment by default."""
    live = call.sandbox.state.settings.live
    query = parse_list_query(call.request.query_params, call.key.environment, live=live)
    found = call.sandbox.state.messages_newest_first(
        query.environment, query.status, query.phone_number_id
    )
    start = (query.page - 1) * query.limit
    pagination = {
        "page": query.page,
        "limit": query.limit,
        "total": len(found),
        "totalPages": ceil(len(found) / query.limit),
    }
    items = [m.to_api(live=live) for m in found[start : start + query.limit]]
    return ok({"data": items, "pagination": pagination})


async def get_message(call: Call) -> Response:
    """``GET /v1/messages/:messageId``."""
    return ok(_message(call).to_api(live=call.sandbox.state.settings.live))


# -- phone numbers ------------------------------------------------------------------


async def list_phone_numbers(call: Call) -> Response:
    """``GET /v1/phone-numbers``."""
    return ok([phone.to_api() for phone in call.sandbox.state.phones.values()])


async def get_phone_number(call: Call) -> Response:
    """``GET /v1/phone-numbers/:id``, by ID or URL-encoded E.164."""
    return ok(_phone(call).to_api())


async def get_phone_status(call: Call) -> Response:
    """``GET /v1/phone-numbers/:id/status``."""
    return ok(_phone(call).status_to_api())


# -- account ------------------------------------------------------------------------


async def get_account(call: Call) -> Response:
    """``GET /v1/account``: profile and counters (keys, phones, messages of both envs)."""
    state = call.sandbox.state
    return ok(state.account_to_api(environment=call.key.environment, live=state.settings.live))


async def get_usage(call: Call) -> Response:
    """``GET /v1/account/usage``: the window ending now, in the key's environment."""
    period = parse_period(call.request.query_params)
    state = call.sandbox.state
    end = utcnow()
    start = end - USAGE_PERIODS[period]
    return ok(
        {
            "period": period,
            "startDate": iso(start),
            "endDate": iso(end),
            "messages": state.message_counts(call.key.environment, start, live=state.settings.live),
            "apiRequests": state.requests.usage_since(start),
        }
    )


# -- helpers ------------------------------------------------------------------------


def _message(call: Call) -> MessageRecord:
    message_id: str = call.request.path_params["messageId"]
    message = call.sandbox.state.messages.get(message_id)
    if message is None:
        raise ApiError(404, f"Message {message_id} not found in this account")
    return message


def _phone(call: Call) -> PhoneRecord:
    ref: str = call.request.path_params["id"]
    phone = call.sandbox.state.find_phone(ref)
    if phone is None:
        raise ApiError(404, f"Phone number {ref} not found in this account")
    return phone


async def _api_error(request: Request, exc: Exception) -> Response:
    # Admin routes raise ApiError too; /v1 routes catch theirs in the pipeline.
    assert isinstance(exc, ApiError)
    return exc.response(requested_url(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    # NestJS answers an unknown route and a wrong method alike: 404 "Cannot <METHOD> <url>".
    assert isinstance(exc, HTTPException)
    url = requested_url(request)
    if exc.status_code in (404, 405):
        return error_response(404, [f"Cannot {request.method} {url}"], url)
    return error_response(exc.status_code, [str(exc.detail)], url, exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The caller hung up before its body arrived (a cancelled send): nobody to answer,
    and no server error to log."""
    return Response(status_code=499)


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, ["Internal server error"], requested_url(request))
