"""Serving the bridge's ASGI app with uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class HttpServer:
    """uvicorn on ``host:port`` (``port=0``: a free one) in a daemon thread."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=2048)
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = (
            f"http://[{bound_host}]:{bound_port}"
            if ":" in host
            else (f"http://{bound_host}:{bound_port}")
        )
        config = uvicorn.Config(
            app,
            loop="auto",
            http="auto",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="chatmaid-bridge-http",
            daemon=True,
        )

    @property
    def alive(self) -> bool:
        """True while the server thread runs."""
        return self._thread.is_alive()

    def start(self, timeout: float = 15.0) -> HttpServer:
        """Start serving; return once requests are accepted."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"HTTP server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish open requests (bounded) and stop."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()
