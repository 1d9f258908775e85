"""Whether a kafka-python client can reach the cluster, for ``/healthz``.

kafka-python reconnects by itself and never says "down"; its ``connection-count``
metric (open broker connections) does. Only consumers are asked: they keep a connection
open (fetches, heartbeats), while an idle producer may close its own.
"""

from __future__ import annotations

from typing import Any


def connected(client: Any) -> bool:
    """False while ``client`` has no open connection to any broker."""
    for group in client.metrics().values():
        if "connection-count" in group:
            return bool(group["connection-count"] > 0)
    return True  # metrics turned off: nothing to tell by
