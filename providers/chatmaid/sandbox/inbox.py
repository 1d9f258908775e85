"""The inbox page at ``/``: static files of the package, a client of the admin API.

Nothing is fetched from elsewhere: the page's own scripts and styles only, under a
Content-Security-Policy that allows nothing else (media URLs are shown as links).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).with_name("web")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def web_routes() -> list[BaseRoute]:
    """``/`` (the page) and ``/inbox/*`` (its scripts and styles)."""
    page = (WEB_DIR / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    return [
        Route("/", index),
        Mount("/inbox", app=StaticFiles(directory=WEB_DIR), name="inbox"),
    ]
