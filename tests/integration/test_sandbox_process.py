"""The ``chatmaid-sandbox`` CLI and the subprocess runner benchmarks use."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatmaid import webhooks
from chatmaid.sandbox import SEED, WebhookConfig, start_sandbox_process
from chatmaid.sandbox.cli import main
from chatmaid.sandbox.server import ServerThread

pytestmark = pytest.mark.integration

SECRET = "whsec_process"


def test_process_runner_with_cli_options() -> None:
    bodies: list[tuple[bytes, str]] = []

    async def hooks(request: Request) -> Response:
        bodies.append((await request.body(), request.headers["x-chatmaid-signature"]))
        return Response()

    with ServerThread(Starlette(routes=[Route("/hooks", hooks, methods=["POST"])])) as receiver:
        webhook = WebhookConfig(receiver.url + "/hooks", SECRET, frozenset({"message.sent"}))
        with start_sandbox_process(rate_limit=0, live_delay=0.1, webhooks=(webhook,)) as sandbox:
            with sandbox.client(SEED.live_key, requests_per_minute=None) as client:
                message = client.send_message(
                    from_phone=sandbox.phone_id, to="+15557654321", content="x"
                )
                assert message.status == "pending"
                assert (
                    client.wait_for_terminal(message.id, poll_interval=0.05, timeout=5).status
                    == "sent"
                )
            with httpx.Client(headers={"Authorization": f"Bearer {sandbox.test_key}"}) as http:
                statuses = {http.get(sandbox.url + "/v1/account").status_code for _ in range(150)}
            assert statuses == {200}  # --rate-limit 0: no limit
            assert sandbox.admin.settings()["liveDelay"] == 0.1
            deadline = time.monotonic() + 5
            while not bodies and time.monotonic() < deadline:
                time.sleep(0.02)
            [(body, signature)] = bodies
            assert webhooks.verify(body, signature, SECRET).event == "message.sent"
        with pytest.raises(httpx.TransportError):
            httpx.get(sandbox.url + "/_sandbox/health", timeout=1)


def test_cli_prints_a_banner_with_the_seed() -> None:
    command = [sys.executable, "-m", "chatmaid.sandbox.cli", "serve", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(12)]
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
    banner = "".join(lines)
    assert banner.startswith("chatmaid-sandbox inbox: http://127.0.0.1:")  # the page first
    assert lines[1].startswith("chatmaid-sandbox listening on http://127.0.0.1:")
    for value in (SEED.test_key, SEED.live_key, SEED.phone_id, SEED.disconnected_phone_id):
        assert value in banner
    assert "0000 or 0001" in banner


def test_cli_help_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (
        "--rate-limit",
        "--live-delay",
        "--time-scale",
        "--webhook-secret",
        "--print-json",
    ):
        assert flag in help_text
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--webhook", "http://127.0.0.1:1/hooks"])
    assert refused.value.code == 2
    assert "--webhook needs --webhook-secret" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--time-scale", "0"])
    assert "time_scale must be > 0" in capsys.readouterr().err


def test_a_send_whose_caller_hangs_up_mid_body_is_no_server_error(
    chatmaid_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A cancelled send (the bridge cancels sends of a revoked partition) leaves the
    sandbox quiet: no traceback logged, nothing stored, the next send served."""
    url = httpx.URL(chatmaid_sandbox.url)
    head = (
        f"POST /v1/messages/send HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {chatmaid_sandbox.test_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    )
    before = len(chatmaid_sandbox.admin.messages())
    with caplog.at_level(logging.ERROR), socket.create_connection((url.host, url.port)) as conn:
        conn.sendall(head.encode() + b'{"to": "+1555')
        time.sleep(0.2)  # the handler is reading the body when the caller hangs up
        conn.close()
        time.sleep(0.3)
        answer = httpx.post(
            f"{chatmaid_sandbox.url}/v1/messages/send",
            headers={"Authorization": f"Bearer {chatmaid_sandbox.test_key}"},
            json={"fromPhoneId": SEED.phone_id, "to": "+15557654321", "content": "after"},
        )
    assert answer.status_code == 201
    assert len(chatmaid_sandbox.admin.messages()) == before + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
