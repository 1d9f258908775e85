"""The API docs' own Python ``requests`` snippets, run against the sandbox.

Each snippet is copied from ``chatmaid-api-docs.md``; the only changes at run time are
the host (the sandbox's URL for ``https://developers-api.chatmaid.net``) and, where a
snippet hard-codes a placeholder key, the key. The answers must have the documented
shape: the same keys as the docs' example JSON.

Every test runs in both profiles: the snippets must work against the live API too. In
the ``live`` profile the answers carry the live API's known extras as well (the JS
SDK's fields, ``docs/sandbox.md``, "Profiles"), written out here.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatmaid.sandbox import SEED
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES),
]

DOCS_HOST = "https://developers-api.chatmaid.net"

MESSAGE_KEYS = {
    "id", "from", "to", "content", "mediaUrls", "environment", "status",
    "createdAt", "sentAt", "failedAt", "errorCode", "errorMessage",
}  # fmt: skip
PHONE_KEYS = {
    "id", "phoneNumber", "displayName", "connectionStatus",
    "lastConnectedAt", "lastDisconnectedAt", "createdAt", "updatedAt",
}  # fmt: skip
STATUS_KEYS = {
    "id", "phoneNumber", "connectionStatus", "lastConnectedAt", "lastDisconnectedAt", "updatedAt",
}  # fmt: skip
ACCOUNT_KEYS = {"accountId", "name", "email", "subscriptionStatus", "stats"}
USAGE_MESSAGE_KEYS = {"total", "pending", "sent", "failed"}
#: What the ``live`` profile adds to each (phones and pagination it leaves alone).
LIVE_EXTRAS = {
    "message": {"isGroup", "groupId", "deliveredAt", "readAt"},
    "account": {"environment", "phoneNumbersCount", "messagesCount", "createdAt"},
    "usage.messages": {"delivered", "read"},
}

# -- snippets, verbatim (the docs' markdown lost indentation only inside blocks) ----------

GET_ACCOUNT = """
import os
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/account",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
)
payload = response.json()
"""

GET_USAGE = """
import os
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/account/usage",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
params={"period": "month"},
)
payload = response.json()
"""

SEND = """
import os
import requests
response = requests.post(
"https://developers-api.chatmaid.net/v1/messages/send",
headers={
"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}",
"Content-Type": "application/json",
},
json={
"fromPhoneId": "507f1f77bcf86cd799439011",
"to": "+15557654321",
"content": "Hello",
},
)
payload = response.json()
"""

SEND_MESSAGES_PAGE = """
import os
import requests
response = requests.post(
"https://developers-api.chatmaid.net/v1/messages/send",
headers={
"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}",
"Content-Type": "application/json",
},
json={
"fromPhoneId": "507f1f77bcf86cd799439011",
"to": "+15557654321",
"content": "Order received. We will update you soon.",
},
)
payload = response.json()
"""

SEND_GETTING_STARTED = """
import requests
response = requests.post(
"https://developers-api.chatmaid.net/v1/messages/send",
headers={
"Authorization": "Bearer sk_test_xxx",
"Content-Type": "application/json",
},
json={
"fromPhoneId": "507f1f77bcf86cd799439011",
"to": "+15557654321",
"content": "Hello from Chatmaid",
},
)
payload = response.json()
"""

LIST_MESSAGES = """
import os
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/messages",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
params={"status": "sent", "page": 1, "limit": 20},
)
payload = response.json()
"""

GET_MESSAGE = """
import os
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/messages/msg_abc123def456",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
)
payload = response.json()
"""

GET_MESSAGE_GETTING_STARTED = """
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/messages/msg_abc123def456",
headers={"Authorization": "Bearer sk_test_xxx"},
)
payload = response.json()
"""

LIST_PHONES = """
import os
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/phone-numbers",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
)
payload = response.json()
"""

GET_PHONE = """
import os
import requests
from urllib.parse import quote
phone_ref = quote("+15551234567", safe="")
response = requests.get(
f"https://developers-api.chatmaid.net/v1/phone-numbers/{phone_ref}",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
)
payload = response.json()
"""

GET_PHONE_STATUS = """
import os
import requests
from urllib.parse import quote
phone_ref = quote("+15551234567", safe="")
response = requests.get(
f"https://developers-api.chatmaid.net/v1/phone-numbers/{phone_ref}/status",
headers={"Authorization": f"Bearer {os.environ['CHATMAID_API_KEY']}"},
)
payload = response.json()
"""

AUTHENTICATION = """
import requests
response = requests.get(
"https://developers-api.chatmaid.net/v1/messages",
headers={"Authorization": "Bearer sk_test_xxxxxxxxxxxxxxxxxxxxxxxx"},
)
"""

# Cookbook: the client class and the send-and-track steps (indentation restored).
COOKBOOK = """
import os
import requests
class ChatmaidClient:
    def __init__(self):
        self.base_url = os.getenv("CHATMAID_BASE_URL", "https://developers-api.chatmaid.net")
        self.api_key = os.environ["CHATMAID_API_KEY"]
    def request(self, method: str, path: str, **kwargs):
        headers = kwargs.pop("headers", {})
        headers.update({
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
        })
        response = requests.request(method, self.base_url + path, headers=headers, **kwargs)
        return response.json()

client = ChatmaidClient()

phones = client.request("GET", "/v1/phone-numbers")
connected = next((p for p in phones["data"] if p["connectionStatus"] == "connected"), None)

sent = client.request(
"POST",
"/v1/messages/send",
json={
"fromPhoneId": "507f1f77bcf86cd799439011",
"to": "+15557654321",
"content": "Order 7784 confirmed",
},
)
message_id = sent["data"]["id"]

import time
def wait_for_terminal(message_id: str):
    while True:
        current = client.request("GET", f"/v1/messages/{message_id}")
        status = current["data"]["status"]
        if status in ["sent", "failed"]:
            return current
        time.sleep(1.5)

final = wait_for_terminal(message_id)
"""


@pytest.fixture
def keys(chatmaid_sandbox_profile: str) -> Any:
    """``keys(documented, "message")``: the keys an answer has in this test's profile."""

    def expected(documented: set[str], what: str) -> set[str]:
        return documented | (LIVE_EXTRAS[what] if chatmaid_sandbox_profile == "live" else set())

    return expected


@pytest.fixture
def run(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``run(snippet, key=...)``: execute a docs snippet against the sandbox; its globals."""
    monkeypatch.setenv("CHATMAID_API_KEY", SEED.test_key)
    if chatmaid_sandbox_profile == "live":
        # The live profile moves a sent message on to delivered, then read, live_delay
        # (0.2 s) apart. The docs know only pending, sent and failed: the List snippet
        # filters on status=sent and the Cookbook's wait_for_terminal would poll forever
        # on "delivered". Keep the messages sent while the snippets run.
        chatmaid_sandbox.admin.update_settings(live_delay=60)

    def run_snippet(snippet: str, placeholder: str | None = None) -> dict[str, Any]:
        code = snippet.replace(DOCS_HOST, chatmaid_sandbox.url)
        if placeholder is not None:
            code = code.replace(placeholder, SEED.test_key)
        namespace: dict[str, Any] = {}
        exec(code, namespace)  # noqa: S102 - the docs' own code, run as a user would
        return namespace

    return run_snippet


def data_of(namespace: dict[str, Any], status: int = 200) -> Any:
    assert namespace["response"].status_code == status
    payload = namespace["payload"]
    assert set(payload) == {"success", "data"}
    assert payload["success"] is True
    return payload["data"]


@pytest.mark.parametrize(
    ("snippet", "placeholder"),
    [
        pytest.param(SEND, None, id="api-reference"),
        pytest.param(SEND_MESSAGES_PAGE, None, id="messages-page"),
        pytest.param(SEND_GETTING_STARTED, "sk_test_xxx", id="getting-started"),
    ],
)
def test_send(run: Any, keys: Any, snippet: str, placeholder: str | None) -> None:
    data = data_of(run(snippet, placeholder), 201)
    assert set(data) == keys(MESSAGE_KEYS, "message")
    assert (data["from"], data["to"], data["status"], data["environment"]) == (
        "+15551234567",
        "+15557654321",
        "sent",
        "test",
    )
    assert data["id"].startswith("msg_")


def test_list_messages(run: Any, keys: Any) -> None:
    run(SEND)
    data = data_of(run(LIST_MESSAGES))
    assert set(data) == {"data", "pagination"}
    assert set(data["pagination"]) == {"page", "limit", "total", "totalPages"}
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 2, "totalPages": 1}
    for item in data["data"]:
        assert set(item) == keys(MESSAGE_KEYS, "message")
        assert item["status"] == "sent"


@pytest.mark.parametrize(
    ("snippet", "placeholder"),
    [
        pytest.param(GET_MESSAGE, None, id="api-reference"),
        pytest.param(GET_MESSAGE_GETTING_STARTED, "sk_test_xxx", id="getting-started"),
    ],
)
def test_get_message(run: Any, keys: Any, snippet: str, placeholder: str | None) -> None:
    data = data_of(run(snippet, placeholder))
    assert set(data) == keys(MESSAGE_KEYS, "message")
    assert (data["id"], data["status"], data["sentAt"]) == (
        "msg_abc123def456",
        "sent",
        "2026-02-06T14:18:33.120Z",
    )


def test_phone_numbers(run: Any) -> None:
    phones = data_of(run(LIST_PHONES))
    assert all(set(phone) == PHONE_KEYS for phone in phones)
    assert phones[0]["id"] == "507f1f77bcf86cd799439011"
    phone = data_of(run(GET_PHONE))
    assert set(phone) == PHONE_KEYS
    assert phone == phones[0]
    status = data_of(run(GET_PHONE_STATUS))
    assert set(status) == STATUS_KEYS
    assert status["connectionStatus"] == "connected"


def test_account_and_usage(run: Any, keys: Any) -> None:
    account = data_of(run(GET_ACCOUNT))
    assert set(account) == keys(ACCOUNT_KEYS, "account")
    assert set(account["stats"]) == {"apiKeys", "phoneNumbers", "messages"}
    usage = data_of(run(GET_USAGE))
    assert set(usage) == {"period", "startDate", "endDate", "messages", "apiRequests"}
    assert usage["period"] == "month"
    assert set(usage["messages"]) == keys(USAGE_MESSAGE_KEYS, "usage.messages")
    assert set(usage["apiRequests"]) == {"total", "successful", "failed"}


def test_authentication_page(run: Any) -> None:
    # As printed, the placeholder key is refused with the page's own example answer...
    refused = run(AUTHENTICATION)["response"]
    assert refused.status_code == 401
    body = refused.json()
    assert {k: body[k] for k in ("success", "error", "message", "statusCode", "path")} == {
        "success": False,
        "error": "Unauthorized",
        "message": ["Invalid API key"],
        "statusCode": 401,
        "path": "/v1/messages",
    }
    # ...and a real key is accepted.
    assert run(AUTHENTICATION, "sk_test_xxxxxxxxxxxxxxxxxxxxxxxx")["response"].status_code == 200


def test_cookbook_send_and_track(run: Any) -> None:
    namespace = run(COOKBOOK)
    assert namespace["connected"]["id"] == "507f1f77bcf86cd799439011"
    assert namespace["message_id"].startswith("msg_")
    assert namespace["final"]["data"]["status"] == "sent"
