"""A change feed: which records changed since a sequence number, in the order they changed.

The inbox page polls ``GET /_sandbox/events?since=<seq>``; with thousands of messages
held it must cost only what changed. ``touch`` is O(1) (a dict keeps each record once,
at its latest change), and ``since`` walks back from the newest change and stops at the
first one the caller has already seen.

>>> feed = ChangeFeed()
>>> feed.touch("message", "msg_1"); feed.touch("message", "msg_2"); feed.touch("message", "msg_1")
>>> feed.since(1)
[('message', 'msg_2', 2), ('message', 'msg_1', 3)]
"""

from __future__ import annotations

import os


class ChangeFeed:
    """Records (``kind``, ``id``) by their latest change; ``epoch`` is new after each reset."""

    def __init__(self) -> None:
        self.epoch = "ep_" + os.urandom(6).hex()
        self.seq = 0
        self._latest: dict[tuple[str, str], int] = {}

    def touch(self, kind: str, record_id: str) -> None:
        """Note that a record changed (or was created) now."""
        self.seq += 1
        key = (kind, record_id)
        self._latest.pop(key, None)  # re-inserted last: the dict stays in change order
        self._latest[key] = self.seq

    def since(self, seq: int) -> list[tuple[str, str, int]]:
        """``(kind, id, seq)`` of the records changed after ``seq``, oldest change first."""
        changed = []
        for (kind, record_id), at in reversed(self._latest.items()):
            if at <= seq:
                break
            changed.append((kind, record_id, at))
        changed.reverse()
        return changed
