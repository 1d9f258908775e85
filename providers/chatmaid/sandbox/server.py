"""Running a sandbox: in a background thread (tests, scripts) or a subprocess (benchmarks).

>>> with run_sandbox(live_delay=0.2) as sandbox:  # doctest: +SKIP
...     client = sandbox.client()
...     client.send_message(from_phone=sandbox.phone_id, to="+15557654321", content="Hi")
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp
from typing_extensions import Unpack

from .._async_client import AsyncChatmaidClient
from .._client import ChatmaidClient
from .._config import ClientOptions
from .admin_client import Admin
from .app import create_app
from .faults import quiet_dropped_response_logs
from .options import SandboxOptions
from .seed import SEED


def make_server(app: ASGIApp, *, log_requests: bool = False) -> uvicorn.Server:
    """The one server stack: uvicorn with uvloop and httptools when installed, no access log."""
    quiet_dropped_response_logs()
    config = uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=log_requests,
        log_level="info" if log_requests else "warning",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0``: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread, on its own event loop."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False
    ) -> None:
        self._socket = bind(host, port)
        self.url = url_of(self._socket)
        self._server = make_server(app, log_requests=log_requests)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn {self.url}",
            daemon=True,
        )

    def start(self, timeout: float = 15.0) -> ServerThread:
        """Start serving; return once the server accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start (see the log above)")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class SandboxHandle:
    """A running sandbox: where it is, the seeded credentials, and its admin client.

    Use it as a context manager, or call ``stop()``.
    """

    url: str
    admin: Admin
    stop_server: Callable[[], None] = field(repr=False)
    test_key: str = SEED.test_key
    live_key: str = SEED.live_key
    phone_id: str = SEED.phone_id
    disconnected_phone_id: str = SEED.disconnected_phone_id
    account_id: str = SEED.account_id

    def client(
        self, api_key: str | None = None, **options: Unpack[ClientOptions]
    ) -> ChatmaidClient:
        """A ``ChatmaidClient`` on this sandbox (the test key unless told)."""
        options.setdefault("base_url", self.url)
        return ChatmaidClient(api_key or self.test_key, **options)

    def async_client(
        self, api_key: str | None = None, **options: Unpack[ClientOptions]
    ) -> AsyncChatmaidClient:
        """An ``AsyncChatmaidClient`` on this sandbox (the test key unless told)."""
        options.setdefault("base_url", self.url)
        return AsyncChatmaidClient(api_key or self.test_key, **options)

    def stop(self) -> None:
        """Stop the sandbox."""
        self.admin.close()
        self.stop_server()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    *, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False, **options: Any
) -> SandboxHandle:
    """Start a sandbox in a background thread; ``options`` are ``SandboxOptions`` fields."""
    app = create_app(options=SandboxOptions(**options))
    server = ServerThread(app, host, port, log_requests=log_requests).start()
    return SandboxHandle(url=server.url, admin=Admin(server.url), stop_server=server.stop)


def start_sandbox_process(
    *, host: str = "127.0.0.1", port: int = 0, ready_timeout: float = 30.0, **options: Any
) -> SandboxHandle:
    """Start ``chatmaid-sandbox serve`` in a subprocess; return once it answers."""
    command = [
        sys.executable,
        "-m",
        "chatmaid.sandbox.cli",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--print-json",
        *SandboxOptions(**options).to_cli_args(),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"chatmaid-sandbox exited with {process.returncode} before starting")
    url = json.loads(line)["url"]

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()

    admin = Admin(url)
    deadline = time.monotonic() + ready_timeout
    while True:
        try:
            admin.health()
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop()
                raise RuntimeError(f"chatmaid-sandbox at {url} did not become ready") from None
            time.sleep(0.02)
    return SandboxHandle(url=url, admin=admin, stop_server=stop)
