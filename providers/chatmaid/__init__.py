"""chatmaid: the shared core of chatmaid-connectors.

One engine for the Chatmaid WhatsApp API: sync and async clients for every endpoint,
validation, retries, 429 handling, per-key rate limiting, idempotency keys, typed
models and errors, and webhook signing and verification. It imports neither Airflow
nor Kafka; the adapters in ``chatmaid_airflow`` and ``chatmaid_kafka`` stand on it.
"""

from ._async_client import AsyncChatmaidClient
from ._client import ChatmaidClient
from ._config import DEFAULT_BASE_URL, ClientConfig, ClientOptions
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ChatmaidAPIError,
    ChatmaidConfigurationError,
    ChatmaidError,
    ChatmaidTimeoutError,
    ChatmaidTransportError,
    ChatmaidValidationError,
    DeliveryTimeoutError,
    InvalidWebhookPayloadError,
    MalformedSignatureError,
    MissingSignatureError,
    NoConnectedPhoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
    WebhookVerificationError,
)
from ._keys import environment_of, mask_key
from ._models import (
    Account,
    AccountStats,
    ErrorEnvelope,
    Message,
    MessageCounts,
    MessageEvent,
    MessageEventData,
    MessageStatus,
    Page,
    Pagination,
    PhoneEvent,
    PhoneEventData,
    PhoneNumber,
    PhoneStatus,
    RequestCounts,
    SendMessageRequest,
    Usage,
    WebhookEvent,
)
from ._operations import MessageFilters, SendFields, WaitOptions
from ._ratelimit import TokenBucket
from ._retry import RetryPolicy
from ._validation import is_e164, send_problems
from ._version import __version__
from .idempotency import derive_idempotency_key, random_idempotency_key

__all__ = [
    "DEFAULT_BASE_URL",
    "Account",
    "AccountStats",
    "AsyncChatmaidClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatmaidAPIError",
    "ChatmaidClient",
    "ChatmaidConfigurationError",
    "ChatmaidError",
    "ChatmaidTimeoutError",
    "ChatmaidTransportError",
    "ChatmaidValidationError",
    "ClientConfig",
    "ClientOptions",
    "DeliveryTimeoutError",
    "ErrorEnvelope",
    "InvalidWebhookPayloadError",
    "MalformedSignatureError",
    "Message",
    "MessageCounts",
    "MessageEvent",
    "MessageEventData",
    "MessageFilters",
    "MessageStatus",
    "MissingSignatureError",
    "NoConnectedPhoneError",
    "NotFoundError",
    "Page",
    "Pagination",
    "PermissionDeniedError",
    "PhoneEvent",
    "PhoneEventData",
    "PhoneNumber",
    "PhoneStatus",
    "RateLimitedError",
    "RequestCounts",
    "RetryPolicy",
    "SendFields",
    "SendMessageRequest",
    "ServerError",
    "SignatureMismatchError",
    "TimestampOutsideToleranceError",
    "TokenBucket",
    "Usage",
    "WaitOptions",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "derive_idempotency_key",
    "environment_of",
    "is_e164",
    "mask_key",
    "random_idempotency_key",
    "send_problems",
]
