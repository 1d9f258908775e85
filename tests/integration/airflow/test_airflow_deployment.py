"""The example DAGs in a real Airflow deployment, triggered as manual runs over REST.

One deployment for the module (api-server, scheduler, dag-processor and triggerer as
separate processes; see ``deployment.py``); each test triggers example DAGs with
``logical_date: null`` and counts what the sandbox received. The connection uses the
sandbox's live key, so messages stay ``pending`` for ``live_delay`` seconds, as live
ones do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS
from playwright.sync_api import Browser, Locator, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from chatmaid.sandbox import SandboxHandle
from chatmaid_airflow.testing import chatmaid_connection

from ..test_sandbox_inbox import browser
from .conftest import REPO, Messages
from .deployment import Deployment, run_deployment

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture (Debian's chromium), shared with the inbox's tests

DEFERRING = "chatmaid_send_and_wait"
TRIGGER = "chatmaid_airflow.triggers.chatmaid.ChatmaidMessageTrigger"
DAGS = Path(__file__).parent / "dags"
MESSAGE_URL = "https://dashboard.example.com/messages/{message_id}"


@pytest.fixture(scope="module")
def deployment(
    chatmaid_sandbox_server: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    sandbox = chatmaid_sandbox_server
    connection = chatmaid_connection(sandbox.url, sandbox.live_key, message_url=MESSAGE_URL)
    with run_deployment(
        tmp_path_factory.mktemp("airflow-deployment"),
        [*sorted((REPO / "dags").glob("chatmaid_*.py")), DAGS / "chatmaid_it_deadline.py"],
        {"chatmaid_default": connection},
    ) as running:
        yield running


def test_manual_runs_of_the_scheduled_examples_send(
    deployment: Deployment, chatmaid_sandbox: SandboxHandle, sent_messages: Messages
) -> None:
    runs = {
        dag_id: deployment.trigger(dag_id) for dag_id in ("chatmaid_kpi_alert", "chatmaid_fan_out")
    }

    for dag_id, run_id in runs.items():
        assert deployment.run_state(dag_id, run_id) == "success", deployment.tails()
    mapped = deployment.task_states("chatmaid_fan_out", runs["chatmaid_fan_out"])
    assert [mapped[("send_report", i)] for i in range(3)] == ["success"] * 3
    messages = sent_messages()
    assert len(messages) == 4
    sends = chatmaid_sandbox.admin.requests()["byEndpoint"]["POST /v1/messages/send"]
    assert sends == {"201": 4}
    reports = [m["to"] for m in messages if m["content"].startswith("The weekly report for 20")]
    assert sorted(reports) == ["+15557654321", "+15557654322", "+15557654323"]
    (alert,) = [m for m in messages if m["content"].startswith("Orders on 20")]
    assert ": 760 (-25.1% vs the 1014 average)" in alert["content"]
    # The task's "Chatmaid message" button, as the UI gets it.
    links = deployment.extra_links(
        "chatmaid_kpi_alert", runs["chatmaid_kpi_alert"], "alert_data_team"
    )
    assert links == {"Chatmaid message": MESSAGE_URL.format(message_id=alert["id"])}


def test_the_deferrable_example_waits_in_the_triggerer(
    deployment: Deployment, chatmaid_sandbox: SandboxHandle, sent_messages: Messages
) -> None:
    # Live messages stay pending until the test advances them: each wait is seen
    # deferred, with its trigger row, however slow the machine.
    admin = chatmaid_sandbox.admin
    admin.update_settings(live_delay=3600)
    run_id = deployment.trigger(DEFERRING)

    for task_id, to in (
        ("notify_on_call", "+15557654321"),
        ("confirm_announcement", "+15557654322"),
    ):
        deferred = deployment.deferred_task(DEFERRING, run_id, task_id)
        assert deferred["trigger"]["classpath"] == TRIGGER
        (pending,) = [m for m in sent_messages() if m["to"] == to]
        assert pending["status"] == "pending"
        assert admin.advance_message(pending["id"])["status"] == "sent"

    assert deployment.run_state(DEFERRING, run_id) == "success", deployment.tails()
    states = deployment.task_states(DEFERRING, run_id)
    assert set(states.values()) == {"success"}, states
    messages = sent_messages()
    assert sorted(m["to"] for m in messages) == ["+15557654321", "+15557654322"]
    assert {m["status"] for m in messages} == {"sent"}


def test_the_failure_alert_notifies_each_recipient_once(
    deployment: Deployment, chatmaid_sandbox: SandboxHandle, sent_messages: Messages
) -> None:
    run_id = deployment.trigger("chatmaid_failure_alert")

    assert deployment.run_state("chatmaid_failure_alert", run_id) == "failed"  # by design
    states = deployment.task_states("chatmaid_failure_alert", run_id)
    assert states[("check_feed_freshness", -1)] == "failed"
    assert states[("load_feed", -1)] == "upstream_failed"
    # The callback runs after the task reported its state: wait until its task log
    # shows both sends done, then count what the sandbox received.
    log = deployment.wait_for(
        "the failure alert's two sends in the task log",
        lambda: _with_sends(
            deployment.task_log("chatmaid_failure_alert", run_id, "check_feed_freshness"), 2
        ),
    )
    assert log.count("Chatmaid notification msg_") == 2
    assert chatmaid_sandbox.live_key not in log
    messages = sent_messages()
    assert sorted(m["to"] for m in messages) == ["+15557654321", "+15557654322"]
    sends = chatmaid_sandbox.admin.requests()["byEndpoint"]["POST /v1/messages/send"]
    assert sends == {"201": 2}
    for message in messages:
        assert message["content"].startswith(
            "chatmaid_failure_alert: check_feed_freshness failed for 20"
        ), message["content"]
        assert message["content"].endswith("(try 1): partner feed is 30h old (limit 24h)")


def test_a_deadline_alert_renders_the_run_id(
    deployment: Deployment, chatmaid_sandbox: SandboxHandle, sent_messages: Messages
) -> None:
    run_id = deployment.trigger("chatmaid_it_deadline")

    assert deployment.run_state("chatmaid_it_deadline", run_id) == "success", deployment.tails()
    (alert,) = sent_messages()
    assert alert["to"] == "+15557654329"
    assert alert["content"] == (
        f"chatmaid_it_deadline run {run_id} of {run_id.split('__')[1][:10]} missed its deadline"
    )


def test_no_key_reached_any_log(deployment: Deployment, chatmaid_sandbox: SandboxHandle) -> None:
    logs = deployment.task_logs()
    assert "Chatmaid notification msg_" in logs  # the logs read are the ones written
    assert chatmaid_sandbox.live_key not in logs


def _with_sends(log: str, count: int) -> str | None:
    return log if log.count("Chatmaid notification msg_") >= count else None


def test_a_connection_made_in_the_form_tests_green_and_keeps_its_secrets(
    deployment: Deployment,
    chatmaid_sandbox: SandboxHandle,
    browser: Browser,
    tmp_path: Path,
) -> None:
    """The connection form in a real browser: Add, Test from the list, Edit."""
    secret = "whsec_typed_into_the_form"
    masks_extras = AIRFLOW_V_3_3_PLUS  # 3.2's form has no masked input for extras
    host, port = chatmaid_sandbox.url.rsplit(":", 1)
    page = browser.new_page(viewport={"width": 1100, "height": 1800})
    page.goto(f"{str(deployment.api.base_url).rstrip('/')}/connections")
    page.get_by_role("button", name="Add Connection").click()
    form = page.locator("[role=dialog]")
    form.locator("input[name=connection_id]").fill("chatmaid_form")
    form.get_by_text("Select Connection Type").click(force=True)
    page.keyboard.type("Chatmaid")
    page.keyboard.press("Enter")
    form.locator("input[name=host]").fill(host)
    form.locator("input[name=port]").fill(port)
    form.locator("input[name=password]").fill(chatmaid_sandbox.test_key)
    _shot(form, "airflow-connection-form", tmp_path)
    form.get_by_role("button", name="Extra Fields", exact=True).click()
    secret_input = form.locator("input[name=element_webhook_secret]")
    expect(secret_input).to_have_count(1 if masks_extras else 0)
    if masks_extras:
        expect(secret_input).to_have_attribute("type", "password")
        secret_input.fill(secret)
    form.locator("input[name=element_timeout]").fill("15")
    _shot(form, "airflow-connection-extras", tmp_path)
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    row = page.locator("tbody tr", has_text="chatmaid_form")
    expect(row).to_have_count(1)
    tested = _response_to_click(page, row.get_by_label("Test Connection"), "/connections/test")

    assert tested.status == 200
    assert tested.json() == {
        "status": True,
        "message": "Connected to Chatmaid account 'Chatmaid Sandbox' with a test key",
    }
    stored = deployment.api.get("/api/v2/connections/chatmaid_form").json()
    assert (stored["host"], stored["port"]) == (host, int(port))
    row.get_by_label("Edit Connection").click(force=True)
    # The port stays in sight, so an edit of the Base URL cannot leave a stale one.
    expect(page.locator("[role=dialog] input[name=port]")).to_have_value(port)
    assert secret not in page.content()
    page.close()


def _response_to_click(page: Page, button: Locator, path: str, tries: int = 3) -> Response:
    """Click ``button`` until the page requests ``path``; its response.

    The list re-renders after a save, and a click on the row it replaces is lost: on a
    loaded machine one click in many sent nothing. A Test is safe to repeat.
    """
    expect(button).to_be_enabled()

    def click() -> Response:
        with page.expect_response(lambda r: r.url.endswith(path), timeout=15_000) as sent:
            button.click(force=True)  # a tooltip covers it
        return sent.value

    for _ in range(tries - 1):
        with contextlib.suppress(PlaywrightTimeoutError):
            return click()
    return click()


def _shot(element: Locator, name: str, tmp_path: Path) -> None:
    """A screenshot for docs/images when CHATMAID_SCREENSHOT_DIR says where."""
    element.screenshot(
        path=Path(os.environ.get("CHATMAID_SCREENSHOT_DIR") or tmp_path) / f"{name}.png"
    )
