"""The core clients against the sandbox over real HTTP: every endpoint, every status.

Each test runs twice, with ``ChatmaidClient`` and with ``AsyncChatmaidClient`` (driven
on its own event loop through the same calls), so both clients meet the same server.
Raw ``httpx`` is used only where a client cannot produce the request (no key, a
malformed header, an invalid body the client would refuse before sending).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from chatmaid import (
    AsyncChatmaidClient,
    AuthenticationError,
    BadRequestError,
    ChatmaidClient,
    ChatmaidTransportError,
    ChatmaidValidationError,
    IdempotencyConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from chatmaid.sandbox import SEED
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle

#: Every test runs in both sandbox profiles: the client must work against either.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES),
]

FAST_RETRIES = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
#: No retry at all, 429s included (they do not count against ``max_retries``).
NO_RETRIES = RetryPolicy(max_attempts=1, max_rate_limit_waits=0)
TO = "+15557654321"


class Blocking:
    """Calls an async client's coroutine methods to completion on a private loop."""

    def __init__(self, client: AsyncChatmaidClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if inspect.isasyncgenfunction(attribute):
            return lambda *args, **kwargs: self._loop.run_until_complete(
                _collect(attribute(*args, **kwargs))
            )
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self._loop.run_until_complete(attribute(*args, **kwargs))
        return attribute

    def gather(self, name: str, calls: list[dict[str, Any]]) -> list[Any]:
        """Run ``calls`` of method ``name`` concurrently (tasks on one loop)."""
        method = getattr(self._client, name)

        async def everything() -> list[Any]:
            return list(await asyncio.gather(*(method(**kwargs) for kwargs in calls)))

        return self._loop.run_until_complete(everything())


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


class Direct:
    """A sync client, with the same ``gather`` (threads) as ``Blocking``."""

    def __init__(self, client: ChatmaidClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def gather(self, name: str, calls: list[dict[str, Any]]) -> list[Any]:
        """Run ``calls`` of method ``name`` concurrently (one thread each)."""
        method = getattr(self._client, name)
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(lambda kwargs: method(**kwargs), calls))


ClientFactory = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, chatmaid_sandbox: SandboxHandle
) -> Iterator[ClientFactory]:
    """``make_client(key=None, **options)``: a client of the parametrised kind on the sandbox.

    The client-side limiter is off (``requests_per_minute=None``) unless a test says so:
    these tests exercise the server's limiter, not the client's.
    """
    loop = asyncio.new_event_loop() if request.param == "async" else None
    opened: list[Any] = []

    def make(key: str | None = None, **options: Any) -> Any:
        options = {"base_url": chatmaid_sandbox.url, "requests_per_minute": None, **options}
        api_key = key or chatmaid_sandbox.test_key
        if loop is None:
            client: Any = ChatmaidClient(api_key, **options)
            opened.append(client)
            return Direct(client)
        async_client = AsyncChatmaidClient(api_key, **options)
        opened.append(async_client)
        return Blocking(async_client, loop)

    yield make
    for client in opened:
        if loop is None:
            client.close()
        else:
            loop.run_until_complete(client.aclose())
    if loop is not None:
        loop.close()


def raw(sandbox: SandboxHandle, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    """One plain HTTP request (no client logic in the way)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, sandbox.url + path, headers=headers, timeout=10, **kw)


def assert_error_envelope(response: httpx.Response, status: int, error: str, path: str) -> None:
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"success", "error", "message", "statusCode", "timestamp", "path"}
    assert body["success"] is False
    assert body["error"] == error
    assert body["statusCode"] == status
    assert body["path"] == path
    assert isinstance(body["message"], list)
    assert body["message"]
    assert all(isinstance(m, str) for m in body["message"])
    assert len(body["timestamp"]) == 24
    assert body["timestamp"].endswith("Z")


# -- phone numbers and account ----------------------------------------------------------


def test_phone_numbers_list_the_seeded_phones(make_client: ClientFactory) -> None:
    phones = make_client().list_phone_numbers()
    assert [(p.id, p.phone_number, p.connection_status) for p in phones] == [
        (SEED.phone_id, SEED.phone_number, "connected"),
        (SEED.disconnected_phone_id, SEED.disconnected_phone_number, "disconnected"),
    ]
    assert phones[0].display_name == "Primary Sender"
    assert phones[0].last_connected_at is not None
    assert phones[0].created_at is not None


@pytest.mark.parametrize("ref", [SEED.phone_id, SEED.phone_number])
def test_phone_by_id_or_e164(make_client: ClientFactory, ref: str) -> None:
    client = make_client()
    phone = client.get_phone_number(ref)
    status = client.get_phone_status(ref)
    assert (phone.id, phone.phone_number, phone.display_name) == (
        SEED.phone_id,
        SEED.phone_number,
        "Primary Sender",
    )
    assert status.id == SEED.phone_id
    assert status.connection_status == "connected"
    assert status.updated_at == phone.updated_at


def test_account_profile_and_stats(make_client: ClientFactory) -> None:
    account = make_client().get_account()
    assert account.account_id == SEED.account_id
    assert account.subscription_status == "active"
    assert (account.stats.api_keys, account.stats.phone_numbers, account.stats.messages) == (
        2,
        2,
        1,
    )


# -- sending and reading ----------------------------------------------------------------


def test_test_key_send_is_sent_at_once_and_readable(make_client: ClientFactory) -> None:
    client = make_client()
    sent = client.send_message(from_phone=SEED.phone_id, to=TO, content="Hello")
    assert sent.id.startswith("msg_")
    assert (sent.status, sent.environment, sent.from_, sent.to) == (
        "sent",
        "test",
        SEED.phone_number,
        TO,
    )
    assert sent.sent_at is not None
    assert sent.failed_at is None
    assert sent.error_code is None
    assert client.get_message(sent.id) == sent


def test_send_answers_201_with_the_documented_fields(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    body = {"fromPhoneId": SEED.phone_id, "to": TO, "mediaUrls": ["https://example.com/a.png"]}
    response = raw(chatmaid_sandbox, "POST", "/v1/messages/send", SEED.test_key, json=body)
    assert response.status_code == 201
    payload = response.json()
    assert payload["success"] is True
    live_extras = {"isGroup", "groupId", "deliveredAt", "readAt"}
    assert set(payload["data"]) == {
        "id", "from", "to", "content", "mediaUrls", "environment", "status",
        "createdAt", "sentAt", "failedAt", "errorCode", "errorMessage",
    } | (live_extras if chatmaid_sandbox_profile == "live" else set())  # fmt: skip
    assert payload["data"]["content"] is None
    assert payload["data"]["mediaUrls"] == ["https://example.com/a.png"]


def test_list_is_paginated_newest_first(make_client: ClientFactory) -> None:
    client = make_client()
    ids = [
        client.send_message(from_phone=SEED.phone_id, to=TO, content=f"n{i}").id for i in range(7)
    ]
    expected = [*reversed(ids), SEED.example_message_id]
    pages = [client.list_messages(page=page, limit=3) for page in (1, 2, 3)]
    assert [m.id for p in pages for m in p.data] == expected
    assert [(p.pagination.page, p.pagination.limit) for p in pages] == [(1, 3), (2, 3), (3, 3)]
    assert {(p.pagination.total, p.pagination.total_pages) for p in pages} == {(8, 3)}
    assert [p.has_next for p in pages] == [True, True, False]
    beyond = client.list_messages(page=4, limit=3)
    assert beyond.data == []
    assert beyond.pagination.total == 8
    assert [m.id for m in client.iter_messages(limit=2)] == expected


def test_list_filters_by_status_phone_and_environment(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    # Slow lifecycle: live messages stay pending, and (live profile) sent ones stay sent.
    chatmaid_sandbox.admin.update_settings(live_delay=30)
    test_client, live_client = make_client(), make_client(SEED.live_key)
    ok = test_client.send_message(from_phone=SEED.phone_id, to=TO, content="a")
    failed = test_client.send_message(from_phone=SEED.phone_id, to="+15550000000", content="b")
    backup = test_client.send_message(
        from_phone=SEED.disconnected_phone_id, to=TO, content="test keys may"
    )
    live = live_client.send_message(from_phone=SEED.phone_id, to=TO, content="c")

    def ids(client: Any, **filters: Any) -> list[str]:
        return [m.id for m in client.list_messages(**filters).data]

    assert ids(test_client, status="failed") == [failed.id]
    assert ids(test_client, status="pending") == []
    assert ids(test_client, phone_number_id=SEED.disconnected_phone_id) == [backup.id]
    assert ids(test_client) == [backup.id, failed.id, ok.id, SEED.example_message_id]
    assert ids(live_client) == [live.id]  # defaults to the key's environment
    assert ids(test_client, environment="live") == [live.id]
    assert ids(live_client, environment="test", status="sent", limit=2) == [backup.id, ok.id]


def test_media_and_caption(make_client: ClientFactory) -> None:
    urls = ["https://example.com/a.png", "https://example.com/b.pdf"]
    sent = make_client().send_message(
        from_phone=SEED.phone_id, to=TO, content="caption", media_urls=urls
    )
    assert (sent.content, sent.media_urls) == ("caption", urls)


# -- 400 --------------------------------------------------------------------------------


def test_400_lists_every_problem_in_the_docs_words(chatmaid_sandbox: SandboxHandle) -> None:
    body: dict[str, Any] = {
        "fromPhoneId": 42,
        "to": "5551234",
        "content": "x" * 4097,
        "mediaUrls": ["http://insecure.example/a.png"],
        "idempotencyKey": "k" * 65,
    }
    response = raw(chatmaid_sandbox, "POST", "/v1/messages/send", SEED.test_key, json=body)
    assert_error_envelope(response, 400, "Bad Request", "/v1/messages/send")
    # The E.164 line is the docs' (Errors page); the others class-validator's defaults.
    assert response.json()["message"] == [
        "fromPhoneId must be a string",
        "Phone number must be in E.164 format (e.g., +1987654321)",
        "content must be shorter than or equal to 4096 characters",
        "each value in mediaUrls must be a URL address",
        "idempotencyKey must be shorter than or equal to 64 characters",
    ]
    # The client refuses the same payload before sending, naming the number problem too.
    client = ChatmaidClient(SEED.test_key, base_url=chatmaid_sandbox.url, requests_per_minute=None)
    with pytest.raises(ChatmaidValidationError) as refused:
        client.send_message(
            from_phone=SEED.phone_id,
            to=body["to"],
            content=body["content"],
            media_urls=body["mediaUrls"],
            idempotency_key=body["idempotencyKey"],
        )
    assert any(p.startswith("Phone number must be in E.164 format") for p in refused.value.problems)


@pytest.mark.parametrize(
    ("payload", "messages"),
    [
        ({}, ["fromPhoneId is required",
              "Phone number must be in E.164 format (e.g., +1987654321)",
              "to must be a string", "content should not be empty"]),
        ([1, 2], ["body must be a JSON object"]),
        ("not json", ["body must be a JSON object (it is not valid JSON)"]),
    ],
)  # fmt: skip
def test_400_for_a_missing_or_non_object_body(
    chatmaid_sandbox: SandboxHandle, payload: Any, messages: list[str]
) -> None:
    content = payload if isinstance(payload, str) else None
    kwargs: dict[str, Any] = {"content": content} if content else {"json": payload}
    response = raw(chatmaid_sandbox, "POST", "/v1/messages/send", SEED.test_key, **kwargs)
    assert_error_envelope(response, 400, "Bad Request", "/v1/messages/send")
    assert response.json()["message"] == messages


def test_400_for_bad_list_and_usage_queries(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    statuses = {"docs": "pending, sent, failed", "live": "pending, sent, delivered, read, failed"}
    query = {"page": "0", "limit": "101", "status": "queued", "environment": "prod"}
    response = raw(chatmaid_sandbox, "GET", "/v1/messages", SEED.test_key, params=query)
    # NestJS reports the URL as requested, query string included.
    path = "/v1/messages?page=0&limit=101&status=queued&environment=prod"
    assert_error_envelope(response, 400, "Bad Request", path)
    assert response.json()["message"] == [
        "page must be an integer >= 1 (got '0')",
        "limit must be an integer from 1 to 100 (got '101')",
        f"status must be one of {statuses[chatmaid_sandbox_profile]} (got 'queued')",
        "environment must be one of test, live (got 'prod')",
    ]
    for bad in ({"page": "abc"}, {"limit": "0"}, {"limit": "2.5"}):
        response = raw(chatmaid_sandbox, "GET", "/v1/messages", SEED.test_key, params=bad)
        assert response.status_code == 400
    usage = raw(
        chatmaid_sandbox, "GET", "/v1/account/usage", SEED.test_key, params={"period": "year"}
    )
    assert_error_envelope(usage, 400, "Bad Request", "/v1/account/usage?period=year")
    assert usage.json()["message"] == ["period must be one of day, week, month (got 'year')"]


def test_400_live_key_from_a_disconnected_phone(make_client: ClientFactory) -> None:
    with pytest.raises(BadRequestError) as error:
        make_client(SEED.live_key).send_message(
            from_phone=SEED.disconnected_phone_id, to=TO, content="x"
        )
    assert error.value.messages[0].startswith(
        f"Phone {SEED.disconnected_phone_number} is not connected"
    )
    assert error.value.path == "/v1/messages/send"


# -- 401 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing API key"),
        ("Basic c2tfdGVzdF9zYW5kYm94X2Z1bGw=", "Malformed Authorization header"),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer not-a-key", "Invalid API key format"),
    ],
)
def test_401_missing_or_malformed(
    chatmaid_sandbox: SandboxHandle, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.get(chatmaid_sandbox.url + "/v1/messages", headers=headers)
    assert_error_envelope(response, 401, "Unauthorized", "/v1/messages")
    assert response.json()["message"][0].startswith(message)


def test_401_unknown_and_expired_keys(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    with pytest.raises(AuthenticationError) as unknown:
        make_client("sk_test_unknown_key_123").get_account()
    assert unknown.value.messages == ["Invalid API key"]
    expired = chatmaid_sandbox.admin.create_api_key(expired=True)["key"]
    with pytest.raises(AuthenticationError) as error:
        make_client(expired).send_message(from_phone=SEED.phone_id, to=TO, content="x")
    assert error.value.messages == ["API key has expired"]
    assert error.value.status_code == 401


# -- 403 --------------------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "send": lambda c: c.send_message(from_phone=SEED.phone_id, to=TO, content="x"),
    "list": lambda c: c.list_messages(),
    "get": lambda c: c.get_message(SEED.example_message_id),
    "phones": lambda c: c.list_phone_numbers(),
    "phone": lambda c: c.get_phone_number(SEED.phone_number),
    "phone_status": lambda c: c.get_phone_status(SEED.phone_id),
    "account": lambda c: c.get_account(),
    "usage": lambda c: c.get_usage("week"),
}

# The Authentication page's "Endpoint to Scope Matrix", row by row: (operations,
# scopes, allowed). Every accepted alias is allowed; a neighbouring scope is refused.
SCOPE_MATRIX = [
    (("send",), "messages:send", True),
    (("send",), "messages:write", True),
    (("send",), "messages:read", False),
    (("send",), "account:read", False),
    (("list", "get"), "messages:read", True),
    (("list", "get"), "messages:send", False),
    (("list", "get"), "messages:write", False),
    (("phones", "phone", "phone_status"), "phone_numbers:read", True),
    (("phones", "phone", "phone_status"), "phone-numbers:read", True),
    (("phones", "phone", "phone_status"), "messages:send", True),
    (("phones", "phone", "phone_status"), "messages:read", True),
    (("phones", "phone", "phone_status"), "messages:write", True),
    (("phones", "phone", "phone_status"), "account:read", False),
    (("account", "usage"), "account:read", True),
    (("account", "usage"), "messages:read", True),
    (("account", "usage"), "messages:send", True),
    (("account", "usage"), "messages:write", True),
    (("account", "usage"), "phone_numbers:read", False),
]


@pytest.mark.parametrize(
    ("operation", "scope", "allowed"),
    [(op, scope, allowed) for ops, scope, allowed in SCOPE_MATRIX for op in ops],
)
def test_scope_matrix(
    make_client: ClientFactory,
    chatmaid_sandbox: SandboxHandle,
    operation: str,
    scope: str,
    allowed: bool,
) -> None:
    key = chatmaid_sandbox.admin.create_api_key(scopes=[scope])["key"]
    client = make_client(key)
    if allowed:
        OPERATIONS[operation](client)
        return
    with pytest.raises(PermissionDeniedError) as denied:
        OPERATIONS[operation](client)
    assert denied.value.status_code == 403
    assert denied.value.error == "Forbidden"
    assert "does not include required scope" in denied.value.messages[0]


def test_403_live_key_without_active_subscription(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.set_subscription("past_due")
    with pytest.raises(PermissionDeniedError) as denied:
        make_client(SEED.live_key).send_message(from_phone=SEED.phone_id, to=TO, content="x")
    assert "active subscription" in denied.value.messages[0]
    with pytest.raises(PermissionDeniedError):
        make_client(SEED.live_key).get_account()
    # Test keys work without a subscription (Environments page).
    assert make_client().send_message(from_phone=SEED.phone_id, to=TO, content="x").status == "sent"
    assert make_client().get_account().subscription_status == "past_due"


# -- 404 / 405 --------------------------------------------------------------------------


def test_404_unknown_message_phone_and_sender(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(NotFoundError) as message:
        client.get_message("msg_doesnotexist")
    assert message.value.messages == ["Message msg_doesnotexist not found in this account"]
    for ref in ("000000000000000000000000", "+15559999999"):
        with pytest.raises(NotFoundError):
            client.get_phone_number(ref)
        with pytest.raises(NotFoundError):
            client.get_phone_status(ref)
    with pytest.raises(NotFoundError) as sender:
        client.send_message(from_phone="000000000000000000000000", to=TO, content="x")
    assert sender.value.path == "/v1/messages/send"


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/v1/nothing-here", 404, "Not Found"),
        ("GET", "/v2/messages", 404, "Not Found"),
        ("POST", "/v1/account", 404, "Not Found"),  # NestJS: a wrong method is a 404
        ("DELETE", "/v1/messages/msg_abc123def456", 404, "Not Found"),
        ("PUT", "/v1/messages/send", 404, "Not Found"),
    ],
)
def test_unknown_routes_and_methods_use_the_envelope(
    chatmaid_sandbox: SandboxHandle, method: str, path: str, status: int, error: str
) -> None:
    response = raw(chatmaid_sandbox, method, path, SEED.test_key)
    assert_error_envelope(response, status, error, path)
    assert response.json()["message"] == [f"Cannot {method} {path}"]


# -- 429 --------------------------------------------------------------------------------


def test_429_per_key_rate_limit(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.update_settings(retry_after_header=True)  # undocumented extra
    limited = chatmaid_sandbox.admin.create_api_key(rate_limit=3)["key"]
    client = make_client(limited, retry=NO_RETRIES)
    for _ in range(3):
        client.get_account()
    with pytest.raises(RateLimitedError) as error:
        client.list_phone_numbers()
    assert error.value.retry_after == 20  # 3/min: a token every 20 s
    response = raw(chatmaid_sandbox, "GET", "/v1/account", limited)
    assert response.status_code == 429
    assert response.json() == {"success": False, "error": "Rate limit exceeded", "retryAfter": 20}
    assert response.headers["Retry-After"] == "20"
    # Other keys have their own buckets.
    make_client().get_account()


def test_429_every_authenticated_request_counts(chatmaid_sandbox: SandboxHandle) -> None:
    chatmaid_sandbox.admin.update_settings(rate_limit=2, retry_after_header=True)
    narrow = chatmaid_sandbox.admin.create_api_key(scopes=["account:read"])["key"]
    assert raw(chatmaid_sandbox, "GET", "/v1/messages", narrow).status_code == 403
    assert raw(chatmaid_sandbox, "POST", "/v1/messages/send", narrow, json={}).status_code == 403
    response = raw(chatmaid_sandbox, "GET", "/v1/account", narrow)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) == response.json()["retryAfter"] == 30


# -- idempotency ------------------------------------------------------------------------


def test_idempotency_key_reuse_returns_the_original(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    client = make_client()
    first = client.send_message(
        from_phone=SEED.phone_id, to=TO, content="first", idempotency_key="order-1"
    )
    again = client.send_message(
        from_phone=SEED.phone_id, to=TO, content="first", idempotency_key="order-1"
    )
    assert again == first
    # Another body under the same key: the client refuses the original as a success.
    with pytest.raises(IdempotencyConflictError) as conflict:
        client.send_message(
            from_phone=SEED.disconnected_phone_id,
            to="+15550000000",
            content="a different body",
            idempotency_key="order-1",
        )
    assert conflict.value.message == first
    body = {"fromPhoneId": SEED.phone_id, "to": TO, "content": "third", "idempotencyKey": "order-1"}
    response = raw(chatmaid_sandbox, "POST", "/v1/messages/send", SEED.test_key, json=body)
    assert response.status_code == 201
    assert response.json()["data"]["id"] == first.id
    assert response.json()["data"]["content"] == "first"
    stored = [m for m in chatmaid_sandbox.admin.messages() if m["idempotencyKey"] == "order-1"]
    assert len(stored) == 1


def test_idempotency_returns_current_data(make_client: ClientFactory) -> None:
    client = make_client(SEED.live_key)
    pending = client.send_message(
        from_phone=SEED.phone_id, to=TO, content="x", idempotency_key="live-1"
    )
    assert pending.status == "pending"
    settled = client.wait_for_terminal(pending.id, poll_interval=0.05, timeout=5)
    again = client.send_message(
        from_phone=SEED.phone_id, to=TO, content="x", idempotency_key="live-1"
    )
    assert (again.id, again.status, again.sent_at) == (pending.id, "sent", settled.sent_at)


def test_concurrent_sends_with_one_key_create_one_message(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    calls = [
        {
            "from_phone": SEED.phone_id,
            "to": TO,
            "content": "race",
            "idempotency_key": "race",
        }
        for _ in range(20)
    ]
    results = make_client().gather("send_message", calls)
    assert len({m.id for m in results}) == 1
    stored = [m for m in chatmaid_sandbox.admin.messages() if m["idempotencyKey"] == "race"]
    assert [m["id"] for m in stored] == [results[0].id]


# -- lifecycle --------------------------------------------------------------------------


def test_live_key_goes_pending_then_sent(make_client: ClientFactory) -> None:
    client = make_client(SEED.live_key)
    started = time.monotonic()
    message = client.send_message(from_phone=SEED.phone_id, to=TO, content="live")
    assert (message.status, message.environment, message.sent_at) == ("pending", "live", None)
    assert client.get_message(message.id).status == "pending"
    settled = client.wait_for_terminal(message.id, poll_interval=0.05, timeout=5)
    assert time.monotonic() - started >= 0.2  # the fixture's live_delay
    assert settled.status in {"sent", "delivered", "read"}  # the live profile moves on
    assert settled.sent_at is not None
    assert settled.created_at is not None
    assert settled.sent_at >= settled.created_at


@pytest.mark.parametrize(
    ("to", "code", "reason"),
    [
        ("+15550000000", "INVALID_RECIPIENT", "Recipient is not a WhatsApp user"),
        ("+15550000001", "RECIPIENT_NOT_REACHABLE", "Message could not be delivered"),
    ],
)
def test_failure_patterns(make_client: ClientFactory, to: str, code: str, reason: str) -> None:
    immediate = make_client().send_message(from_phone=SEED.phone_id, to=to, content="x")
    assert (immediate.status, immediate.error_code, immediate.error_message) == (
        "failed",
        code,
        reason,
    )
    assert immediate.failed_at is not None
    assert immediate.sent_at is None
    live = make_client(SEED.live_key)
    later = live.send_message(from_phone=SEED.phone_id, to=to, content="x")
    assert (later.status, later.error_code) == ("pending", None)
    settled = live.wait_for_terminal(later.id, poll_interval=0.05, timeout=5)
    assert (settled.status, settled.error_code, settled.error_message) == ("failed", code, reason)
    assert settled.failed_at is not None


# -- usage ------------------------------------------------------------------------------


def test_usage_counts_what_the_sandbox_holds(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=30)  # keep live messages pending
    test_client, live_client = make_client(), make_client(SEED.live_key)
    for to in (TO, TO, "+15550000000"):
        test_client.send_message(from_phone=SEED.phone_id, to=to, content="x")
    live_client.send_message(from_phone=SEED.phone_id, to=TO, content="x")
    with pytest.raises(NotFoundError):
        test_client.get_message("msg_missing")
    # 5 authenticated requests so far: 4 sends (201) and one 404.
    usage = test_client.get_usage("day")
    assert (usage.period, usage.messages.total, usage.messages.sent, usage.messages.failed) == (
        "day",
        3,
        2,
        1,
    )
    assert usage.messages.pending == 0
    assert (usage.api_requests.total, usage.api_requests.successful, usage.api_requests.failed) == (
        5,
        4,
        1,
    )
    live_usage = live_client.get_usage()  # month by default; the seed message is older
    assert live_usage.period == "month"
    assert (live_usage.messages.total, live_usage.messages.pending) == (1, 1)
    assert live_usage.api_requests.total == 6
    assert (live_usage.end_date - live_usage.start_date).days == 30
    week = test_client.get_usage("week")
    assert (week.end_date - week.start_date).days == 7


# -- faults -----------------------------------------------------------------------------


def test_fault_latency(make_client: ClientFactory, chatmaid_sandbox: SandboxHandle) -> None:
    chatmaid_sandbox.admin.inject_latency(0.3, method="GET", path="/v1/account")
    client = make_client()
    started = time.monotonic()
    client.get_account()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.list_phone_numbers()
    assert time.monotonic() - started < 0.3


def test_fault_5xx_fraction_is_retried_by_the_client(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.inject_errors(0.5, status=503, path="/v1/messages/send")
    client = make_client(retry=FAST_RETRIES, max_retries=8)
    sent = [client.send_message(from_phone=SEED.phone_id, to=TO, content=str(i)) for i in range(8)]
    counts = chatmaid_sandbox.admin.requests()["byEndpoint"]["POST /v1/messages/send"]
    assert counts["201"] == 8
    assert counts["503"] >= 2
    assert len(chatmaid_sandbox.admin.messages()) == 1 + len({m.id for m in sent}) == 9


def test_fault_500_without_retries_raises(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.inject_errors(1.0, status=500, count=1)
    with pytest.raises(ServerError) as error:
        make_client(max_retries=0).get_account()
    assert (error.value.status_code, error.value.error) == (500, "Internal Server Error")
    make_client(max_retries=0).get_account()  # count=1: the fault is spent


def test_fault_dropped_connection(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.drop_connections(count=1, path="/v1/messages/send")
    with pytest.raises(ChatmaidTransportError):
        make_client(max_retries=0).send_message(
            from_phone=SEED.phone_id, to=TO, content="x", idempotency_key="drop-1"
        )
    # The request was processed before the connection dropped...
    assert [m["idempotencyKey"] for m in chatmaid_sandbox.admin.messages()][-1] == "drop-1"
    # ...so a retry with the same idempotency key gets that message, not a second one.
    chatmaid_sandbox.admin.drop_connections(count=1, path="/v1/messages/send")
    message = make_client(retry=FAST_RETRIES).send_message(
        from_phone=SEED.phone_id, to=TO, content="x", idempotency_key="drop-2"
    )
    stored = [m for m in chatmaid_sandbox.admin.messages() if m["idempotencyKey"] == "drop-2"]
    assert [m["id"] for m in stored] == [message.id]


def test_fault_forced_429_window(
    make_client: ClientFactory, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.force_rate_limit(1.0, retry_after=1)
    with pytest.raises(RateLimitedError) as error:
        make_client(retry=NO_RETRIES).get_account()
    assert error.value.retry_after == 1
    started = time.monotonic()
    account = make_client().get_account()  # waits retryAfter, then succeeds
    assert account.account_id == SEED.account_id
    assert time.monotonic() - started >= 0.5
    assert chatmaid_sandbox.admin.requests()["byStatus"]["429"] >= 2


# -- OpenAPI ----------------------------------------------------------------------------


def test_openapi_document(chatmaid_sandbox: SandboxHandle) -> None:
    document = httpx.get(chatmaid_sandbox.url + "/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations == {
        ("POST", "/v1/messages/send"),
        ("GET", "/v1/messages"),
        ("GET", "/v1/messages/{messageId}"),
        ("GET", "/v1/phone-numbers"),
        ("GET", "/v1/phone-numbers/{id}"),
        ("GET", "/v1/phone-numbers/{id}/status"),
        ("GET", "/v1/account"),
        ("GET", "/v1/account/usage"),
    }
    schemas = document["components"]["schemas"]
    assert {"from", "mediaUrls", "sentAt", "errorCode"} <= set(schemas["Message"]["properties"])
    assert set(document["paths"]["/v1/messages/send"]["post"]["responses"]) == {
        "201", "400", "401", "403", "404", "429",
    }  # fmt: skip
    refs: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.update(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value."""
    if value is None:
        return "null"
    for kind, python in (("boolean", bool), ("integer", int), ("number", float)):
        if isinstance(value, python):  # bool first: True is an int too
            return kind
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds[type(value)]


def schema_problems(
    value: Any, schema: dict[str, Any], schemas: dict[str, Any], at: str = "$", *, extras: bool
) -> list[str]:
    """Where ``value`` breaks ``schema``: ``$ref``, ``type`` (``null`` included), ``const``,
    ``enum``, ``required``, ``properties`` (the keys must be exactly the documented ones,
    or include them if ``extras``) and ``items``. Nothing else (no jsonschema dependency).
    """
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        if name not in schemas:
            return [f"{at}: unresolvable $ref {schema['$ref']}"]
        return schema_problems(value, schemas[name], schemas, at, extras=extras)
    kind = json_type(value)
    if "type" in schema:
        allowed = {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
        if kind not in allowed and not (kind == "integer" and "number" in allowed):
            return [f"{at}: {kind} {value!r}, documented as {'|'.join(sorted(allowed))}"]
    problems = []
    same = (kind, value)
    if "const" in schema and same != (json_type(schema["const"]), schema["const"]):
        problems.append(f"{at}: {value!r}, documented as {schema['const']!r}")
    if "enum" in schema and same not in [(json_type(e), e) for e in schema["enum"]]:
        problems.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if kind == "object" and "properties" in schema:
        documented = schema["properties"]
        missing = [k for k in schema.get("required", []) if k not in value]
        undocumented = sorted(set(value) - set(documented))
        if missing:
            problems.append(f"{at}: required {missing} missing")
        if undocumented and not extras:
            problems.append(f"{at}: undocumented {undocumented}")
        for key in sorted(set(value) & set(documented)):
            problems += schema_problems(
                value[key], documented[key], schemas, f"{at}.{key}", extras=extras
            )
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            problems += schema_problems(
                item, schema["items"], schemas, f"{at}[{index}]", extras=extras
            )
    return problems


def test_answers_match_the_served_document(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    # The document describes the docs profile; the live profile may only add keys (its
    # known extras), never drop or retype a documented one.
    extras = chatmaid_sandbox_profile == "live"
    # A sent message stays sent (the live profile would make it delivered live_delay on).
    chatmaid_sandbox.admin.update_settings(live_delay=60)
    document = httpx.get(chatmaid_sandbox.url + "/openapi.json").json()
    schemas = document["components"]["schemas"]
    key = SEED.test_key

    def check(response: httpx.Response, method: str, path: str) -> Any:
        operation = document["paths"][path][method.lower()]
        answer = operation["responses"][str(response.status_code)]
        schema = answer["content"]["application/json"]["schema"]
        body = response.json()
        assert schema_problems(body, schema, schemas, extras=extras) == [], (method, path)
        return body

    def send(**fields: Any) -> Any:
        body = {"fromPhoneId": SEED.phone_id, "to": TO, **fields}
        return raw(chatmaid_sandbox, "POST", "/v1/messages/send", key, json=body)

    sent = check(send(content="hi"), "POST", "/v1/messages/send")
    assert sent["data"]["status"] == "sent"
    failed = check(send(content="hi", to="+15550000001"), "POST", "/v1/messages/send")
    assert failed["data"]["errorCode"] is not None
    media = send(mediaUrls=["https://example.com/a.png"])
    assert check(media, "POST", "/v1/messages/send")["data"]["content"] is None
    message_id = sent["data"]["id"]
    got = raw(chatmaid_sandbox, "GET", f"/v1/messages/{message_id}", key)
    check(got, "GET", "/v1/messages/{messageId}")
    page = check(raw(chatmaid_sandbox, "GET", "/v1/messages", key), "GET", "/v1/messages")
    assert len(page["data"]["data"]) >= 3
    phones = raw(chatmaid_sandbox, "GET", "/v1/phone-numbers", key)
    assert len(check(phones, "GET", "/v1/phone-numbers")["data"]) >= 2
    for phone_id in (SEED.phone_id, SEED.disconnected_phone_id):
        one = raw(chatmaid_sandbox, "GET", f"/v1/phone-numbers/{phone_id}", key)
        check(one, "GET", "/v1/phone-numbers/{id}")
        status = raw(chatmaid_sandbox, "GET", f"/v1/phone-numbers/{phone_id}/status", key)
        check(status, "GET", "/v1/phone-numbers/{id}/status")
    check(raw(chatmaid_sandbox, "GET", "/v1/account", key), "GET", "/v1/account")
    usage = raw(chatmaid_sandbox, "GET", "/v1/account/usage?period=week", key)
    check(usage, "GET", "/v1/account/usage")

    # Error envelopes: 400 (several problems), 401, 404; then the 429 body.
    invalid = send(to=123)
    assert invalid.status_code == 400
    assert len(check(invalid, "POST", "/v1/messages/send")["message"]) >= 2
    unauthorized = raw(chatmaid_sandbox, "GET", "/v1/messages")
    assert unauthorized.status_code == 401
    check(unauthorized, "GET", "/v1/messages")
    missing = raw(chatmaid_sandbox, "GET", "/v1/messages/msg_unknown", key)
    assert missing.status_code == 404
    check(missing, "GET", "/v1/messages/{messageId}")
    chatmaid_sandbox.admin.update_settings(rate_limit=1)  # a fresh bucket of one token
    answers = [raw(chatmaid_sandbox, "GET", "/v1/account", key) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    assert set(check(answers[1], "GET", "/v1/account")) == {"success", "error", "retryAfter"}

    # A checker that cannot fail proves nothing: a tampered answer must be flagged.
    schema = document["paths"]["/v1/messages/send"]["post"]["responses"]["201"]
    schema = schema["content"]["application/json"]["schema"]
    data = {**sent["data"], "status": "queued", "createdAt": None, "mediaUrls": [7], "bogus": 0}
    del data["id"]
    tampered = {"success": 1, "data": data}
    assert schema_problems(tampered, schema, schemas, extras=extras) == [
        "$.data: required ['id'] missing",
        *([] if extras else ["$.data: undocumented ['bogus']"]),
        "$.data.createdAt: null None, documented as string",
        "$.data.mediaUrls[0]: integer 7, documented as string",
        "$.data.status: 'queued' is not one of ['pending', 'sent', 'failed']",
        "$.success: integer 1, documented as boolean",
    ]
