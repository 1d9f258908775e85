"""Concurrency with order: many sends at once, but one key's events one after another.

Jobs with the same (partition, key) form a chain and run in read order; jobs without a
key run independently. At most ``concurrency`` jobs run at once (a semaphore, so the
bound holds across chains). Jobs of a partition can be cancelled when it is revoked.
Everything here runs on one asyncio loop; other threads hand jobs over with
``loop.call_soon_threadsafe(dispatcher.submit, jobs)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .offsets import PartitionId

T = TypeVar("T")

logger = logging.getLogger("chatmaid_kafka.dispatcher")


@dataclass(frozen=True, slots=True)
class Job(Generic[T]):
    """One unit of work: its partition, its ordering key (``None``: unordered), its item."""

    partition: PartitionId
    key: bytes | None
    item: T


class Dispatcher(Generic[T]):
    """Runs ``handle(item)`` for submitted jobs, concurrently up to a bound, keys in order."""

    def __init__(self, handle: Callable[[T], Awaitable[None]], concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._handle = handle
        self._slots = asyncio.Semaphore(concurrency)
        self._chains: dict[tuple[PartitionId, bytes], deque[Job[T]]] = {}
        self._tasks: dict[PartitionId, set[asyncio.Task[None]]] = {}

    def submit(self, jobs: Iterable[Job[T]]) -> None:
        """Queue jobs in read order (call on the dispatcher's loop)."""
        for job in jobs:
            if job.key is None:
                self._start(job.partition, self._run_one(job))
                continue
            chain_key = (job.partition, job.key)
            chain = self._chains.get(chain_key)
            if chain is not None:
                chain.append(job)
                continue
            chain = self._chains[chain_key] = deque([job])
            self._start(job.partition, self._run_chain(chain_key, chain))

    def cancel(self, partitions: Collection[PartitionId]) -> int:
        """Drop queued jobs of ``partitions`` and cancel running ones; return how many tasks."""
        for chain_key in [k for k in self._chains if k[0] in partitions]:
            self._chains.pop(chain_key).clear()
        cancelled = 0
        for partition in partitions:
            for task in self._tasks.get(PartitionId(*partition), ()):
                task.cancel()
                cancelled += 1
        return cancelled

    @property
    def active(self) -> int:
        """Tasks not finished (running, or waiting for a slot or their turn)."""
        return sum(len(tasks) for tasks in self._tasks.values())

    async def join(self) -> None:
        """Wait until every submitted job has finished or been cancelled."""
        while self._tasks:
            tasks = [task for tasks in self._tasks.values() for task in tasks]
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, partition: PartitionId, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        tasks = self._tasks.setdefault(partition, set())
        tasks.add(task)
        task.add_done_callback(lambda done: self._forget(partition, done))

    def _forget(self, partition: PartitionId, task: asyncio.Task[None]) -> None:
        tasks = self._tasks.get(partition)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._tasks[partition]

    async def _run_one(self, job: Job[T]) -> None:
        async with self._slots:
            await self._call(job)

    async def _run_chain(self, chain_key: tuple[PartitionId, bytes], chain: deque[Job[T]]) -> None:
        try:
            while chain:
                async with self._slots:
                    await self._call(chain[0])
                if chain:  # cancel() may have cleared it meanwhile
                    chain.popleft()
        finally:
            if self._chains.get(chain_key) is chain:
                del self._chains[chain_key]

    async def _call(self, job: Job[T]) -> None:
        try:
            await self._handle(job.item)
        except asyncio.CancelledError:
            raise
        except Exception:
            # handle() turns every failure into an outcome; reaching here is a bug, and
            # the chain must go on regardless, or one bad job would stall its key.
            logger.exception("job of %s failed unexpectedly", job.partition)
