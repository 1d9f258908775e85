"""Each endpoint builds the documented request and parses the documented answer."""

from __future__ import annotations

import json

import pytest

from chatmaid import (
    Account,
    ChatmaidValidationError,
    DeliveryTimeoutError,
    Message,
    NoConnectedPhoneError,
    PhoneNumber,
    PhoneStatus,
    Usage,
)

from .conftest import MESSAGE, TEST_KEY, Api, envelope, error

PHONE = {
    "id": "507f1f77bcf86cd799439011",
    "phoneNumber": "+15551234567",
    "displayName": "Primary Sender",
    "connectionStatus": "connected",
    "lastConnectedAt": "2026-02-06T14:10:00.000Z",
    "lastDisconnectedAt": None,
    "createdAt": "2026-02-01T10:20:00.000Z",
    "updatedAt": "2026-02-06T14:10:00.000Z",
}
OFFLINE_PHONE = {
    **PHONE,
    "id": "p_offline",
    "phoneNumber": "+15550000002",
    "connectionStatus": "disconnected",
}


def test_send_message_posts_the_documented_body(api: Api) -> None:
    message = api.call(
        "send_message",
        from_phone="507f1f77bcf86cd799439011",
        to="+15557654321",
        content="Hello",
        idempotency_key="order-7784",
    )
    request = api.requests[0]
    assert request.method == "POST"
    assert request.url == "https://api.test/v1/messages/send"
    assert request.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["User-Agent"].startswith("chatmaid-connectors/")
    assert json.loads(request.content) == {
        "fromPhoneId": "507f1f77bcf86cd799439011",
        "to": "+15557654321",
        "content": "Hello",
        "idempotencyKey": "order-7784",
    }
    assert isinstance(message, Message)
    assert message.id == "msg_abc123def456"
    assert message.from_ == "+15551234567"
    assert message.is_terminal


def test_send_without_key_gets_a_generated_one(api: Api) -> None:
    api.call("send_message", from_phone="p1", to="+15557654321", content="Hi")
    key = json.loads(api.requests[0].content)["idempotencyKey"]
    assert key.startswith("cm-")
    assert len(key) <= 64


def test_media_only_send_omits_content(api: Api) -> None:
    api.call(
        "send_message",
        from_phone="p1",
        to="+15557654321",
        media_urls=["https://cdn.example.com/a.png"],
    )
    body = json.loads(api.requests[0].content)
    assert body["mediaUrls"] == ["https://cdn.example.com/a.png"]
    assert "content" not in body


def test_get_message_quotes_the_id(api: Api) -> None:
    api.call("get_message", "msg_a/b")
    assert api.requests[0].url.raw_path == b"/v1/messages/msg_a%2Fb"


def test_list_messages_sends_filters_and_parses_the_page(api: Api) -> None:
    api.respond(
        lambda _r: envelope(
            {
                "data": [
                    {
                        "id": "msg_1",
                        "to": "+15557654321",
                        "status": "sent",
                        "createdAt": "2026-02-06T14:18:33.000Z",
                    }
                ],
                "pagination": {"page": 2, "limit": 10, "total": 11, "totalPages": 2},
            }
        )
    )
    page = api.call("list_messages", page=2, limit=10, status="sent", phone_number_id="p1")
    assert dict(api.requests[0].url.params) == {
        "page": "2",
        "limit": "10",
        "status": "sent",
        "phoneNumberId": "p1",
    }
    assert page.data[0].id == "msg_1"
    assert page.pagination.total_pages == 2
    assert not page.has_next


def test_iter_messages_walks_every_page(api: Api) -> None:
    def pages(request):  # type: ignore[no-untyped-def]
        number = int(request.url.params["page"])
        items = [{"id": f"msg_{number}_{i}", "status": "sent"} for i in range(2)]
        return envelope(
            {"data": items, "pagination": {"page": number, "limit": 2, "total": 6, "totalPages": 3}}
        )

    api.respond(pages)
    ids = [m.id for m in api.call("iter_messages", limit=2)]
    assert ids == ["msg_1_0", "msg_1_1", "msg_2_0", "msg_2_1", "msg_3_0", "msg_3_1"]


def test_list_messages_rejects_bad_paging_before_any_request(api: Api) -> None:
    with pytest.raises(ChatmaidValidationError) as caught:
        api.call("list_messages", page=0, limit=101, status="queued", environment="prod")
    assert len(caught.value.problems) == 4
    assert api.requests == []


@pytest.mark.parametrize("status", ["pending", "sent", "failed", "delivered", "read"])
def test_list_messages_filters_by_the_docs_and_the_live_apis_statuses(
    api: Api, status: str
) -> None:
    api.respond(
        lambda _r: envelope(
            {"data": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}
        )
    )
    api.call("list_messages", status=status)
    assert api.requests[0].url.params["status"] == status


def test_phone_endpoints_accept_an_e164_number(api: Api) -> None:
    api.respond(lambda _r: envelope(PHONE))
    phone = api.call("get_phone_number", "+15551234567")
    status = api.call("get_phone_status", "+15551234567")
    assert api.requests[0].url.raw_path == b"/v1/phone-numbers/%2B15551234567"
    assert api.requests[1].url.raw_path == b"/v1/phone-numbers/%2B15551234567/status"
    assert isinstance(phone, PhoneNumber)
    assert phone.is_connected
    assert isinstance(status, PhoneStatus)


def test_list_phone_numbers(api: Api) -> None:
    api.respond(lambda _r: envelope([PHONE, OFFLINE_PHONE]))
    phones = api.call("list_phone_numbers")
    assert [p.id for p in phones] == ["507f1f77bcf86cd799439011", "p_offline"]


def test_account_and_usage(api: Api) -> None:
    account = {
        "accountId": "acc_abc123def456",
        "name": "Acme Inc",
        "email": "developer@acme.com",
        "subscriptionStatus": "active",
        "stats": {"apiKeys": 2, "phoneNumbers": 1, "messages": 328},
    }
    usage = {
        "period": "week",
        "startDate": "2026-01-07T14:20:00.000Z",
        "endDate": "2026-02-06T14:20:00.000Z",
        "messages": {"total": 328, "pending": 0, "sent": 314, "failed": 14},
        "apiRequests": {"total": 1242, "successful": 1221, "failed": 21},
    }
    api.respond([envelope(account), envelope(usage)])
    client = api.client()
    got_account = api.call("get_account", client=client)
    got_usage = api.call("get_usage", "week", client=client)
    assert isinstance(got_account, Account)
    assert got_account.stats.messages == 328
    assert isinstance(got_usage, Usage)
    assert got_usage.api_requests.failed == 21
    assert api.requests[1].url.params["period"] == "week"
    with pytest.raises(ChatmaidValidationError, match="period"):
        api.call("get_usage", "year")


@pytest.mark.parametrize(
    ("phone", "expected"),
    [(None, "507f1f77bcf86cd799439011"), ("+15550000002", "p_offline"), ("p_offline", "p_offline")],
)
def test_resolve_sender(api: Api, phone: str | None, expected: str) -> None:
    api.respond(lambda _r: envelope([OFFLINE_PHONE, PHONE]))
    assert api.call("resolve_sender", phone).id == expected


def test_resolve_sender_fails_clearly_without_a_connected_phone(api: Api) -> None:
    api.respond(lambda _r: envelope([OFFLINE_PHONE]))
    with pytest.raises(NoConnectedPhoneError, match=r"no connected phone.*p_offline"):
        api.call("resolve_sender")
    with pytest.raises(NoConnectedPhoneError, match="not a phone of this account"):
        api.call("resolve_sender", "+15559999999")


def test_wait_for_terminal_polls_with_backoff_until_sent(api: Api) -> None:
    pending = {**MESSAGE, "status": "pending"}
    api.respond([envelope(pending), envelope(pending), envelope(pending), envelope(MESSAGE)])
    message = api.call("wait_for_terminal", "msg_abc123def456", poll_interval=2, timeout=60)
    assert message.status == "sent"
    assert api.time.sleeps == [2, 3, 4.5]


def test_wait_for_terminal_times_out_with_the_last_status(api: Api) -> None:
    api.respond(lambda _r: envelope({**MESSAGE, "status": "pending"}))
    with pytest.raises(DeliveryTimeoutError, match="still 'pending' after 10s"):
        api.call("wait_for_terminal", "msg_abc123def456", poll_interval=2, timeout=10)
    assert sum(api.time.sleeps) == pytest.approx(10)


def test_resolve_sender_reuses_the_phone_list_within_max_age(api: Api) -> None:
    api.respond(lambda _r: envelope([PHONE]))
    client = api.client()
    for _ in range(3):
        api.call("resolve_sender", client=client)
    assert len(api.requests) == 1
    api.time.now += 61
    api.call("resolve_sender", client=client)
    api.call("resolve_sender", client=client, max_age=0)
    assert len(api.requests) == 3


def test_resolve_sender_refetches_before_calling_a_phone_unknown(api: Api) -> None:
    api.respond([envelope([PHONE]), envelope([PHONE, OFFLINE_PHONE])])
    client = api.client()
    api.call("resolve_sender", client=client)
    assert api.call("resolve_sender", "p_offline", client=client).id == "p_offline"
    assert len(api.requests) == 2


def test_wait_for_terminal_polls_through_a_short_outage(api: Api) -> None:
    pending = {**MESSAGE, "status": "pending"}
    outage = [error(503)] * 3
    api.respond([envelope(pending), *outage, envelope(MESSAGE)])
    client = api.client(max_retries=2)
    message = api.call("wait_for_terminal", "msg_abc123def456", client=client, timeout=60)
    assert message.status == "sent"
    assert len(api.requests) == 5
