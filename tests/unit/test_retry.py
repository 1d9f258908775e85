"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from chatmaid import (
    AuthenticationError,
    BadRequestError,
    ChatmaidTimeoutError,
    ChatmaidTransportError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TokenBucket,
)

from .conftest import MESSAGE, Api, envelope, error

SEND = {"from_phone": "p1", "to": "+15557654321", "content": "Hi"}


def rate_limited(retry_after: float | None = None, header: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"success": False, "error": "Rate limit exceeded"}
    if retry_after is not None:
        body["retryAfter"] = retry_after
    return httpx.Response(429, json=body, headers={"Retry-After": header} if header else {})


def no_jitter() -> RetryPolicy:
    return RetryPolicy(retry_after_jitter=0.0)


def test_429_waits_retry_after_from_the_body(api: Api) -> None:
    api.respond([rate_limited(7), envelope(MESSAGE)])
    api.call("send_message", client=api.client(retry=no_jitter()), **SEND)
    assert api.time.sleeps == [7]


def test_429_waits_retry_after_from_the_header(api: Api) -> None:
    api.respond([rate_limited(header="3"), envelope(MESSAGE)])
    api.call("get_message", "msg_1", client=api.client(retry=no_jitter()))
    assert api.time.sleeps == [3]


def test_429_wait_is_capped_and_jittered(api: Api) -> None:
    policy = RetryPolicy(retry_after_max=10, retry_after_jitter=0.1)
    api.respond([rate_limited(3600), envelope(MESSAGE)])
    api.call("get_message", "msg_1", client=api.client(retry=policy))
    assert 10 <= api.time.sleeps[0] <= 11


def test_429_holds_the_shared_bucket_for_every_caller(api: Api) -> None:
    bucket = TokenBucket(6000, burst=100, clock=api.time.clock)
    api.respond([rate_limited(5), envelope(MESSAGE), envelope(MESSAGE)])
    client = api.client(retry=no_jitter(), rate_limiter=bucket)
    api.call("get_message", "msg_1", client=client)
    # The 5 s wait, asked again every second (a booking is never more than 1 s ahead).
    assert api.time.sleeps == [pytest.approx(1.0)] * 5
    # After the hold the bucket restarts at its steady pace: one interval (10 ms), no more.
    api.call("get_message", "msg_1", client=client)
    assert api.time.sleeps[5:] == [pytest.approx(0.01)]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_exponential_full_jitter(api: Api, status: int) -> None:
    policy = RetryPolicy(max_attempts=4, backoff_base=1.0, random=random.Random(7))
    api.respond([error(status), error(status), error(status), envelope(MESSAGE)])
    api.call("send_message", client=api.client(retry=policy), **SEND)
    assert len(api.requests) == 4
    for attempt, slept in enumerate(api.time.sleeps, start=1):
        assert 0 <= slept <= 2 ** (attempt - 1)


def test_every_retry_of_one_send_carries_the_same_idempotency_key(api: Api) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        outcome = answers.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    answers: list[httpx.Response | Exception] = [
        error(503),
        httpx.ConnectError("refused"),
        envelope(MESSAGE),
    ]
    api.respond(answer)
    api.call("send_message", **SEND)
    keys = {json.loads(r.content)["idempotencyKey"] for r in api.requests}
    assert len(api.requests) == 3
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused"), ChatmaidTransportError),
        (httpx.ReadTimeout("slow"), ChatmaidTimeoutError),
        (httpx.RemoteProtocolError("dropped"), ChatmaidTransportError),
    ],
)
def test_transport_errors_are_retried_then_raised(
    api: Api, exc: Exception, expected: type[ChatmaidTransportError]
) -> None:
    def fail(_request: httpx.Request) -> httpx.Response:
        raise exc

    api.respond(fail)
    with pytest.raises(expected) as caught:
        api.call("get_message", "msg_1", client=api.client(max_retries=2))
    assert len(api.requests) == 3
    assert caught.value.path == "/v1/messages/msg_1"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, Exception),
        (422, Exception),
    ],
)
def test_other_4xx_are_never_retried(api: Api, status: int, expected: type[Exception]) -> None:
    api.respond(lambda _r: error(status))
    with pytest.raises(expected):
        api.call("send_message", **SEND)
    assert len(api.requests) == 1
    assert api.time.sleeps == []


def test_retries_stop_at_the_attempt_limit(api: Api) -> None:
    api.respond(lambda _r: error(503))
    with pytest.raises(ServerError):
        api.call("get_message", "msg_1", client=api.client(max_retries=3))
    assert len(api.requests) == 4


def test_retries_stop_at_the_deadline(api: Api) -> None:
    api.respond(lambda _r: rate_limited(10))
    client = api.client(retry=no_jitter(), deadline=25, max_retries=100)
    with pytest.raises(RateLimitedError) as caught:
        api.call("get_message", "msg_1", client=client)
    # Two 10 s waits fit in 25 s; a third would pass the deadline, so it gives up.
    assert api.time.sleeps == [10, 10]
    assert caught.value.retry_after == 10


def test_429_without_any_retry_after_backs_off_exponentially(api: Api) -> None:
    policy = RetryPolicy(backoff_base=1.0, random=random.Random(1))
    api.respond([rate_limited(), envelope(MESSAGE)])
    api.call("get_message", "msg_1", client=api.client(retry=policy))
    assert 0 <= api.time.sleeps[0] <= 1


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)
