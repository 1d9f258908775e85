"""Models keep what the docs do not list yet, and write timestamps as the API does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chatmaid import Message, Page, PhoneNumber
from chatmaid._models import format_timestamp

from .conftest import MESSAGE


def test_unknown_fields_and_statuses_are_kept() -> None:
    message = Message.model_validate(
        {**MESSAGE, "status": "read", "readAt": "2026-02-06T14:20:00.000Z", "direction": "inbound"}
    )
    assert message.status == "read"
    assert message.is_terminal
    assert message.model_extra == {"readAt": "2026-02-06T14:20:00.000Z", "direction": "inbound"}
    assert message.to_api()["direction"] == "inbound"


def test_unknown_error_codes_are_kept() -> None:
    message = Message.model_validate({**MESSAGE, "status": "failed", "errorCode": "NEW_CODE_2027"})
    assert message.is_failed
    assert message.error_code == "NEW_CODE_2027"


def test_round_trip_matches_the_documented_payload() -> None:
    assert Message.model_validate(MESSAGE).to_api() == MESSAGE


def test_timestamps_are_written_in_utc_with_milliseconds() -> None:
    assert format_timestamp(datetime(2026, 2, 6, 14, 18, 33, 120500, tzinfo=timezone.utc)) == (
        "2026-02-06T14:18:33.120Z"
    )
    assert format_timestamp(datetime(2026, 2, 6, 14, 18, 33)) == "2026-02-06T14:18:33.000Z"
    east = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 2, 6, 16, 18, 33, 999999, tzinfo=east)) == (
        "2026-02-06T14:18:33.999Z"
    )


def test_list_items_with_few_fields_parse() -> None:
    page = Page[Message].model_validate(
        {
            "data": [
                {
                    "id": "msg_1",
                    "to": "+15557654321",
                    "status": "sent",
                    "createdAt": "2026-02-06T14:18:33.000Z",
                }
            ],
            "pagination": {"page": 1, "limit": 20, "total": 1, "totalPages": 1},
        }
    )
    assert page.data[0].content is None


def test_phone_extra_fields_are_kept() -> None:
    phone = PhoneNumber.model_validate(
        {
            "id": "p",
            "phoneNumber": "+15551234567",
            "connectionStatus": "connecting",
            "qualityRating": "GREEN",
        }
    )
    assert not phone.is_connected
    assert phone.model_extra == {"qualityRating": "GREEN"}
