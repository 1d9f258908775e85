"""Observers hear what the core does: attempts, retries, the honoured 429 wait, give-ups."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import (
    AttemptFinished,
    AttemptStarted,
    ClientEvent,
    GaveUp,
    LimiterWait,
    RateLimitedError,
    RateLimitWait,
    RetryPolicy,
    RetryScheduled,
    ServerError,
    TokenBucket,
)

from .conftest import MESSAGE, Api, envelope, error

SEND = {"from_phone": "p1", "to": "+15557654321", "content": "Hello", "idempotency_key": "k-1"}


def body_only_429(retry_after: float) -> httpx.Response:
    """The documented 429: ``retryAfter`` in the body and no ``Retry-After`` header."""
    return httpx.Response(
        429, json={"success": False, "error": "Rate limit exceeded", "retryAfter": retry_after}
    )


def recorder() -> tuple[list[ClientEvent], object]:
    events: list[ClientEvent] = []
    return events, events.append


def test_a_body_only_429_reports_the_wait_the_core_honours(api: Api) -> None:
    events, observe = recorder()
    api.respond([body_only_429(60), envelope(MESSAGE)])
    client = api.client(observers=[observe], retry=RetryPolicy(retry_after_jitter=0.0))
    api.call("send_message", client=client, **SEND)
    waits = [e for e in events if isinstance(e, RateLimitWait)]
    assert [w.seconds for w in waits] == [60]
    assert waits[0].idempotency_key == "k-1"
    assert waits[0].path == "/v1/messages/send"
    assert api.time.sleeps == [60]


def test_every_attempt_is_started_and_finished_with_its_status(api: Api) -> None:
    events, observe = recorder()
    api.respond([error(503), envelope(MESSAGE)])
    api.call("get_message", "msg_1", client=api.client(observers=[observe]))
    started = [e.attempt for e in events if isinstance(e, AttemptStarted)]
    finished = [(e.attempt, e.status_code) for e in events if isinstance(e, AttemptFinished)]
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert started == [1, 2]
    assert finished == [(1, 503), (2, 200)]
    assert [(r.reason, isinstance(r.error, ServerError)) for r in retries] == [
        ("server_error", True)
    ]


def test_a_transport_error_finishes_an_attempt_without_a_status(api: Api) -> None:
    events, observe = recorder()

    def drop(request: httpx.Request) -> httpx.Response:
        if len(api.requests) == 1:
            raise httpx.RemoteProtocolError("dropped", request=request)
        return envelope(MESSAGE)

    api.respond(drop)
    api.call("get_message", "msg_1", client=api.client(observers=[observe]))
    first = next(e for e in events if isinstance(e, AttemptFinished))
    assert first.status_code is None
    assert first.error is not None
    assert any(isinstance(e, RetryScheduled) and e.reason == "transport_error" for e in events)


def test_giving_up_says_why(api: Api) -> None:
    events, observe = recorder()
    api.respond(lambda _r: error(400, ["to must be a string"]))
    with pytest.raises(Exception, match="to must be a string"):
        api.call("get_message", "msg_1", client=api.client(observers=[observe]))
    assert [(e.reason, e.attempt) for e in events if isinstance(e, GaveUp)] == [
        ("not_retryable", 1)
    ]


def test_the_limiter_wait_is_reported(api: Api) -> None:
    events, observe = recorder()
    bucket = TokenBucket(60, burst=1, clock=api.time.clock)
    client = api.client(observers=[observe], rate_limiter=bucket)
    api.call("get_message", "msg_1", client=client)
    api.call("get_message", "msg_1", client=client)
    assert [e.seconds for e in events if isinstance(e, LimiterWait)] == [pytest.approx(1.0)]


def test_429s_do_not_use_up_max_retries(api: Api) -> None:
    api.respond([body_only_429(1)] * 6 + [envelope(MESSAGE)])
    client = api.client(max_retries=1, retry=RetryPolicy(retry_after_jitter=0.0))
    assert api.call("get_message", "msg_1", client=client).id == MESSAGE["id"]
    assert len(api.requests) == 7


def test_429s_are_bounded_by_their_own_limit(api: Api) -> None:
    events, observe = recorder()
    api.respond(lambda _r: body_only_429(1))
    policy = RetryPolicy(retry_after_jitter=0.0, max_rate_limit_waits=3)
    with pytest.raises(RateLimitedError):
        api.call("get_message", "msg_1", client=api.client(retry=policy, observers=[observe]))
    assert len(api.requests) == 4
    assert [e.reason for e in events if isinstance(e, GaveUp)] == ["max_attempts"]


def test_a_failing_observer_never_breaks_a_call(api: Api) -> None:
    def broken(_event: ClientEvent) -> None:
        raise RuntimeError("observer bug")

    assert api.call("get_message", "msg_1", client=api.client(observers=[broken])).id
