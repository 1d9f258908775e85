"""The API docs' curl commands and TypeScript signature verifier, run against the sandbox.

Each sample is copied from ``chatmaid-api-docs.md``. At run time only the host (the
sandbox's URL for ``https://developers-api.chatmaid.net``) and the placeholder key
change; the TypeScript verifier loses its three parameter type annotations so plain
``node`` runs it. (The docs' Python ``requests`` samples run in
``test_sandbox_docs_snippets.py``, the Python verifier in ``test_sandbox_webhooks.py``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chatmaid.sandbox import SEED
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle

from .test_sandbox_webhooks import SECRET, Receiver, receiver

__all__ = ["receiver"]  # the fixture, imported for these tests

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES),
]

DOCS_HOST = "https://developers-api.chatmaid.net"
PLACEHOLDER_KEYS = ("sk_test_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_test_xxx")  # longest first

# -- curl samples, verbatim --------------------------------------------------------------

CURL_SAMPLES = {
    "account": """curl -X GET https://developers-api.chatmaid.net/v1/account \\
-H "Authorization: Bearer sk_test_xxx"
""",
    "usage": """curl -X GET "https://developers-api.chatmaid.net/v1/account/usage?period=month" \\
-H "Authorization: Bearer sk_test_xxx"
""",
    "send": """curl -X POST https://developers-api.chatmaid.net/v1/messages/send \\
-H "Authorization: Bearer sk_test_xxx" \\
-H "Content-Type: application/json" \\
-d '{"fromPhoneId":"507f1f77bcf86cd799439011","to":"+15557654321","content":"Hello"}'
""",
    "send_cookbook": """curl -X POST https://developers-api.chatmaid.net/v1/messages/send \\
-H "Authorization: Bearer sk_test_xxx" \\
-H "Content-Type: application/json" \\
-d '{
"fromPhoneId": "507f1f77bcf86cd799439011",
"to": "+15557654321",
"content": "Order 7784 confirmed"
}'
""",
    "list": """curl -X GET "https://developers-api.chatmaid.net/v1/messages?status=sent&page=1&limit=20" \\
-H "Authorization: Bearer sk_test_xxx"
""",  # noqa: E501 (verbatim)
    "get_message": """curl -X GET https://developers-api.chatmaid.net/v1/messages/msg_abc123def456 \\
-H "Authorization: Bearer sk_test_xxx"
""",  # noqa: E501 (verbatim)
    "phones": """curl -X GET https://developers-api.chatmaid.net/v1/phone-numbers \\
-H "Authorization: Bearer sk_test_xxx"
""",
    "phone_by_number": """curl -X GET "https://developers-api.chatmaid.net/v1/phone-numbers/%2B15551234567" \\
-H "Authorization: Bearer sk_test_xxx"
""",  # noqa: E501 (verbatim)
    "phone_status": """curl -X GET "https://developers-api.chatmaid.net/v1/phone-numbers/%2B15551234567/status" \\
-H "Authorization: Bearer sk_test_xxx"
""",  # noqa: E501 (verbatim)
    "authentication_page": """curl -X GET https://developers-api.chatmaid.net/v1/messages \\
-H "Authorization: Bearer sk_test_xxxxxxxxxxxxxxxxxxxxxxxx"
""",
    "bootstrap": """export CHATMAID_BASE_URL="https://developers-api.chatmaid.net"
export CHATMAID_API_KEY="sk_test_xxx"
curl -X GET "$CHATMAID_BASE_URL/v1/account" \\
-H "Authorization: Bearer $CHATMAID_API_KEY"
""",
}  # fmt: skip

#: What each sample's ``data`` must hold (the docs' example values for the seeded account).
EXPECTED: dict[str, dict[str, Any]] = {
    "account": {"accountId": SEED.account_id},
    "usage": {"period": "month"},
    "send": {"to": "+15557654321", "content": "Hello", "status": "sent"},
    "send_cookbook": {"content": "Order 7784 confirmed", "status": "sent"},
    "list": {},
    "get_message": {"id": "msg_abc123def456"},
    "phones": {},
    "phone_by_number": {"phoneNumber": "+15551234567"},
    "phone_status": {"phoneNumber": "+15551234567", "connectionStatus": "connected"},
    "authentication_page": {},
    "bootstrap": {"accountId": SEED.account_id},
}

# -- the Webhooks page's TypeScript verifier, verbatim but for its type annotations ---------

TS_VERIFIER = """import crypto from "crypto";
function verifySignature(rawBody: string, signatureHeader: string, secret: string) {
// signature format: t=1700000000,v1=
const pairs = Object.fromEntries(
signatureHeader.split(",").map((part) => {
const idx = part.indexOf("=");
return [part.slice(0, idx), part.slice(idx + 1)];
})
);
const timestamp = pairs.t;
const expected = crypto
.createHmac("sha256", secret)
.update(timestamp + "." + rawBody)
.digest("hex");
return crypto.timingSafeEqual(Buffer.from(pairs.v1), Buffer.from(expected));
}
"""
#: Reads ``{rawBody, signatureHeader, secret}`` as JSON on stdin; prints the verdict.
NODE_DRIVER = """
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { rawBody, signatureHeader, secret } = JSON.parse(input);
  console.log(JSON.stringify(verifySignature(rawBody, signatureHeader, secret)));
});
"""


def as_javascript(typescript: str) -> str:
    """The verifier without its parameter types (the only TypeScript in it)."""
    signature = "(rawBody: string, signatureHeader: string, secret: string)"
    assert signature in typescript
    return typescript.replace(signature, "(rawBody, signatureHeader, secret)")


def run_curl(sample: str, sandbox: SandboxHandle) -> dict[str, Any]:
    script = sample.replace(DOCS_HOST, sandbox.url)
    for placeholder in PLACEHOLDER_KEYS:
        script = script.replace(placeholder, SEED.test_key)
    bash = shutil.which("bash") or "/bin/bash"
    done = subprocess.run(  # noqa: S603 - the docs' own commands, run as a user would
        [bash, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    payload: dict[str, Any] = json.loads(done.stdout)
    return payload


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("name", sorted(CURL_SAMPLES))
def test_the_docs_curl_samples(chatmaid_sandbox: SandboxHandle, name: str) -> None:
    payload = run_curl(CURL_SAMPLES[name], chatmaid_sandbox)
    assert payload["success"] is True, payload
    data = payload["data"]
    assert {key: data[key] for key in EXPECTED[name]} == EXPECTED[name]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("keep_signature", [False, True])
def test_the_docs_typescript_verifier_accepts_sandbox_webhooks(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver, tmp_path: Path, keep_signature: bool
) -> None:
    # The first delivery is refused once: its retry (1.2 s later) is verified too.
    chatmaid_sandbox.admin.update_settings(time_scale=0.02, keep_signature_on_retry=keep_signature)
    receiver.answers = [500]
    events = ["message.sent", "phone.connected"]
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=events)
    run_curl(CURL_SAMPLES["send"], chatmaid_sandbox)
    receiver.wait_for(1)  # the refused first attempt
    chatmaid_sandbox.admin.set_phone_connected(SEED.disconnected_phone_id, True)
    deliveries = receiver.wait_for(3, timeout=30)
    assert sorted(d.event for d in deliveries) == [
        "message.sent",
        "message.sent",
        "phone.connected",
    ]
    script = tmp_path / "verify.mjs"
    script.write_text(as_javascript(TS_VERIFIER) + NODE_DRIVER)

    def verdict(raw_body: str, header: str, secret: str) -> bool:
        request = {"rawBody": raw_body, "signatureHeader": header, "secret": secret}
        done = subprocess.run(  # noqa: S603 - the docs' verifier on a captured delivery
            [shutil.which("node") or "node", str(script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result: bool = json.loads(done.stdout)
        return result

    for delivery in deliveries:
        body = delivery.body.decode()
        assert verdict(body, delivery.signature, SECRET) is True
        assert verdict(body, delivery.signature, "whsec_someone_else") is False
        assert verdict(body.replace("+", "-"), delivery.signature, SECRET) is False
