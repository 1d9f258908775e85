"""The deterministic seed: the account, keys, phones and message every sandbox starts with.

The connected phone and the example message carry the IDs the documentation's own
examples use (``507f1f77bcf86cd799439011``, ``msg_abc123def456``), so those snippets
run against a sandbox with only the host and the key changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .options import SandboxOptions
from .state import (
    AccountRecord,
    ApiKeyRecord,
    MessageRecord,
    PhoneRecord,
    SandboxState,
    WebhookEndpoint,
    new_id,
)

#: Every scope the API documents (Authentication page); the seeded keys have them all.
ALL_SCOPES = frozenset({"messages:send", "messages:read", "phone_numbers:read", "account:read"})


@dataclass(frozen=True)
class Seed:
    """Identifiers of the seeded data; ``SEED`` is the one instance."""

    account_id: str = "acc_sandbox"
    account_name: str = "Chatmaid Sandbox"
    account_email: str = "developer@sandbox.chatmaid.test"
    test_key: str = "sk_test_sandbox_full"
    live_key: str = "sk_live_sandbox_full"
    test_key_id: str = "key_test_full"
    live_key_id: str = "key_live_full"
    phone_id: str = "507f1f77bcf86cd799439011"
    phone_number: str = "+15551234567"
    phone_name: str = "Primary Sender"
    disconnected_phone_id: str = "507f1f77bcf86cd799439012"
    disconnected_phone_number: str = "+15551234568"
    disconnected_phone_name: str = "Backup Sender"
    example_message_id: str = "msg_abc123def456"


SEED = Seed()

_PHONES_CREATED = datetime(2026, 2, 1, 10, 20, tzinfo=timezone.utc)
_PHONE_CONNECTED = datetime(2026, 2, 6, 14, 10, tzinfo=timezone.utc)
_PHONE_DISCONNECTED = datetime(2026, 2, 5, 9, 0, tzinfo=timezone.utc)
_MESSAGE_CREATED = datetime(2026, 2, 6, 14, 18, 33, tzinfo=timezone.utc)
_MESSAGE_SENT = datetime(2026, 2, 6, 14, 18, 33, 120000, tzinfo=timezone.utc)


def seeded_state(options: SandboxOptions | None = None) -> SandboxState:
    """A fresh store holding the seed."""
    opts = options or SandboxOptions()
    state = SandboxState(_account(), opts.settings())
    _populate(state, opts)
    return state


def reseed(state: SandboxState, options: SandboxOptions) -> None:
    """Empty ``state`` in place and put the seed back (what ``/_sandbox/reset`` does)."""
    state.reset(_account(), options.settings())
    _populate(state, options)


def _account() -> AccountRecord:
    return AccountRecord(id=SEED.account_id, name=SEED.account_name, email=SEED.account_email)


def _populate(state: SandboxState, options: SandboxOptions) -> None:
    for key_id, key, environment in (
        (SEED.test_key_id, SEED.test_key, "test"),
        (SEED.live_key_id, SEED.live_key, "live"),
    ):
        state.add_key(
            ApiKeyRecord(
                id=key_id,
                key=key,
                environment=environment,
                scopes=ALL_SCOPES,
                created_at=_PHONES_CREATED,
            )
        )
    state.add_phone(
        PhoneRecord(
            id=SEED.phone_id,
            phone_number=SEED.phone_number,
            display_name=SEED.phone_name,
            connection_status="connected",
            created_at=_PHONES_CREATED,
            updated_at=_PHONE_CONNECTED,
            last_connected_at=_PHONE_CONNECTED,
        )
    )
    state.add_phone(
        PhoneRecord(
            id=SEED.disconnected_phone_id,
            phone_number=SEED.disconnected_phone_number,
            display_name=SEED.disconnected_phone_name,
            connection_status="disconnected",
            created_at=_PHONES_CREATED,
            updated_at=_PHONE_DISCONNECTED,
            last_connected_at=_PHONES_CREATED,
            last_disconnected_at=_PHONE_DISCONNECTED,
        )
    )
    state.add_message(
        MessageRecord(
            id=SEED.example_message_id,
            phone_id=SEED.phone_id,
            sender=SEED.phone_number,
            to="+15557654321",
            content="Hello",
            media_urls=[],
            environment="test",
            created_at=_MESSAGE_CREATED,
            status="sent",
            sent_at=_MESSAGE_SENT,
        )
    )
    for webhook in options.webhooks:
        endpoint = WebhookEndpoint(
            id=new_id("wh_", 12), url=webhook.url, secret=webhook.secret, events=webhook.events
        )
        state.webhooks[endpoint.id] = endpoint
