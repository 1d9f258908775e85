"""The admin API under ``/_sandbox/``: set the stage for a test and look behind it.

Not part of the Chatmaid contract. Bodies are JSON with camelCase keys; answers use
the success envelope. ``Admin`` (``admin_client.py``) wraps every route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin_feed import feed_routes
from .faults import Fault, FaultKind
from .options import KNOWN_WEBHOOK_EVENTS, WebhookConfig
from .responses import ApiError, ok
from .runtime import Sandbox, sandbox_of
from .seed import ALL_SCOPES
from .state import (
    ApiKeyRecord,
    InboundRecord,
    PhoneRecord,
    WebhookEndpoint,
    new_id,
    utcnow,
    webhook_event,
)
from .validation import json_object
from .wire import KEY_PREFIXES, is_e164, iso

InputT = TypeVar("InputT", bound="_Input")
T = TypeVar("T")


def admin_routes() -> list[Route]:
    """The admin routes, to mount at ``/_sandbox``."""
    return [
        Route("/health", health),
        Route("/reset", reset, methods=["POST"]),
        Route("/settings", get_settings),
        Route("/settings", update_settings, methods=["PATCH"]),
        Route("/api-keys", list_api_keys),
        Route("/api-keys", create_api_key, methods=["POST"]),
        Route("/api-keys/{id}", update_api_key, methods=["PATCH"]),
        Route("/phones", list_phones),
        Route("/phones", create_phone, methods=["POST"]),
        Route("/phones/{id}/connection", set_phone_connection, methods=["PUT"]),
        Route("/subscription", set_subscription, methods=["PUT"]),
        Route("/webhooks", list_webhooks),
        Route("/webhooks", add_webhook, methods=["POST"]),
        Route("/webhooks/{id}", remove_webhook, methods=["DELETE"]),
        Route("/messages", list_all_messages),
        Route("/messages/{id}/advance", advance_message, methods=["POST"]),
        Route("/inbound", list_inbound),
        Route("/inbound", simulate_inbound, methods=["POST"]),
        Route("/outgoing", simulate_outgoing, methods=["POST"]),
        Route("/deliveries", list_deliveries),
        Route("/requests", request_counts),
        Route("/faults", list_faults),
        Route("/faults", add_fault, methods=["POST"]),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/faults/{id}", remove_fault, methods=["DELETE"]),
        *feed_routes(),
    ]


class _Input(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class NewApiKey(_Input):
    """``POST /_sandbox/api-keys``."""

    environment: Literal["test", "live"] = "test"
    scopes: list[str] = Field(default_factory=lambda: sorted(ALL_SCOPES))
    expired: bool = False
    rate_limit: int | None = Field(default=None, ge=0)


class ApiKeyChanges(_Input):
    """``PATCH /_sandbox/api-keys/{id}``; ``rateLimit: null`` means the sandbox-wide limit."""

    expired: bool | None = None
    rate_limit: int | None = Field(default=None, ge=0)


class NewPhone(_Input):
    """``POST /_sandbox/phones``."""

    phone_number: str
    display_name: str = "Sandbox Sender"
    connected: bool = True


class Connection(_Input):
    """``PUT /_sandbox/phones/{id}/connection``."""

    connected: bool


class Subscription(_Input):
    """``PUT /_sandbox/subscription``; live keys need ``active``."""

    status: str


class NewWebhook(_Input):
    """``POST /_sandbox/webhooks``."""

    url: str
    secret: str
    events: list[str] = Field(default_factory=lambda: sorted(KNOWN_WEBHOOK_EVENTS))


class SettingsChanges(_Input):
    """``PATCH /_sandbox/settings``: only the fields given change."""

    rate_limit: int | None = Field(default=None, ge=0)
    live_delay: float | None = Field(default=None, ge=0)
    time_scale: float | None = Field(default=None, gt=0)
    webhook_timeout: float | None = Field(default=None, gt=0)
    profile: Literal["docs", "live"] | None = None
    retry_after_header: bool | None = None
    delivery_id_header: bool | None = None
    keep_signature_on_retry: bool | None = None


_MESSAGE_TYPES = Literal[
    "text", "image", "video", "audio", "document", "sticker", "location", "contact", "other"
]


class NewInbound(_Input):
    """``POST /_sandbox/inbound``: a reply someone sent to one of the account's phones."""

    sender: str = Field(alias="from")
    to: str | None = None
    content: str | None = "Hello from the sandbox"
    type: _MESSAGE_TYPES = "text"


class NewOutgoing(_Input):
    """``POST /_sandbox/outgoing``: a message typed on the phone itself, not sent by API."""

    sender: str | None = Field(default=None, alias="from")
    to: str
    content: str | None = "Sent from the phone"
    type: _MESSAGE_TYPES = "text"


class NewFault(_Input):
    """``POST /_sandbox/faults``: see ``faults.py`` for what each kind does."""

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    seconds: float = Field(default=0.0, ge=0)
    fraction: float = Field(default=1.0, gt=0, le=1)
    status: int = Field(default=503, ge=500, le=599)
    retry_after: int | None = Field(default=None, ge=1)
    count: int | None = Field(default=None, ge=1)


# -- stage --------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """Readiness probe."""
    return ok({"status": "ok"})


async def reset(request: Request) -> Response:
    """Back to the seed and start options."""
    sandbox_of(request).reset()
    return ok({"reset": True})


async def get_settings(request: Request) -> Response:
    """The current settings."""
    return ok(sandbox_of(request).state.settings.to_admin())


async def update_settings(request: Request) -> Response:
    """Change some settings until the next reset."""
    changes = await _parse(request, SettingsChanges)
    state = sandbox_of(request).state
    state.settings = _valid(lambda: replace(state.settings, **_given(changes)))
    return ok(state.settings.to_admin())


async def list_api_keys(request: Request) -> Response:
    """Every key, secrets included."""
    return ok([key.to_admin() for key in sandbox_of(request).state.keys.values()])


async def create_api_key(request: Request) -> Response:
    """A new key with the given environment, scopes, expiry and rate limit."""
    spec = await _parse(request, NewApiKey)
    prefix = next(p for p, env in KEY_PREFIXES.items() if env == spec.environment)
    now = utcnow()
    key = ApiKeyRecord(
        id=new_id("key_", 12),
        key=new_id(prefix),
        environment=spec.environment,
        scopes=frozenset(spec.scopes),
        created_at=now,
        expires_at=now if spec.expired else None,
        rate_limit=spec.rate_limit,
    )
    return ok(sandbox_of(request).state.add_key(key).to_admin(), 201)


async def update_api_key(request: Request) -> Response:
    """Expire or revive a key, or change its rate limit."""
    changes = await _parse(request, ApiKeyChanges)
    key = sandbox_of(request).state.key_by_id(request.path_params["id"])
    if key is None:
        raise ApiError(404, f"API key {request.path_params['id']} not found")
    if "rate_limit" in changes.model_fields_set:
        key.rate_limit = changes.rate_limit
    if changes.expired is not None:
        key.expires_at = utcnow() if changes.expired else None
    return ok(key.to_admin())


async def list_phones(request: Request) -> Response:
    """Every phone, as the API shows it."""
    return ok([phone.to_api() for phone in sandbox_of(request).state.phones.values()])


async def create_phone(request: Request) -> Response:
    """A new phone, connected or not."""
    spec = await _parse(request, NewPhone)
    state = sandbox_of(request).state
    if not is_e164(spec.phone_number):
        raise ApiError(400, f"phoneNumber must be E.164 (got {spec.phone_number!r})")
    if state.find_phone(spec.phone_number) is not None:
        raise ApiError(400, f"phone {spec.phone_number} already exists")
    now = utcnow()
    phone = PhoneRecord(
        id=new_id(),
        phone_number=spec.phone_number,
        display_name=spec.display_name,
        connection_status="connected" if spec.connected else "disconnected",
        created_at=now,
        updated_at=now,
        last_connected_at=now if spec.connected else None,
    )
    return ok(state.add_phone(phone).to_api(), 201)


async def set_phone_connection(request: Request) -> Response:
    """Connect or disconnect a phone; a change emits ``phone.connected``/``disconnected``."""
    spec = await _parse(request, Connection)
    sandbox = sandbox_of(request)
    phone = sandbox.state.find_phone(request.path_params["id"])
    if phone is None:
        raise ApiError(404, f"Phone {request.path_params['id']} not found")
    if phone.set_connected(spec.connected, utcnow()):
        live = sandbox.state.settings.live
        sandbox.webhooks.emit(f"phone.{phone.connection_status}", lambda: phone.event(live=live))
    return ok(phone.to_api())


async def set_subscription(request: Request) -> Response:
    """Set the account's subscription status (``active``, ``past_due``, ``canceled``...)."""
    spec = await _parse(request, Subscription)
    state = sandbox_of(request).state
    state.account.subscription_status = spec.status
    return ok(state.account_to_api(environment="test"))


# -- webhooks -----------------------------------------------------------------------


async def list_webhooks(request: Request) -> Response:
    """The configured endpoints (without secrets)."""
    return ok([w.to_admin() for w in sandbox_of(request).state.webhooks.values()])


async def add_webhook(request: Request) -> Response:
    """A new endpoint: URL, signing secret, subscribed events."""
    spec = await _parse(request, NewWebhook)
    config = _valid(lambda: WebhookConfig(spec.url, spec.secret, frozenset(spec.events)))
    endpoint = WebhookEndpoint(new_id("wh_", 12), config.url, config.secret, config.events)
    sandbox_of(request).state.webhooks[endpoint.id] = endpoint
    return ok(endpoint.to_admin(), 201)


async def remove_webhook(request: Request) -> Response:
    """Remove an endpoint; its pending retries are dropped."""
    state = sandbox_of(request).state
    if state.webhooks.pop(request.path_params["id"], None) is None:
        raise ApiError(404, f"webhook {request.path_params['id']} not found")
    state.drop_deliveries(request.path_params["id"])
    return ok({"removed": request.path_params["id"]})


# -- behind the scenes --------------------------------------------------------------


async def list_all_messages(request: Request) -> Response:
    """Every message of both environments, oldest first, with internal fields."""
    return ok([m.to_admin() for m in sandbox_of(request).state.messages.values()])


async def advance_message(request: Request) -> Response:
    """Take a message's next lifecycle step now instead of after ``liveDelay``.

    ``pending -> sent | failed``, and in the ``live`` profile ``sent -> delivered -> read``;
    409 when no step is due (a test-key message, or one already ``read`` or ``failed``).
    """
    sandbox = sandbox_of(request)
    message = sandbox.state.messages.get(request.path_params["id"])
    if message is None:
        raise ApiError(404, f"Message {request.path_params['id']} not found")
    if not sandbox.lifecycle.advance(message):
        raise ApiError(409, f"Message {message.id} is {message.status}: no step is due")
    return ok(message.to_admin())


async def list_inbound(request: Request) -> Response:
    """Every simulated inbound message, oldest first (the SDK's ``InboundMessage``)."""
    return ok([m.to_admin() for m in sandbox_of(request).state.inbound.values()])


async def simulate_inbound(request: Request) -> Response:
    """Store an inbound reply and emit ``message.received`` (sent in the ``live`` profile).

    ``to`` is one of the account's phones (ID or number; default: the first).
    """
    spec = await _parse(request, NewInbound)
    sandbox = sandbox_of(request)
    _require_e164(spec.sender, "from")
    phone = _account_phone(sandbox, spec.to, "to")
    record = InboundRecord(new_id("in_"), spec.sender, phone.phone_number, spec.content,
                           spec.type, utcnow())  # fmt: skip
    sandbox.state.add_inbound(record)
    if sandbox.state.settings.live:
        sandbox.webhooks.emit("message.received", record.event)
    return ok(record.to_admin(), 201)


async def simulate_outgoing(request: Request) -> Response:
    """Emit ``message.outgoing`` for a message typed on a phone (``live`` profile only)."""
    spec = await _parse(request, NewOutgoing)
    sandbox = sandbox_of(request)
    if not sandbox.state.settings.live:
        raise ApiError(400, "message.outgoing exists only in the live profile: "
                            "PATCH /_sandbox/settings {\"profile\": \"live\"} first")  # fmt: skip
    _require_e164(spec.to, "to")
    phone = _account_phone(sandbox, spec.sender, "from")
    event = webhook_event("message.outgoing", {
        "from": phone.phone_number, "to": spec.to, "content": spec.content, "type": spec.type,
        "isGroup": False, "groupId": None, "source": "manual", "sentAt": iso(utcnow()),
    })  # fmt: skip
    sandbox.webhooks.emit("message.outgoing", lambda: event)
    return ok(event, 201)


def _require_e164(value: str, field: str) -> None:
    if not is_e164(value):
        raise ApiError(400, f"{field} must be an E.164 number such as +15557654321 (got {value!r})")


def _account_phone(sandbox: Sandbox, ref: str | None, field: str) -> PhoneRecord:
    phones = sandbox.state.phones
    phone = next(iter(phones.values()), None) if ref is None else sandbox.state.find_phone(ref)
    if phone is None:
        raise ApiError(400, f"{field} must be a phone of the account (ID or number; got {ref!r})")
    return phone


async def list_deliveries(request: Request) -> Response:
    """Every webhook delivery attempt, in the order they were made."""
    return ok([d.to_admin() for d in sandbox_of(request).state.deliveries])


async def request_counts(request: Request) -> Response:
    """``/v1`` requests answered, by status and by endpoint."""
    return ok(sandbox_of(request).state.requests.to_admin())


# -- faults -------------------------------------------------------------------------


async def list_faults(request: Request) -> Response:
    """The active faults."""
    return ok([f.to_admin() for f in sandbox_of(request).faults.active()])


async def add_fault(request: Request) -> Response:
    """Activate a fault on ``/v1`` (all of it, or one method and path prefix)."""
    spec = await _parse(request, NewFault)
    if spec.kind in ("latency", "rate_limit") and spec.seconds <= 0:
        raise ApiError(400, f"a {spec.kind} fault needs seconds > 0")
    fault = Fault(
        id=new_id("flt_", 12),
        kind=spec.kind,
        method=spec.method.upper() if spec.method else None,
        path=spec.path,
        seconds=spec.seconds,
        fraction=spec.fraction,
        status=spec.status,
        retry_after=spec.retry_after,
        remaining=spec.count,
    )
    return ok(sandbox_of(request).faults.add(fault).to_admin(), 201)


async def clear_faults(request: Request) -> Response:
    """Deactivate every fault."""
    sandbox_of(request).faults.clear()
    return ok({"cleared": True})


async def remove_fault(request: Request) -> Response:
    """Deactivate one fault."""
    if not sandbox_of(request).faults.remove(request.path_params["id"]):
        raise ApiError(404, f"fault {request.path_params['id']} not found")
    return ok({"removed": request.path_params["id"]})


# -- helpers ------------------------------------------------------------------------


async def _parse(request: Request, model: type[InputT]) -> InputT:
    raw = await request.body()
    try:
        return model.model_validate(json_object(raw) if raw.strip() else {})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ApiError(400, *problems) from None


def _valid(build: Callable[[], T]) -> T:
    try:
        return build()
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _given(changes: BaseModel) -> dict[str, Any]:
    return {name: getattr(changes, name) for name in changes.model_fields_set}
