"""Group commit: the ledger writes of concurrent deliveries, coalesced into one transaction.

A busy inbox settles many deliveries at once: receipts applied, documents stored with their 01 in
the outbox, confirms recorded. Each of those writes was its own SQLite transaction on the event
loop. With :class:`GroupCommit` they go to one writer thread, which runs every write waiting in one
:meth:`~vbdt.exchange.ledger.Ledger.batch` (one ``BEGIN IMMEDIATE`` … ``COMMIT``, each write a
savepoint) while the event loop goes on; the writes that arrive during a commit form the next
group, so the busier the inbox, the larger the groups (and with ``durability="full"``, the fewer
fsyncs per write). ``thread=False`` commits on the event loop instead, at the end of its current
round.

The guarantees are those of a transaction per write:

- ``await commits.run(write)`` returns only after the transaction that holds the write committed,
  so whatever follows the await (an acknowledgement to the broker, a publish of what the write
  recorded in the outbox) follows the commit;
- a write that raises (an :class:`~vbdt.errors.InvalidTransition`, a conflict) is rolled back to
  its savepoint and raises to its own caller only; the rest of the group commits;
- a commit that fails (disk full, the file gone) fails every write of the group with the
  :class:`~vbdt.errors.LedgerError`: none of their deliveries is acknowledged, the broker gives
  them again.

A ledger whose :meth:`~vbdt.exchange.ledger.Ledger.batch` is a no-op still works: its writes run
one after the other in the writer thread, each committing on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vbdt.exchange.ledger import Ledger

__all__ = ["GroupCommit"]

T = TypeVar("T")

_Waiting = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class GroupCommit:
    """Concurrent ledger writes sharing transactions, committed in a writer thread (``thread=True``,
    the default: the event loop never waits for the disk) or on the event loop."""

    def __init__(self, ledger: Ledger, *, thread: bool = True, max_group: int = 512) -> None:
        self.ledger = ledger
        self.thread = thread
        self.max_group = max_group
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._scheduled = False
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.groups = 0
        """Transactions committed so far (for tests and benchmarks)."""
        self.writes = 0
        """Writes in them."""

    async def run(self, write: Callable[[], T]) -> T:
        """Run ``write`` (a function making ledger calls) in the next group; its result once the
        group's transaction committed, or what it raised (alone), or the commit's failure."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((write, future))
        if self.thread:
            if self._writer is None or self._writer.done():
                self._writer = loop.create_task(self._write())
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit_here)
        # Shielded: a caller cancelled while its group commits does not cancel the others'.
        return await asyncio.shield(future)

    def _commit_here(self) -> None:
        """On the event loop: every write queued until now, in one transaction."""
        self._scheduled = False
        while self._waiting:
            group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group:]
            self._settle(group, self._commit([w for w, _ in group]))

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group:]
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="vbdt-ledger")
            try:
                outcomes = await asyncio.shield(loop.run_in_executor(self._executor, self._commit, [w for w, _ in group]))
            except BaseException as exc:  # cancelled, or the thread could not run: nothing is known committed
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the ledger writer stopped"))
                raise
            self._settle(group, outcomes)

    @staticmethod
    def _settle(group: list[_Waiting], outcomes: list[tuple[bool, Any]]) -> None:
        for (_, future), (ok, value) in zip(group, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _commit(self, writes: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Every write in one transaction, each in its own savepoint."""
        outcomes: list[tuple[bool, Any]] = []
        with self._lock:
            try:
                with self.ledger.batch():
                    for write in writes:
                        try:
                            with self.ledger.batch():  # a savepoint: a failing write is undone alone
                                outcomes.append((True, write()))
                        except Exception as exc:
                            outcomes.append((False, exc))
            except Exception as exc:  # the commit failed: nothing of the group is in the ledger
                return [(False, exc)] * len(writes)
            self.groups += 1
            self.writes += len(writes)
        return outcomes

    async def close(self) -> None:
        """Let the writes waiting now commit, then stop the writer thread."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):
                await self._writer
        if self._waiting and not self.thread:
            self._commit_here()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
