"""The webhook receiver a user would hand-write: bench_receiver's second baseline.

A plain ASGI app on the sandbox's server stack (``make_server``: uvicorn, uvloop,
httptools), in a subprocess of its own: it checks the ``X-Chatmaid-Signature`` HMAC and
its timestamp, reads the body's ``messageId``, produces one record to the topic with
acks=all (idempotent, linger 0, the receiver's settings) and answers 200 once Kafka
acknowledged it, 401 for a bad signature, 503 without an ack. It does less than
``chatmaid-bridge receive``: no typed parsing, no correlation with the notify event, no
de-duplication of deliveries, no metrics.

    with hand_written_receiver(bootstrap, topic, secret) as url: ...
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _baseline import served

SECRET_VARIABLE = "HAND_WRITTEN_RECEIVER_SECRET"
TOLERANCE_S = 300


def serve(bootstrap: str, topic: str, secret: str) -> None:
    """Serve the receiver on a free port; print its URL first."""
    from kafka.producer import KafkaProducer
    from starlette.types import Receive, Scope, Send

    from chatmaid.sandbox.server import bind, make_server, url_of

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
    )
    producer.partitions_for(topic)
    key = secret.encode()

    def signed(body: bytes, header: bytes) -> bool:
        fields = dict(part.split(b"=", 1) for part in header.split(b",") if b"=" in part)
        stamp, given = fields.get(b"t", b""), fields.get(b"v1", b"")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_S:
            return False
        expected = hmac.new(key, stamp + b"." + body, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(expected, given)

    async def acknowledged(record: bytes, message_id: str) -> bool:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[bool] = loop.create_future()

        def settle(outcome: bool) -> None:
            if not acked.done():
                acked.set_result(outcome)

        future = producer.send(topic, key=message_id.encode(), value=record)
        future.add_callback(lambda _: loop.call_soon_threadsafe(settle, True))
        future.add_errback(lambda _: loop.call_soon_threadsafe(settle, False))
        return await acked

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        header = dict(scope["headers"]).get(b"x-chatmaid-signature", b"")
        status = 401
        if signed(body, header):
            event: dict[str, Any] = json.loads(body)
            data = event["data"]
            record = {"type": event["event"], "messageId": data["messageId"], "data": data}
            ok = await acknowledged(json.dumps(record).encode(), data["messageId"])
            status = 200 if ok else 503
        answer = b'{"ok":true}' if status == 200 else b'{"ok":false}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    sock = bind("127.0.0.1", 0)
    print(json.dumps({"url": url_of(sock)}), flush=True)
    try:
        make_server(app).run(sockets=[sock])
    finally:
        producer.close(timeout=10)


@contextmanager
def hand_written_receiver(bootstrap: str, topic: str, secret: str) -> Iterator[str]:
    """Run ``serve`` in a subprocess (the secret in its environment); yield its base URL."""
    command = [sys.executable, os.path.abspath(__file__), bootstrap, topic]
    with served(command, env={**os.environ, SECRET_VARIABLE: secret}) as url:
        yield url


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], os.environ[SECRET_VARIABLE])
