"""Sender resolution lives in the core: one phone-list fetch for concurrent callers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from chatmaid import AsyncChatmaidClient, ChatmaidClient, NoConnectedPhoneError

from .conftest import MESSAGE, TEST_KEY, Api, envelope
from .test_client_endpoints import OFFLINE_PHONE, PHONE


def counting_handler(
    counts: dict[str, int], delay: float = 0.0
) -> Callable[[httpx.Request], httpx.Response]:
    lock = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        with lock:
            counts[request.url.path] = counts.get(request.url.path, 0) + 1
        if request.url.path == "/v1/phone-numbers":
            time.sleep(delay)
            return envelope([OFFLINE_PHONE, PHONE])
        return envelope(MESSAGE, 201)

    return handle


@pytest.mark.parametrize(
    ("from_phone", "fetches", "sent_from"),
    [
        ("p_given", 0, "p_given"),  # a phone id passes through
        ("+15550000002", 1, "p_offline"),  # a number is looked up
        (None, 1, PHONE["id"]),  # nothing: the first connected phone
    ],
)
def test_send_message_resolves_its_sender(
    api: Api, from_phone: str | None, fetches: int, sent_from: str
) -> None:
    counts: dict[str, int] = {}
    api.respond(counting_handler(counts))
    api.call("send_message", from_phone=from_phone, to="+15557654321", content="Hello")
    assert counts.get("/v1/phone-numbers", 0) == fetches
    sent = [r for r in api.requests if r.url.path == "/v1/messages/send"]
    assert b'"fromPhoneId":"%s"' % sent_from.encode() in sent[0].content


def test_an_unknown_sender_number_fails_before_any_send(api: Api) -> None:
    counts: dict[str, int] = {}
    api.respond(counting_handler(counts))
    with pytest.raises(NoConnectedPhoneError, match=r"\+15559999999.*not a phone"):
        api.call("send_message", from_phone="+15559999999", to="+15557654321", content="x")
    assert "/v1/messages/send" not in counts


def test_concurrent_tasks_on_a_cold_cache_fetch_the_phone_list_once() -> None:
    counts: dict[str, int] = {}
    handler = counting_handler(counts)

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/phone-numbers":
            await asyncio.sleep(0.05)
        return handler(request)

    async def main() -> None:
        async with AsyncChatmaidClient(
            TEST_KEY,
            base_url="https://api.test",
            requests_per_minute=None,
            transport=httpx.MockTransport(handle),
        ) as client:
            await asyncio.gather(
                *(client.send_message(to="+15557654321", content="Hello") for _ in range(20))
            )

    asyncio.run(main())
    assert counts == {"/v1/phone-numbers": 1, "/v1/messages/send": 20}


def test_concurrent_threads_on_a_cold_cache_fetch_the_phone_list_once() -> None:
    counts: dict[str, int] = {}
    client = ChatmaidClient(
        TEST_KEY,
        base_url="https://api.test",
        requests_per_minute=None,
        transport=httpx.MockTransport(counting_handler(counts, delay=0.05)),
    )
    threads = [
        threading.Thread(
            target=client.send_message, kwargs={"to": "+15557654321", "content": "Hello"}
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert counts == {"/v1/phone-numbers": 1, "/v1/messages/send": 8}


def test_a_failed_fetch_releases_the_claim_for_the_next_caller(api: Api) -> None:
    answers = iter([httpx.Response(400, json={"message": ["nope"]}), envelope([PHONE])])
    api.respond(lambda _r: next(answers))
    client = api.client()
    with pytest.raises(Exception, match="nope"):
        api.call("resolve_sender", client=client)
    assert api.call("resolve_sender", client=client).id == PHONE["id"]
