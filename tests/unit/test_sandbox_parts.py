"""The sandbox's parts on their own: rate limiter, faults, scopes, validation, store."""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chatmaid.sandbox.app import v1_routes
from chatmaid.sandbox.auth import READ_ACCOUNT, READ_PHONES, SEND_MESSAGES, authenticate
from chatmaid.sandbox.changes import ChangeFeed
from chatmaid.sandbox.cli import build_parser, options_from
from chatmaid.sandbox.deliveries import DeliveryAttempt, DeliveryRecord, subject_of
from chatmaid.sandbox.faults import Fault, FaultInjector
from chatmaid.sandbox.openapi import openapi_document
from chatmaid.sandbox.options import SandboxOptions, Settings, WebhookConfig
from chatmaid.sandbox.ratelimit import RateLimiter
from chatmaid.sandbox.responses import ApiError, RateLimited
from chatmaid.sandbox.seed import SEED, seeded_state
from chatmaid.sandbox.state import MessageRecord, RequestStats, utcnow
from chatmaid.sandbox.validation import parse_list_query, parse_send
from chatmaid.sandbox.wire import is_e164, iso, sign


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


def test_the_change_feed_lists_each_record_once_at_its_latest_change() -> None:
    feed = ChangeFeed()
    for kind, record_id in (("message", "m1"), ("message", "m2"), ("delivery", "d1")):
        feed.touch(kind, record_id)
    feed.touch("message", "m1")
    assert feed.seq == 4
    assert feed.since(0) == [("message", "m2", 2), ("delivery", "d1", 3), ("message", "m1", 4)]
    assert feed.since(3) == [("message", "m1", 4)]
    assert feed.since(4) == []
    assert ChangeFeed().epoch != feed.epoch


def test_a_delivery_record_follows_its_attempts() -> None:
    now = utcnow()
    record = DeliveryRecord("dlv_1", "wh_1", "http://x/hooks", "message.sent", "msg_1", "{}", now)

    def attempt(number: int, status: int | None) -> DeliveryAttempt:
        return DeliveryAttempt("dlv_1", "wh_1", "http://x/hooks", "message.sent", number, now,
                               now, 0.0, "t=1,v1=ab", 2.0, status_code=status)  # fmt: skip

    assert record.to_admin()["state"] == "queued"
    record.add(attempt(1, 500), next_attempt_at=now + timedelta(minutes=1))
    assert (record.state, record.next_attempt_at) == ("retrying", now + timedelta(minutes=1))
    record.add(attempt(2, None), next_attempt_at=None)
    assert record.state == "failed"
    view = record.to_admin()
    assert [(a["statusCode"], a["answeredAt"] is None) for a in view["attempts"]] == [
        (500, False),
        (None, True),  # nothing answered: a timeout or a connection error
    ]
    record.add(attempt(3, 204), next_attempt_at=None)
    assert record.to_admin()["state"] == "succeeded"
    assert subject_of({"data": {"messageId": "msg_1"}}) == "msg_1"
    assert subject_of({"data": {"phoneId": "507f"}}) == "507f"
    assert subject_of({"data": "x"}) is None


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
        profile="live",
        retry_after_header=True,
        delivery_id_header=True,
        keep_signature_on_retry=True,
        webhooks=(
            WebhookConfig("http://127.0.0.1:9/a", "s", frozenset({"message.sent"})),
            WebhookConfig("http://127.0.0.1:9/b", "s", frozenset({"message.sent"})),
        ),
    )
    args = build_parser().parse_args(["serve", *options.to_cli_args()])
    assert options_from(args) == options


def test_options_default_to_the_docs_and_nothing_undocumented() -> None:
    settings = SandboxOptions().settings()
    assert (settings.profile, settings.live) == ("docs", False)
    assert settings.retry_after_header is False
    assert settings.delivery_id_header is False
    assert settings.keep_signature_on_retry is False
    defaults = build_parser().parse_args(["serve"])
    assert options_from(defaults) == SandboxOptions()


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="profile must be one of docs, live"):
        Settings(profile="staging")
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
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(document)))
    assert refs
    assert refs <= set(schemas)


# -- the sandbox's own wire facts -----------------------------------------------------------


def test_signature_is_the_docs_hmac() -> None:
    # Reference value from `openssl dgst -sha256 -hmac whsec_x` over '1700000000.{"a":1}'.
    assert sign(b'{"a":1}', "whsec_x", timestamp=1700000000) == (
        "t=1700000000,v1=b3438763ab46d9634b9844c8722818eaf523f803db1327484c6067462a5fd6d1"
    )


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("+1987654321", True),  # the docs' own example
        ("+15551234567", True),
        ("+12", True),
        ("+123456789012345", True),  # 15 digits
        ("+1234567890123456", False),
        ("+1", False),
        ("+0123456", False),
        ("15551234567", False),
        ("+1555 123 4567", False),
        ("+\uff11\uff15\uff15\uff15\uff11\uff12\uff13\uff14", False),  # full-width digits
        ("+15551234567\n", False),
        (15551234567, False),
    ],
)
def test_e164_is_the_format_the_docs_state(number: object, valid: bool) -> None:
    assert is_e164(number) is valid


def test_timestamps_are_written_as_the_docs_show() -> None:
    moment = datetime(2026, 2, 6, 14, 18, 33, 120999, tzinfo=timezone.utc)
    assert iso(moment) == "2026-02-06T14:18:33.120Z"
    assert iso(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-02-06T14:18:33.120Z"
    assert iso(None) is None


#: Client modules the sandbox may use: the server handle builds clients for tests, and the
#: OpenAPI document carries the package's version (its schemas are written from the docs,
#: ``schemas.py``). Nothing that validates or shapes an answer.
ALLOWED_CLIENT_IMPORTS = {
    "server.py": {"_async_client", "_client", "_config"},
    "openapi.py": {"_version"},
}


def test_the_sandbox_shares_no_validation_or_wire_code_with_the_client() -> None:
    import chatmaid.sandbox

    package = Path(chatmaid.sandbox.__file__).parent
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text())
        used = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("chatmaid." if node.level == 2 else "") + (node.module or "")]
            else:
                continue
            used |= {
                name.removeprefix("chatmaid.")
                for name in names
                if name.startswith("chatmaid") and not name.startswith("chatmaid.sandbox")
            }
        assert used <= ALLOWED_CLIENT_IMPORTS.get(module.name, set()), module.name
