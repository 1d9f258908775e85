"""The sandbox's parts on their own: rate limiter, faults, scopes, validation, store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chatmaid.sandbox.app import v1_routes
from chatmaid.sandbox.auth import READ_ACCOUNT, READ_PHONES, SEND_MESSAGES, authenticate
from chatmaid.sandbox.cli import build_parser, options_from
from chatmaid.sandbox.faults import Fault, FaultInjector
from chatmaid.sandbox.openapi import openapi_document
from chatmaid.sandbox.options import SandboxOptions, Settings, WebhookConfig
from chatmaid.sandbox.ratelimit import RateLimiter
from chatmaid.sandbox.responses import ApiError, RateLimited
from chatmaid.sandbox.seed import SEED, seeded_state
from chatmaid.sandbox.state import MessageRecord, RequestStats, utcnow
from chatmaid.sandbox.validation import parse_list_query, parse_send


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- rate limiter -------------------------------------------------------------------------


def test_bucket_allows_the_limit_then_refills_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert [limiter.take("k", 60) for _ in range(60)] == [None] * 60
    assert limiter.take("k", 60) == 1  # 1 token a second
    clock.now += 0.5
    assert limiter.take("k", 60) == 1  # half a token: still at least 1 s
    clock.now += 0.5
    assert limiter.take("k", 60) is None
    assert limiter.take("other", 60) is None  # per key


def test_bucket_retry_after_is_whole_seconds_until_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(6):
        limiter.take("k", 6)
    assert limiter.take("k", 6) == 10
    clock.now += 4
    assert limiter.take("k", 6) == 6
    assert limiter.take("k", 0) is None  # 0 = off
    limiter.reset()
    assert limiter.take("k", 6) is None


# -- faults -------------------------------------------------------------------------------


def fault(kind: Any, **fields: Any) -> Fault:
    return Fault(id=f"flt_{kind}", kind=kind, **fields)


def test_faults_match_method_and_path_prefix() -> None:
    injector = FaultInjector(seed=1)
    injector.add(fault("latency", method="GET", path="/v1/messages", seconds=0.2))
    injector.add(fault("latency", seconds=0.1))
    assert injector.plan("GET", "/v1/messages/msg_1").latency == pytest.approx(0.3)
    assert injector.plan("POST", "/v1/messages/send").latency == pytest.approx(0.1)
    injector.clear()
    assert injector.plan("GET", "/v1/messages").latency == 0


def test_fault_fraction_is_repeatable_and_count_limited() -> None:
    def pattern() -> list[bool]:
        injector = FaultInjector(seed=7)
        injector.add(fault("error", fraction=0.5, status=503))
        return [injector.plan("GET", "/v1/account").answer is not None for _ in range(40)]

    first = pattern()
    assert first == pattern()
    assert 10 < sum(first) < 30
    injector = FaultInjector(seed=7)
    injector.add(fault("drop", remaining=2))
    assert [injector.plan("GET", "/v1/account").drop for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert injector.faults == []


def test_rate_limit_window_answers_429_until_it_ends() -> None:
    clock = Clock()
    injector = FaultInjector(seed=0, clock=clock)
    injector.add(fault("rate_limit", seconds=2.5))
    answer = injector.plan("GET", "/v1/account").answer
    assert isinstance(answer, RateLimited)
    assert answer.retry_after == 3
    clock.now += 2.5
    assert injector.plan("GET", "/v1/account").answer is None
    assert injector.faults == []


# -- auth ---------------------------------------------------------------------------------


def test_scope_rules_follow_the_matrix() -> None:
    assert SEND_MESSAGES.allows(frozenset({"messages:write"}))
    assert not SEND_MESSAGES.allows(frozenset({"messages:read"}))
    assert READ_PHONES.allows(frozenset({"messages:anything"}))  # messages:*
    assert READ_PHONES.allows(frozenset({"phone-numbers:read"}))
    assert not READ_PHONES.allows(frozenset({"account:read"}))
    assert not READ_ACCOUNT.allows(frozenset({"messages:delete"}))
    assert READ_PHONES.accepted == [
        "phone_numbers:read",
        "phone-numbers:read",
        "messages:*",
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing API key"),
        ("Token abc", "Malformed Authorization header"),
        ("Bearer sk_prod_x", "Invalid API key format"),
        ("Bearer sk_test_nope", "Invalid API key"),
    ],
)
def test_authenticate_refuses(header: str | None, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        authenticate(header, seeded_state())
    assert refused.value.status_code == 401
    assert refused.value.messages[0].startswith(message)
    assert "sk_test_nope" not in refused.value.messages[0]


def test_authenticate_accepts_a_seeded_key_case_insensitive_scheme() -> None:
    assert authenticate(f"bearer {SEED.test_key}", seeded_state()).environment == "test"


# -- validation ---------------------------------------------------------------------------


def test_parse_send_reports_every_problem() -> None:
    with pytest.raises(ApiError) as refused:
        parse_send({"to": None, "mediaUrls": "https://x"})
    assert refused.value.messages == [
        "fromPhoneId is required",
        "Phone number must be in E.164 format (e.g., +1987654321)",
        "to must be a string",
        "mediaUrls must be an array",
        "content should not be empty",
    ]
    request = parse_send({"fromPhoneId": "p", "to": "+15557654321", "content": "hi"})
    assert (request.media_urls, request.idempotency_key) == ([], None)


def test_list_query_defaults_to_the_keys_environment() -> None:
    query = parse_list_query({}, "live")
    assert (query.page, query.limit, query.environment, query.status) == (1, 20, "live", None)
    assert parse_list_query({"environment": "test", "limit": "100"}, "live").limit == 100


# -- store --------------------------------------------------------------------------------


def test_messages_are_listed_newest_first_with_ties_newest_stored_first() -> None:
    state = seeded_state()
    now = utcnow()
    for index, created in enumerate((now, now, now - timedelta(seconds=1))):
        state.add_message(
            MessageRecord(
                id=f"msg_{index}",
                phone_id=SEED.phone_id,
                sender=SEED.phone_number,
                to="+15557654321",
                content="x",
                media_urls=[],
                environment="test",
                created_at=created,
            )
        )
    found = state.messages_newest_first("test", None, None)
    assert [m.id for m in found] == ["msg_1", "msg_0", "msg_2", SEED.example_message_id]


def test_request_stats_count_by_endpoint_and_usage_window() -> None:
    stats = RequestStats()
    stats.record("GET /v1/account", 200, authenticated=True)
    stats.record("GET /v1/account", 429, authenticated=True)
    stats.record("GET /v1/account", 401, authenticated=False)
    usage = stats.usage_since(utcnow() - timedelta(days=1))
    assert usage == {"total": 2, "successful": 1, "failed": 1}
    assert stats.to_admin() == {
        "total": 3,
        "byStatus": {"200": 1, "401": 1, "429": 1},
        "byEndpoint": {"GET /v1/account": {"200": 1, "401": 1, "429": 1}},
    }


# -- options and CLI ----------------------------------------------------------------------


def test_options_round_trip_through_the_cli_flags() -> None:
    options = SandboxOptions(
        rate_limit=0,
        live_delay=0.5,
        time_scale=0.01,
        webhook_timeout=3,
        random_seed=9,
        webhooks=(
            WebhookConfig("http://127.0.0.1:9/a", "s", frozenset({"message.sent"})),
            WebhookConfig("http://127.0.0.1:9/b", "s", frozenset({"message.sent"})),
        ),
    )
    args = build_parser().parse_args(["serve", *options.to_cli_args()])
    assert options_from(args) == options


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="rate_limit must be an integer >= 0"):
        Settings(rate_limit=-1)
    with pytest.raises(ValueError, match="unknown webhook events"):
        WebhookConfig("http://127.0.0.1/x", "s", frozenset({"message.bogus"}))
    mixed = (
        WebhookConfig("http://127.0.0.1/a", "s1"),
        WebhookConfig("http://127.0.0.1/b", "s2"),
    )
    with pytest.raises(ValueError, match="one secret"):
        SandboxOptions(webhooks=mixed).to_cli_args()


def test_openapi_covers_every_route_with_resolvable_refs() -> None:
    document = openapi_document(v1_routes())
    assert sum(len(item) for item in document["paths"].values()) == 8
    schemas = document["components"]["schemas"]
    assert {"Message", "Page_Message_", "PhoneNumber", "Usage", "ErrorEnvelope"} <= set(schemas)
    send = document["paths"]["/v1/messages/send"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SendMessageRequest"
    }
    assert "messages:write" in send["description"]
