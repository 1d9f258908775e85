"""A send the core gives up on says which idempotency key it used, so a retry is safe."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import ChatmaidError, ChatmaidTransportError, ServerError

from .conftest import MESSAGE, Api, envelope, error


def test_a_given_key_is_on_the_error(api: Api) -> None:
    api.respond(lambda _r: error(503))
    with pytest.raises(ServerError) as caught:
        api.call(
            "send_message",
            client=api.client(max_retries=1),
            from_phone="p1",
            to="+15557654321",
            content="Hello",
            idempotency_key="order-7784",
        )
    assert caught.value.idempotency_key == "order-7784"


def test_a_generated_key_is_on_the_error_and_a_retry_with_it_is_answered(api: Api) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("the API created it, then the answer was lost", request=request)

    api.respond(drop)
    with pytest.raises(ChatmaidTransportError) as caught:
        api.call(
            "send_message",
            client=api.client(max_retries=0),
            from_phone="p1",
            to=MESSAGE["to"],
            content="Hello",
        )
    key = caught.value.idempotency_key
    assert key is not None
    assert key.startswith("cm-")
    api.respond(lambda _r: envelope(MESSAGE, 201))
    again = api.call(
        "send_message", from_phone="p1", to=MESSAGE["to"], content="Hello", idempotency_key=key
    )
    assert again.id == MESSAGE["id"]
    assert all(b'"idempotencyKey":"%s"' % key.encode() in r.content for r in api.requests)


def test_reads_carry_no_key(api: Api) -> None:
    api.respond(lambda _r: error(503))
    with pytest.raises(ChatmaidError) as caught:
        api.call("get_message", "msg_1", client=api.client(max_retries=0))
    assert caught.value.idempotency_key is None
