"""The baseline of the HTTP benchmarks: a bare route answering a fixed body.

It runs on the sandbox's own server stack (uvicorn via ``make_server``: uvloop and
httptools when installed, no access log), in a subprocess of its own, so a benchmark
compares its server with the same stack doing no work.

    with fixed_endpoint("/webhooks/chatmaid", 200, b'{"ok":true}') as url: ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def serve(path: str, status: int, body: bytes) -> None:
    """Serve ``POST path`` answering ``status`` and ``body``; print the URL first."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from chatmaid.sandbox.server import bind, make_server, url_of

    async def answer(request: Request) -> Response:
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette(routes=[Route(path, answer, methods=["POST"])])
    sock = bind("127.0.0.1", 0)
    print(json.dumps({"url": url_of(sock)}), flush=True)
    make_server(app).run(sockets=[sock])


@contextmanager
def fixed_endpoint(path: str, status: int, body: bytes) -> Iterator[str]:
    """Run ``serve`` in a subprocess; yield its base URL."""
    command = [sys.executable, os.path.abspath(__file__), path, str(status), body.decode()]
    with served(command) as url:
        yield url


@contextmanager
def served(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``command``, a server that prints ``{"url": ...}`` once it listens; yield the
    URL, then stop it (SIGTERM)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)  # noqa: S603
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())["url"]
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3].encode())
