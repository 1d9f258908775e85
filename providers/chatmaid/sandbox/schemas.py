"""The JSON Schemas of the OpenAPI document, written by hand from the API docs.

One dict per object the docs show, each field as the docs show it: its name, its type,
``null`` where the docs write ``string | null`` or show ``null`` in an example, an enum
where the docs list the values, ``required`` for the fields every example of the object
carries. Nothing here comes from the client's models: the sandbox is an independent
reading of the docs, so a mistake in one of the two is caught by the other's tests.

Where the docs leave a type, a nullability or a list of values open, the choice made
is said in a comment or in the field's description.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_REF = "#/components/schemas/"


def ref(name: str) -> Schema:
    """``{"$ref": "#/components/schemas/<name>"}``."""
    return {"$ref": _REF + name}


def _string(description: str | None = None, **rules: Any) -> Schema:
    schema: Schema = {"type": "string", **rules}
    if description:
        schema["description"] = description
    return schema


def _nullable(description: str | None = None, **rules: Any) -> Schema:
    return _string(description, **rules) | {"type": ["string", "null"]}


def _timestamp(description: str | None = None) -> Schema:
    return _string(description, format="date-time")


def _nullable_timestamp(description: str | None = None) -> Schema:
    return _nullable(description, format="date-time")


def _count(description: str | None = None) -> Schema:
    # The docs write the counters as JSON numbers; every example is a whole number.
    schema: Schema = {"type": "integer", "minimum": 0}
    if description:
        schema["description"] = description
    return schema


def _object(
    description: str, properties: dict[str, Schema], *, required: list[str] | None = None
) -> Schema:
    """An object; every field required unless ``required`` names fewer."""
    required = list(properties) if required is None else required
    unknown = set(required) - set(properties)
    if unknown:
        raise ValueError(f"required fields without a property: {sorted(unknown)}")
    return {
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    }


#: The message statuses (Messages page, "Status Lifecycle"; API Reference, ``status``).
_MESSAGE_STATUSES = ["pending", "sent", "failed"]
#: ``"test" | "live"``, inferred from the key prefix (API Reference, ``environment``).
_ENVIRONMENTS = ["test", "live"]
#: ``day | week | month`` (Account page, usage ``period``).
_PERIODS = ["day", "week", "month"]

# -- messages -----------------------------------------------------------------------------

MESSAGE = _object(
    "A message, as send, get and list answer it (API Reference examples).",
    {
        "id": _string("Message ID (msg_*)."),
        "from": _string("The sender phone's E.164 number."),
        "to": _string("The recipient, E.164."),
        "content": _nullable(
            "The text. Optional on send when mediaUrls is given; every example shows a "
            "string, null is the sandbox's choice for a media-only message."
        ),
        "mediaUrls": {"type": "array", "items": _string(format="uri")},
        "environment": _string("Inferred from the API key prefix.", enum=_ENVIRONMENTS),
        "status": _string(
            "pending -> sent | failed. A test-key send is already sent (or failed).",
            enum=_MESSAGE_STATUSES,
        ),
        "createdAt": _timestamp(),
        "sentAt": _nullable_timestamp("Set when the message is marked sent."),
        "failedAt": _nullable_timestamp("Set when the message is marked failed."),
        "errorCode": _nullable("Populated when status is failed."),
        "errorMessage": _nullable("Populated when status is failed."),
    },
    # Only these two are in every example: the Cookbook's send answer, the Getting
    # Started poll answer and the Messages page's list item show shortened messages.
    required=["id", "status"],
)

PAGINATION = _object(
    "GET /v1/messages: data.pagination.",
    {
        "page": {"type": "integer", "minimum": 1, "description": "Current page (1-based)."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Page size."},
        "total": _count("Total matching messages."),
        "totalPages": _count("Computed page count."),
    },
)

PAGE_OF_MESSAGES = _object(
    "GET /v1/messages: the page is under data.data, its position under data.pagination.",
    {
        "data": {
            "type": "array",
            "items": ref("Message"),
            "description": "Sorted by createdAt, newest first.",
        },
        "pagination": ref("Pagination"),
    },
)

SEND_MESSAGE_REQUEST: Schema = {
    **_object(
        "POST /v1/messages/send: the body (API Reference, Request Contract).",
        {
            "fromPhoneId": _string("A phone ID of your account."),
            "to": _string("E.164 (example: +15551234567).", pattern=r"^\+[1-9][0-9]{1,14}$"),
            "content": _string("Required if mediaUrls is empty.", maxLength=4096),
            "mediaUrls": {
                "type": "array",
                "items": _string("A public HTTPS URL.", format="uri", pattern="^https://"),
                "description": "Required if content is empty.",
            },
            "idempotencyKey": _string(
                "Reuse returns the original message (keys are scoped per account).",
                maxLength=64,
            ),
        },
        required=["fromPhoneId", "to"],
    ),
    "anyOf": [
        {"required": ["content"], "properties": {"content": {"minLength": 1}}},
        {"required": ["mediaUrls"], "properties": {"mediaUrls": {"minItems": 1}}},
    ],
}

# -- phone numbers ------------------------------------------------------------------------

_CONNECTION_STATUS = _string(
    # The docs show only "connected"; "disconnected" is named by the phone.disconnected
    # event. They never list the values, so no enum.
    'The WhatsApp connection: "connected" or "disconnected".'
)

PHONE_NUMBER = _object(
    "A phone number, as GET /v1/phone-numbers[/:id] answers it.",
    {
        "id": _string("The phone's internal ID."),
        "phoneNumber": _string("E.164."),
        "displayName": _string(),
        "connectionStatus": _CONNECTION_STATUS,
        "lastConnectedAt": _nullable_timestamp("null until the phone first connects."),
        "lastDisconnectedAt": _nullable_timestamp("null until the phone first disconnects."),
        "createdAt": _timestamp(),
        "updatedAt": _timestamp(),
    },
)

PHONE_STATUS = _object(
    "GET /v1/phone-numbers/:id/status: the live connection state.",
    {
        "id": _string("The phone's internal ID."),
        "phoneNumber": _string("E.164."),
        "connectionStatus": _CONNECTION_STATUS,
        "lastConnectedAt": _nullable_timestamp("null until the phone first connects."),
        "lastDisconnectedAt": _nullable_timestamp("null until the phone first disconnects."),
        "updatedAt": _timestamp(),
    },
)

# -- account ------------------------------------------------------------------------------

ACCOUNT_STATS = _object(
    "GET /v1/account: data.stats, the aggregate counters.",
    {
        "apiKeys": _count(),
        "phoneNumbers": _count(),
        "messages": _count(),
    },
)

ACCOUNT = _object(
    "GET /v1/account: the profile of the API key's owner.",
    {
        "accountId": _string("acc_*."),
        "name": _string(),
        "email": _string(),
        # The docs show "active" and speak of an inactive subscription; no list of values.
        "subscriptionStatus": _string('"active" while the subscription is.'),
        "stats": ref("AccountStats"),
    },
)

MESSAGE_COUNTS = _object(
    "GET /v1/account/usage: data.messages.",
    {"total": _count(), "pending": _count(), "sent": _count(), "failed": _count()},
)

REQUEST_COUNTS = _object(
    "GET /v1/account/usage: data.apiRequests.",
    {"total": _count(), "successful": _count(), "failed": _count()},
)

USAGE = _object(
    "GET /v1/account/usage: the metrics of the period ending now.",
    {
        "period": _string(enum=_PERIODS),
        "startDate": _timestamp(),
        "endDate": _timestamp(),
        "messages": ref("MessageCounts"),
        "apiRequests": ref("RequestCounts"),
    },
)

# -- errors -------------------------------------------------------------------------------

ERROR_ENVELOPE = _object(
    "The error envelope most errors follow (Errors page); 429 has its own short body.",
    {
        "success": {"type": "boolean", "const": False},
        "error": _string('The HTTP reason phrase, e.g. "Unauthorized", "Bad Request".'),
        "message": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Every problem; a validation error lists several.",
        },
        "statusCode": {"type": "integer", "description": "The HTTP status, repeated."},
        "timestamp": _timestamp(),
        "path": _string("The request's path (and query string)."),
    },
)

RATE_LIMITED = _object(
    "429: the per-key rate limit is exceeded (Errors page).",
    {
        "success": {"type": "boolean", "const": False},
        "error": {"type": "string", "const": "Rate limit exceeded"},
        "retryAfter": {"type": "integer", "minimum": 0, "description": "Seconds to wait."},
    },
)

# -- webhooks -----------------------------------------------------------------------------

MESSAGE_EVENT_DATA = _object(
    "The data of message.sent and message.failed (Webhooks page, Payloads).",
    {
        "messageId": _string("Message ID (msg_*)."),
        "from": _string("The sender phone's E.164 number."),
        "to": _string("The recipient, E.164."),
        "status": _string(enum=["sent", "failed"]),
        "environment": _string(enum=_ENVIRONMENTS),
        "sentAt": _timestamp("message.sent only."),
        # The docs show no message.failed payload; these are named as on the Message.
        "failedAt": _timestamp("message.failed only (not in the docs' example)."),
        "errorCode": _string("message.failed only (not in the docs' example)."),
        "errorMessage": _string("message.failed only (not in the docs' example)."),
    },
    # The Webhooks page's curl example posts data: {"messageId": ...} alone.
    required=["messageId"],
)

MESSAGE_EVENT = _object(
    "A message.* webhook body; the event name is also the X-Chatmaid-Event header.",
    {
        "event": _string(enum=["message.sent", "message.failed"]),
        "timestamp": _timestamp(),
        "data": ref("MessageEventData"),
    },
)

PHONE_EVENT_DATA = _object(
    "The data of phone.connected and phone.disconnected. The docs show no phone "
    "payload; these are the sandbox's choice, fields of the phone's status.",
    {
        "id": _string("The phone's internal ID."),
        "phoneNumber": _string("E.164."),
        "connectionStatus": _CONNECTION_STATUS,
        "lastConnectedAt": _nullable_timestamp(),
        "lastDisconnectedAt": _nullable_timestamp(),
    },
    required=[],
)

PHONE_EVENT = _object(
    "A phone.* webhook body; the event name is also the X-Chatmaid-Event header.",
    {
        "event": _string(enum=["phone.connected", "phone.disconnected"]),
        "timestamp": _timestamp(),
        "data": ref("PhoneEventData"),
    },
)

#: ``components.schemas``: the names the paths and webhooks of the document refer to.
SCHEMAS: dict[str, Schema] = {
    "Message": MESSAGE,
    "Pagination": PAGINATION,
    "Page_Message_": PAGE_OF_MESSAGES,
    "SendMessageRequest": SEND_MESSAGE_REQUEST,
    "PhoneNumber": PHONE_NUMBER,
    "PhoneStatus": PHONE_STATUS,
    "AccountStats": ACCOUNT_STATS,
    "Account": ACCOUNT,
    "MessageCounts": MESSAGE_COUNTS,
    "RequestCounts": REQUEST_COUNTS,
    "Usage": USAGE,
    "ErrorEnvelope": ERROR_ENVELOPE,
    "RateLimited": RATE_LIMITED,
    "MessageEventData": MESSAGE_EVENT_DATA,
    "MessageEvent": MESSAGE_EVENT,
    "PhoneEventData": PHONE_EVENT_DATA,
    "PhoneEvent": PHONE_EVENT,
}
