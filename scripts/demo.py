"""``make demo``: the connectors end to end on this machine, in a few seconds.

The demo is a list of steps (``STEPS``) run in order over one shared ``Demo``: the
local sandbox, a webhook receiver on loopback, and what earlier steps produced. A
later part (Airflow, Kafka) adds its steps to the list; everything started is
stopped at the end, even after a failure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatmaid import ChatmaidClient, Message, WebhookVerificationError, webhooks
from chatmaid.sandbox import SEED, run_sandbox
from chatmaid.sandbox.server import SandboxHandle, ServerThread

from demo_airflow import run_airflow_demo
from demo_kafka import run_kafka_demo

WEBHOOK_SECRET = "whsec_demo"  # noqa: S105 - the demo's own throwaway secret
RECIPIENT = "+15557654321"
NOT_ON_WHATSAPP = "+15550000000"  # the sandbox fails recipients ending in 0000
LIVE_DELAY = 1.5


@dataclass(frozen=True)
class Received:
    """One webhook delivery, as the receiver saw and verified it."""

    event: str
    message_id: str
    delivery_id: str
    verified: bool
    detail: str


class WebhookReceiver:
    """A tiny webhook endpoint that verifies each delivery with ``chatmaid.webhooks``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.server = ServerThread(
            Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])
        )
        self.url = self.server.url + "/hooks"

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = webhooks.verify(
                body, request.headers.get(webhooks.SIGNATURE_HEADER), self.secret
            )
        except WebhookVerificationError as exc:
            self._keep(request, "?", "", False, str(exc))
            return Response(status_code=400)
        data = event.data if isinstance(event.data, dict) else event.data.to_api()
        subject = str(data.get("messageId") or data.get("id"))
        self._keep(request, event.event, subject, True, str(data.get("status") or ""))
        return Response(status_code=204)

    def _keep(self, request: Request, event: str, subject: str, ok: bool, detail: str) -> None:
        delivery = request.headers.get("X-Chatmaid-Delivery", "")
        self.received.append(Received(event, subject, delivery, ok, detail))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The deliveries so far, once ``count`` arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)


@dataclass
class Demo:
    """What the steps share: things started (stopped by ``stack``) and results."""

    stack: ExitStack
    sandbox: SandboxHandle | None = None
    receiver: WebhookReceiver | None = None
    messages: dict[str, Message] = field(default_factory=dict)

    def client(self, api_key: str) -> ChatmaidClient:
        """A core client on the sandbox, closed at the end."""
        assert self.sandbox is not None
        return self.stack.enter_context(self.sandbox.client(api_key, requests_per_minute=None))


def say(text: str = "") -> None:
    print(f"    {text}", flush=True)


def describe(message: Message) -> str:
    extra = f" {message.error_code}: {message.error_message}" if message.is_failed else ""
    return f"{message.id} {message.status}{extra}"


# -- steps ------------------------------------------------------------------------------


def start_sandbox(demo: Demo) -> None:
    """Start the local Chatmaid sandbox and a webhook receiver."""
    demo.receiver = WebhookReceiver(WEBHOOK_SECRET)
    demo.stack.enter_context(demo.receiver.server)
    demo.sandbox = demo.stack.enter_context(run_sandbox(live_delay=LIVE_DELAY))
    demo.sandbox.admin.add_webhook(demo.receiver.url, WEBHOOK_SECRET)
    say(f"inbox     {demo.sandbox.url}/  (open it: what the demo sends, live)")
    say(f"sandbox   {demo.sandbox.url}  (OpenAPI at /openapi.json)")
    say(f"keys      {SEED.test_key}, {SEED.live_key}")
    say(f"phones    {SEED.phone_number} connected, {SEED.disconnected_phone_number} not")
    say(f"webhooks  -> {demo.receiver.url} (signed with the endpoint's secret)")


def send_with_test_key(demo: Demo) -> None:
    """Send with a test key: delivery is simulated at once."""
    client = demo.client(SEED.test_key)
    sender = client.resolve_sender()
    say(f"sender    {sender.phone_number} ({sender.display_name}, id {sender.id})")
    message = client.send_message(from_phone=sender.id, to=RECIPIENT, content="Hello from the demo")
    demo.messages["test"] = message
    say(f"sent      {describe(message)}  (test keys answer 'sent' straight away)")
    failed = client.send_message(from_phone=sender.id, to=NOT_ON_WHATSAPP, content="Hello?")
    demo.messages["failed"] = failed
    say(f"sent      {describe(failed)}")


def send_with_live_key(demo: Demo) -> None:
    """Send with a live key and follow the lifecycle pending -> sent."""
    client = demo.client(SEED.live_key)
    started = time.monotonic()
    message = client.send_message(
        from_phone=SEED.phone_id, to=RECIPIENT, content="Order 7784 confirmed"
    )
    say(f"accepted  {describe(message)}")
    final = client.wait_for_terminal(message.id, poll_interval=0.25, timeout=10)
    demo.messages["live"] = final
    say(f"settled   {describe(final)} after {time.monotonic() - started:.1f}s (wait_for_terminal)")


def show_webhooks(demo: Demo) -> None:
    """Show the webhooks the receiver got, each verified with chatmaid.webhooks.verify."""
    assert demo.receiver is not None
    expected = len(demo.messages)
    received = demo.receiver.wait_for(expected)
    for delivery in received:
        mark = "verified" if delivery.verified else f"REJECTED ({delivery.detail})"
        say(f"{delivery.event:<15} {delivery.message_id}  {mark}  delivery {delivery.delivery_id}")
    if len(received) < expected or not all(d.verified for d in received):
        raise RuntimeError(f"expected {expected} verified webhooks, got {received}")


def run_airflow_dag(demo: Demo) -> None:
    """Run the example KPI alert DAG with Airflow against the sandbox."""
    assert demo.sandbox is not None
    run_airflow_demo(demo.sandbox.url, SEED.test_key)


def run_kafka_bridge(demo: Demo) -> None:
    """Run the Kafka bridge: notify events in, sends out, results and dead letters back."""
    assert demo.sandbox is not None
    run_kafka_demo(demo.sandbox.url, SEED.test_key)


STEPS: list[Callable[[Demo], None]] = [
    start_sandbox,
    send_with_test_key,
    send_with_live_key,
    show_webhooks,
    run_airflow_dag,
    run_kafka_bridge,
]


def main() -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        demo = Demo(stack)
        for number, step in enumerate(STEPS, 1):
            title = (step.__doc__ or step.__name__).strip().splitlines()[0].rstrip(".")
            print(f"\n[{number}/{len(STEPS)}] {title}", flush=True)
            step(demo)
        print(f"\nDone in {time.monotonic() - started:.1f}s.")
        if sys.stdin.isatty() and demo.sandbox is not None:
            input(f"The inbox stays at {demo.sandbox.url}/ : press Enter to stop everything. ")
    print("Everything started was stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
