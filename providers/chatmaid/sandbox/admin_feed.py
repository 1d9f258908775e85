"""The admin routes the inbox page reads: a change feed, one record in full, deliver again.

``GET /_sandbox/events?since=<seq>&epoch=<epoch>`` answers only the messages, inbound
messages and webhook deliveries changed after ``seq``, plus the (small) stage, so a
page can poll it cheaply while thousands of messages are held. After a reset the
epoch is new, and a poll naming the old one gets everything (``full: true``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .deliveries import DeliveryRecord
from .responses import ApiError, ok
from .runtime import Sandbox, sandbox_of


def feed_routes() -> list[Route]:
    """The routes, to mount at ``/_sandbox`` beside the other admin routes."""
    return [
        Route("/events", events),
        Route("/messages/{id}", get_message),
        Route("/deliveries/{id}", get_delivery),
        Route("/deliveries/{id}/redeliver", redeliver, methods=["POST"]),
    ]


async def events(request: Request) -> Response:
    """What changed after ``since`` (oldest change first), each with its ``seq``."""
    sandbox = sandbox_of(request)
    state = sandbox.state
    feed = state.changes
    since = _since(request.query_params.get("since", "0"))
    epoch = request.query_params.get("epoch")
    full = since > feed.seq or (epoch is not None and epoch != feed.epoch)
    changed: dict[str, list[dict[str, Any]]] = {"message": [], "inbound": [], "delivery": []}
    for kind, record_id, seq in feed.since(0 if full else since):
        if kind == "message":
            view = state.messages[record_id].to_admin()
        elif kind == "inbound":
            view = state.inbound[record_id].to_admin()
        else:
            view = state.delivery_records[record_id].to_admin()
        view["seq"] = seq
        changed[kind].append(view)
    return ok(
        {
            "epoch": feed.epoch,
            "seq": feed.seq,
            "full": full or since == 0,
            "messages": changed["message"],
            "inbound": changed["inbound"],
            "deliveries": changed["delivery"],
            "stage": stage(sandbox),
        }
    )


def stage(sandbox: Sandbox) -> dict[str, Any]:
    """The account, settings, phones, webhooks, faults and keys (without their secrets)."""
    state = sandbox.state
    return {
        "account": state.account_to_api(environment="test"),
        "settings": state.settings.to_admin(),
        "phones": [phone.to_api() for phone in state.phones.values()],
        "webhooks": [endpoint.to_admin() for endpoint in state.webhooks.values()],
        "faults": [fault.to_admin() for fault in sandbox.faults.active()],
        "apiKeys": [
            {name: value for name, value in key.to_admin().items() if name != "key"}
            for key in state.keys.values()
        ],
    }


async def get_message(request: Request) -> Response:
    """One message with every webhook delivery about it (each with its attempts)."""
    state = sandbox_of(request).state
    message = state.messages.get(request.path_params["id"])
    if message is None:
        raise ApiError(404, f"Message {request.path_params['id']} not found")
    deliveries = [d.to_admin() for d in state.delivery_records.values() if d.subject == message.id]
    return ok({**message.to_admin(), "deliveries": deliveries})


async def get_delivery(request: Request) -> Response:
    """One webhook delivery: the body sent and every attempt."""
    return ok(_delivery(request).to_admin())


async def redeliver(request: Request) -> Response:
    """Deliver a delivery's body again to its endpoint, as a new delivery (201)."""
    original = _delivery(request)
    again = sandbox_of(request).webhooks.redeliver(original)
    if again is None:
        raise ApiError(409, f"endpoint {original.endpoint_id} of {original.id} was removed")
    return ok(again.to_admin(), 201)


def _delivery(request: Request) -> DeliveryRecord:
    record = sandbox_of(request).state.delivery_records.get(request.path_params["id"])
    if record is None:
        raise ApiError(404, f"delivery {request.path_params['id']} not found")
    return record


def _since(value: str) -> int:
    if not value.isdigit():
        raise ApiError(400, f"since must be an integer >= 0 (got {value!r})")
    return int(value)
