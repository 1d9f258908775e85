"""The sandbox inbox page (``/``) in a real browser: Debian's chromium driven by Playwright.

Every test opens the page on the session's sandbox (reset to its seed), acts through
the core client, the page's own buttons or a webhook receiver, and waits for what the
page shows (no fixed sleeps). Screenshots go to ``$CHATMAID_SCREENSHOT_DIR`` when set
(``docs/images`` for the docs), else to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chatmaid import BadRequestError
from chatmaid.sandbox import SEED
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle

from .test_sandbox_webhooks import SECRET, Receiver, receiver, verify_signature

__all__ = ["receiver"]  # the fixture, imported for these tests

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
TO = "+15557654321"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (``apt-get install chromium``); no browser download."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def inbox(browser: Browser, chatmaid_sandbox: SandboxHandle) -> Iterator[Page]:
    """The inbox page, loaded and showing the (reset) sandbox; fails on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(chatmaid_sandbox.url + "/")
    expect(page.locator("body[data-ready]")).to_be_attached()
    yield page
    context.close()
    assert errors == []


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("CHATMAID_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png")


def test_a_send_through_the_core_appears_within_two_seconds(
    chatmaid_sandbox: SandboxHandle, inbox: Page, tmp_path: Path
) -> None:
    inbox.evaluate("window.notReloaded = true")
    with chatmaid_sandbox.client(requests_per_minute=None) as client:
        message = client.send_message(
            from_phone=SEED.phone_id, to=TO, content="Orders today: 1,204 (-20 %)"
        )
        failed = client.send_message(from_phone=SEED.phone_id, to="+15550000000", content="Hi?")
        client.send_message(
            from_phone=SEED.phone_id,
            to=TO,
            content="The report",
            media_urls=["https://example.com/kpi.pdf"],
        )
    bubble = inbox.locator(f'.bubble[data-id="{message.id}"]')
    expect(bubble).to_contain_text("Orders today: 1,204 (-20 %)", timeout=2000)
    expect(bubble.locator(".ticks")).to_have_text("✓ sent")
    expect(bubble.locator(".badge")).to_have_text("test")
    expect(inbox.get_by_role("link", name="https://example.com/kpi.pdf")).to_be_visible()
    assert inbox.evaluate("window.notReloaded") is True
    inbox.locator(".thread-item", has_text="+15550000000").click()
    failure = inbox.locator(f'.bubble[data-id="{failed.id}"]')
    expect(failure.locator(".error")).to_have_text(
        "INVALID_RECIPIENT: Recipient is not a WhatsApp user"
    )
    expect(failure.locator(".ticks")).to_have_text("✕ failed")
    inbox.locator(".thread-item", has_text=TO).click()
    screenshot(inbox, "inbox-conversations", tmp_path)


def test_a_live_messages_ticks_go_pending_then_sent(
    chatmaid_sandbox: SandboxHandle, inbox: Page, tmp_path: Path
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=60)  # it settles when the page says so
    with chatmaid_sandbox.client(chatmaid_sandbox.live_key, requests_per_minute=None) as client:
        message = client.send_message(
            from_phone=SEED.phone_id,
            to=TO,
            content="Order 7784 confirmed",
            idempotency_key="o-7784",
        )
    assert message.status == "pending"
    bubble = inbox.locator(f'.bubble[data-id="{message.id}"]')
    expect(bubble.locator(".ticks")).to_have_text("◷ pending", timeout=2000)
    expect(bubble.locator(".badge")).to_have_text("live")
    bubble.click()
    details = inbox.locator("#details")
    expect(details).to_contain_text(message.id)
    expect(details).to_contain_text("o-7784")
    expect(details.locator("pre.request")).to_contain_text('"content": "Order 7784 confirmed"')
    details.get_by_role("button", name="Next step now").click()
    expect(bubble.locator(".ticks")).to_have_text("✓ sent")
    assert chatmaid_sandbox.admin.message(message.id)["status"] == "sent"
    sent_at = details.locator("xpath=.//dt[.='Sent']/following-sibling::dd[1]")
    expect(sent_at).not_to_have_text("—")
    screenshot(inbox, "inbox-details", tmp_path)


def test_disconnecting_a_phone_from_the_page(
    chatmaid_sandbox: SandboxHandle, inbox: Page, receiver: Receiver, tmp_path: Path
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    inbox.get_by_role("tab", name="Play the other side").click()
    row = inbox.locator(f'#phones tr[data-id="{SEED.phone_id}"]')
    row.get_by_role("button", name="Disconnect").click()
    expect(row.locator(".badge")).to_have_text("disconnected")

    with (
        chatmaid_sandbox.client(chatmaid_sandbox.live_key, requests_per_minute=None) as client,
        pytest.raises(BadRequestError) as refused,
    ):
        client.send_message(from_phone=SEED.phone_id, to=TO, content="Anyone there?")
    assert refused.value.status_code == 400
    assert refused.value.messages[0].startswith(f"Phone {SEED.phone_number} is not connected")

    [hook] = receiver.wait_for(1)
    assert hook.event == "phone.disconnected"
    assert json.loads(hook.body)["data"]["connectionStatus"] == "disconnected"
    screenshot(inbox, "inbox-stage", tmp_path)
    inbox.get_by_role("tab", name="Webhooks").click()
    card = inbox.locator('.delivery[data-event="phone.disconnected"]')
    expect(card.locator(".badge")).to_have_text("delivered")
    expect(card.locator("td.status")).to_have_text(["200"])
    expect(card).to_contain_text(f"about {SEED.phone_id}")


def test_a_429_window_the_subscription_and_reset_from_the_page(
    chatmaid_sandbox: SandboxHandle, inbox: Page
) -> None:
    def account(key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.get(f"{chatmaid_sandbox.url}/v1/account", headers=headers, trust_env=False)

    inbox.get_by_role("tab", name="Play the other side").click()
    inbox.get_by_role("button", name="Start 429 window").click()
    expect(inbox.locator("#faults li")).to_contain_text("rate_limit any method /v1 for 30s")
    limited = account(SEED.test_key)
    assert limited.status_code == 429
    body = limited.json()
    assert (body["success"], body["error"]) == (False, "Rate limit exceeded")
    assert 25 <= body["retryAfter"] <= 30  # the seconds left of the window
    inbox.locator("#faults").get_by_role("button", name="Remove").click()
    expect(inbox.locator("#faults")).to_contain_text("No fault")
    assert account(SEED.test_key).status_code == 200

    inbox.locator("#subscription-form select").select_option("past_due")
    inbox.get_by_role("button", name="Set subscription").click()
    expect(inbox.locator("#subscription-now")).to_have_text("past_due")
    assert account(SEED.live_key).status_code == 403

    inbox.get_by_role("button", name="Reset…").click()
    inbox.get_by_role("button", name="Yes, reset everything").click()
    expect(inbox.locator("#subscription-now")).to_have_text("active")
    assert account(SEED.live_key).status_code == 200


def test_a_failing_receiver_shows_every_attempt_and_deliver_again_delivers(
    chatmaid_sandbox: SandboxHandle, inbox: Page, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [500] * 4  # the first attempt and its 3 retries; then 200
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    with chatmaid_sandbox.client(requests_per_minute=None) as client:
        message = client.send_message(from_phone=SEED.phone_id, to=TO, content="KPI alert")
    receiver.wait_for(4)
    inbox.get_by_role("tab", name="Webhooks").click()
    failed = inbox.locator(".delivery.state-failed")
    expect(failed.locator("td.status")).to_have_text(["500"] * 4)
    expect(failed.locator("tr.bad")).to_have_count(4)
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(inbox.locator("#failed-count")).to_have_text("1 failed")
    screenshot(inbox, "inbox-webhooks", tmp_path)

    failed.get_by_role("button", name="Deliver again").click()
    again = inbox.locator(".delivery.state-succeeded")
    expect(again.locator("td.status")).to_have_text(["200"])
    first_id = failed.get_attribute("data-id")
    expect(again).to_contain_text(f"again of {first_id}")
    deliveries = receiver.wait_for(5)
    assert deliveries[4].body == deliveries[0].body  # the same event, signed afresh
    assert verify_signature(deliveries[4].body.decode(), deliveries[4].signature, SECRET)
    assert [d["state"] for d in chatmaid_sandbox.admin.message(message.id)["deliveries"]] == [
        "failed",
        "succeeded",
    ]
    again.get_by_role("button", name=message.id).click()  # what the delivery is about
    expect(inbox.get_by_role("tab", name="Conversations")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(inbox.locator("#details .delivery")).to_have_count(2)


@pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES)
def test_the_reply_box_replies_as_the_recipient(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, inbox: Page, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    inbox.locator(".thread-item", has_text=TO).click()  # the seed's example message
    inbox.get_by_placeholder(f"Reply as {TO}…").fill("yes please")
    inbox.keyboard.press("Enter")
    reply = inbox.locator(".bubble.in")
    expect(reply.locator(".content")).to_have_text("yes please")
    [stored] = chatmaid_sandbox.admin.inbound_messages()
    assert (stored["from"], stored["to"], stored["content"]) == (
        TO,
        SEED.phone_number,
        "yes please",
    )
    if chatmaid_sandbox_profile == "live":
        [hook] = receiver.wait_for(1)
        event = json.loads(hook.body)
        assert event["event"] == hook.event == "message.received"
        assert (event["data"]["messageId"], event["data"]["content"]) == (
            stored["id"],
            "yes please",
        )
        reply.click()
        expect(inbox.locator("#details .delivery .badge")).to_have_text("delivered")
    else:  # the docs know no message.received: the reply is stored, nothing is sent
        expect(inbox.locator("#reply .note")).to_contain_text("live profile only")
        assert chatmaid_sandbox.admin.events()["deliveries"] == []


def test_search_finds_a_message_by_idempotency_key(
    chatmaid_sandbox: SandboxHandle, inbox: Page
) -> None:
    with chatmaid_sandbox.client(requests_per_minute=None) as client:
        for to, key in (("+15557650011", "order-1001"), ("+15557650012", "order-1002")):
            client.send_message(
                from_phone=SEED.phone_id, to=to, content="Shipped", idempotency_key=key
            )
        wanted = client.send_message(
            from_phone=SEED.phone_id, to="+15557650013", content="Invoice", idempotency_key="inv-77"
        )
    expect(inbox.locator(".thread-item")).to_have_count(4, timeout=2000)
    inbox.keyboard.press("/")
    inbox.keyboard.type("inv-77")
    expect(inbox.locator(".thread-item")).to_have_count(1)
    expect(inbox.locator(".bubble")).to_have_count(1)
    expect(inbox.locator(f'.bubble[data-id="{wanted.id}"]')).to_contain_text("Invoice")

    filters = inbox.locator("#filters")
    filters.get_by_role("button", name="Clear", exact=True).click()
    filters.locator("input[name=key]").fill("order-")
    expect(inbox.locator(".thread-item")).to_have_count(2)
    filters.locator("select[name=status]").select_option("failed")
    expect(inbox.locator("#threads")).to_contain_text("No message matches these filters.")


def test_the_empty_state_shows_a_curl_line_that_sends(
    chatmaid_sandbox: SandboxHandle, inbox: Page
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    line = inbox.locator("#send-hint pre")
    expect(line).to_contain_text(f"Bearer {SEED.test_key}")
    command = shlex.split(line.inner_text())
    assert command[:4] == ["curl", "-X", "POST", f"{chatmaid_sandbox.url}/v1/messages/send"]
    no_proxy = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    sent = subprocess.run([curl, *command[1:]], capture_output=True, env=no_proxy, check=True)  # noqa: S603
    message = json.loads(sent.stdout)["data"]
    assert message["from"] == SEED.phone_number
    expect(inbox.locator(f'.bubble[data-id="{message["id"]}"]')).to_contain_text("Hello from curl")
    expect(inbox.locator("#send-hint")).to_be_hidden()


def test_content_is_shown_as_text_never_markup(
    chatmaid_sandbox: SandboxHandle, inbox: Page
) -> None:
    markup = '<img src=x onerror="window.injected=1"><script>window.injected=2</script>'
    with chatmaid_sandbox.client(requests_per_minute=None) as client:
        message = client.send_message(from_phone=SEED.phone_id, to=TO, content=markup)
    bubble = inbox.locator(f'.bubble[data-id="{message.id}"]')
    expect(bubble.locator(".content")).to_have_text(markup)
    bubble.click()
    expect(inbox.locator("#details")).to_contain_text("window.injected=2")
    assert inbox.locator("#main img, #main script").count() == 0
    assert inbox.evaluate("window.injected") is None


def test_keyboard_and_a_narrow_window(
    chatmaid_sandbox: SandboxHandle, inbox: Page, tmp_path: Path
) -> None:
    inbox.set_viewport_size({"width": 390, "height": 844})
    inbox.keyboard.press("/")
    assert inbox.evaluate("document.activeElement.name") == "q"
    inbox.keyboard.press("Escape")
    inbox.keyboard.press("2")
    webhooks_tab = inbox.get_by_role("tab", name="Webhooks")
    expect(webhooks_tab).to_have_attribute("aria-selected", "true")
    webhooks_tab.focus()
    inbox.keyboard.press("ArrowRight")
    expect(inbox.get_by_role("tab", name="Play the other side")).to_be_focused()
    inbox.keyboard.press("ArrowLeft")
    expect(webhooks_tab).to_have_attribute("aria-selected", "true")
    expect(inbox.locator("#deliveries")).to_contain_text("No webhook delivery yet")
    inbox.keyboard.press("1")
    first = inbox.locator(".thread-item").first
    first.focus()
    inbox.keyboard.press("Enter")
    screenshot(inbox, "inbox-narrow", tmp_path)
    bubble = inbox.locator(".bubble").first
    bubble.focus()
    inbox.keyboard.press("Enter")
    expect(inbox.locator("#details")).to_be_visible()
    expect(inbox.locator("#details")).to_contain_text("msg_abc123def456")
    inbox.keyboard.press("Escape")
    expect(inbox.locator("#details")).to_be_hidden()


# -- what the page stands on, without a browser ---------------------------------------------


def test_the_change_feed_answers_only_what_changed(chatmaid_sandbox: SandboxHandle) -> None:
    admin = chatmaid_sandbox.admin
    first = admin.events()
    assert first["full"] is True
    assert [m["id"] for m in first["messages"]] == [SEED.example_message_id]
    assert all("key" not in key for key in first["stage"]["apiKeys"])  # no secrets
    with chatmaid_sandbox.client(requests_per_minute=None) as client:
        message = client.send_message(from_phone=SEED.phone_id, to=TO, content="Hi")
    later = admin.events(first["seq"], first["epoch"])
    assert later["full"] is False
    [changed] = later["messages"]
    assert (changed["id"], changed["status"], changed["apiKeyId"]) == (
        message.id,
        "sent",
        "key_test_full",
    )
    assert json.loads(changed["requestBody"])["content"] == "Hi"
    assert admin.events(later["seq"], later["epoch"])["messages"] == []

    admin.reset()
    after = admin.events(later["seq"], later["epoch"])
    assert (after["full"], after["epoch"] != later["epoch"]) == (True, True)
    assert [m["id"] for m in after["messages"]] == [SEED.example_message_id]


def test_the_page_is_served_beside_the_api(chatmaid_sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=chatmaid_sandbox.url, trust_env=False) as http:
        page = http.get("/")
        script = http.get("/inbox/app.js")
        missing = http.get("/inbox/nothing.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script type="module" src="inbox/app.js">' in page.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert missing.status_code == 404
    assert missing.json()["message"] == ["Cannot GET /inbox/nothing.js"]  # the API's 404s
