"""``chatmaid-sandbox``: serve a local, stateful twin of the Chatmaid API.

Examples::

    chatmaid-sandbox serve --port 8000
    chatmaid-sandbox serve --port 0 --print-json --rate-limit 0 --live-delay 0.5
    chatmaid-sandbox serve --webhook http://127.0.0.1:9000/hooks --webhook-secret whsec_x
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .app import create_app
from .options import KNOWN_WEBHOOK_EVENTS, PROFILES, SandboxOptions, WebhookConfig
from .seed import SEED
from .server import bind, make_server, url_of


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``serve`` is the one command)."""
    parser = argparse.ArgumentParser(
        prog="chatmaid-sandbox",
        description="A local, stateful twin of the Chatmaid WhatsApp API, for tests and demos.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the sandbox over HTTP",
        description="Serve the sandbox. It starts from a fixed seed (printed at start); "
        "POST /_sandbox/reset returns to it. See docs/sandbox.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    serve.add_argument(
        "--rate-limit",
        type=int,
        default=100,
        help="requests per minute per API key; 0 turns limiting off",
    )
    serve.add_argument(
        "--live-delay",
        type=float,
        default=2.0,
        help="seconds a live-key message stays pending before sent/failed",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="factor on the webhook retry schedule (1, 5, 15 minutes)",
    )
    serve.add_argument(
        "--webhook-timeout",
        type=float,
        default=10.0,
        help="seconds one webhook delivery attempt may take",
    )
    serve.add_argument(
        "--random-seed", type=int, default=0, help="seed of the fault injector's coin flips"
    )
    serve.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="webhook endpoint (repeatable)",
    )
    serve.add_argument("--webhook-secret", help="signing secret of the --webhook endpoints")
    serve.add_argument(
        "--webhook-events",
        default=",".join(sorted(KNOWN_WEBHOOK_EVENTS)),
        help="comma-separated events the --webhook endpoints receive "
        "(the docs profile never sends the live-only ones)",
    )
    serve.add_argument(
        "--profile",
        choices=PROFILES,
        default="docs",
        help="docs: exactly what the docs show; live: plus the live API's known extras "
        "(delivered/read, inbound and manual outgoing messages, SDK-shaped phone events)",
    )
    serve.add_argument(
        "--retry-after-header",
        action="store_true",
        help="add an (undocumented) Retry-After header to 429 answers",
    )
    serve.add_argument(
        "--delivery-id-header",
        action="store_true",
        help="add an (undocumented) X-Chatmaid-Delivery header to webhooks",
    )
    serve.add_argument(
        "--keep-signature-on-retry",
        action="store_true",
        help="retry a webhook with its first attempt's signature (default: sign afresh)",
    )
    serve.add_argument(
        "--print-json",
        action="store_true",
        help="print one JSON line (url, keys, phone ids) instead of a banner",
    )
    serve.add_argument("--log-requests", action="store_true", help="log every request")
    return parser


def options_from(args: argparse.Namespace) -> SandboxOptions:
    """The sandbox options the parsed flags describe."""
    if args.webhook and not args.webhook_secret:
        raise ValueError("--webhook needs --webhook-secret")
    events = frozenset(e.strip() for e in args.webhook_events.split(",") if e.strip())
    webhooks = tuple(WebhookConfig(url, args.webhook_secret, events) for url in args.webhook)
    return SandboxOptions(
        rate_limit=args.rate_limit,
        live_delay=args.live_delay,
        time_scale=args.time_scale,
        webhook_timeout=args.webhook_timeout,
        profile=args.profile,
        retry_after_header=args.retry_after_header,
        delivery_id_header=args.delivery_id_header,
        keep_signature_on_retry=args.keep_signature_on_retry,
        webhooks=webhooks,
        random_seed=args.random_seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``chatmaid-sandbox``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from(args)
        sock = bind(args.host, args.port)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    url = url_of(sock)
    info = _startup_info(url, options)
    print(json.dumps(info) if args.print_json else _banner(info), flush=True)
    make_server(create_app(options=options), log_requests=args.log_requests).run(sockets=[sock])
    return 0


def _startup_info(url: str, options: SandboxOptions) -> dict[str, Any]:
    return {
        "url": url,
        "inbox": f"{url}/",
        "openapi": f"{url}/openapi.json",
        "admin": f"{url}/_sandbox/",
        "accountId": SEED.account_id,
        "testKey": SEED.test_key,
        "liveKey": SEED.live_key,
        "phoneId": SEED.phone_id,
        "phoneNumber": SEED.phone_number,
        "disconnectedPhoneId": SEED.disconnected_phone_id,
        "disconnectedPhoneNumber": SEED.disconnected_phone_number,
        "rateLimit": options.rate_limit,
        "liveDelay": options.live_delay,
        "timeScale": options.time_scale,
        "profile": options.profile,
        "webhooks": [w.url for w in options.webhooks],
    }


def _banner(info: dict[str, Any]) -> str:
    rate = f"{info['rateLimit']}/min per key" if info["rateLimit"] else "off"
    lines = [
        f"chatmaid-sandbox inbox: {info['inbox']}  (open it in a browser)",
        f"chatmaid-sandbox listening on {info['url']}",
        f"  OpenAPI      {info['openapi']}",
        f"  Admin API    {info['admin']}",
        f"  Account      {info['accountId']} (subscription active)",
        f"  Test key     {info['testKey']}  (all scopes)",
        f"  Live key     {info['liveKey']}  (all scopes)",
        f"  Phone        {info['phoneId']}  {info['phoneNumber']}  connected",
        f"  Phone        {info['disconnectedPhoneId']}  {info['disconnectedPhoneNumber']}"
        "  disconnected",
        f"  Rate limit   {rate}; live delay {info['liveDelay']:g}s; "
        f"webhook time scale {info['timeScale']:g}; profile {info['profile']}",
        f"  Webhooks     {', '.join(info['webhooks']) or 'none (POST /_sandbox/webhooks adds)'}",
        "  Recipients ending in 0000 or 0001 fail (see docs/sandbox.md). Ctrl-C stops.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
