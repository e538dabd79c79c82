"""The receiving loop: consume the inbox in the background, hand items over from the ledger.

:meth:`Inbox.serve` consumes: every delivery is admitted, stored, answered (01 or 02) and settled
with the broker, and receipts move the ledger, whether or not the application is reading. Up to
``prefetch`` deliveries are handled at once (verifying is CPU work, receipts wait for confirms), and
never more than ``Limits.max_inflight_bytes`` of their bodies
(:class:`~vbdt.exchange.budget.ByteBudget`). It survives broker outages: a delivery whose handling
fails on the transport is left unacked (the broker gives it again; the ledger recognises it), the
consumer is reopened with a growing pause, and the outbox is flushed each time and every few seconds
while anything is pending.

:meth:`Inbox.items` hands over what the ledger holds and the application has not acknowledged:
first what an earlier run handed and never saw acknowledged (``redelivered``), then each new arrival
once. The broker's acknowledgement and the application's are separate: the first happens when the
package is stored, the second when the application says it committed it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator

from vbdt.errors import TransportError
from vbdt.exchange.answers import InboxItem
from vbdt.exchange.budget import ByteBudget
from vbdt.exchange.ledger import Incoming, Ledger
from vbdt.exchange.outbox import Outbox
from vbdt.exchange.receiving import Receiver
from vbdt.exchange.transport import Delivery, Transport
from vbdt.exchange.waiting import wait_event

__all__ = ["Inbox"]

log = logging.getLogger("vbdt.exchange.inbox")

_Ready = asyncio.Queue[InboxItem | BaseException | None]
_Key = tuple[str, str, str]
_FRESH_MAX = 256
_SWEEP_EVERY = 1.0  # seconds between looks at the ledger for items no handler handed
_SWEEP_IDLE = 30.0  # the longest pause between looks while nothing happens (a host idles thousands)


class Inbox:
    """One agency's inbox, read through a :class:`Receiver`."""

    def __init__(self, organ_id: str, *, transport: Transport, ledger: Ledger, receiver: Receiver, outbox: Outbox,
                 prefetch: int, reconnect_attempts: int, max_inflight_bytes: int) -> None:
        self.organ_id = organ_id
        self.transport = transport
        self.ledger = ledger
        self.receiver = receiver
        self.outbox = outbox
        self.prefetch = prefetch
        self.reconnect_attempts = reconnect_attempts
        self.budget = ByteBudget(max_inflight_bytes)
        self._arrived = asyncio.Event()
        self._fresh: dict[_Key, InboxItem] = {}  # handled in this process: no need to parse the body again
        self._serving: asyncio.Task[None] | None = None
        self._ended: BaseException | None = None

    @property
    def serving(self) -> bool:
        """The background consumer is running."""
        return self._serving is not None and not self._serving.done()

    def start(self) -> None:
        """Start :meth:`serve` in the background (once)."""
        if self._serving is None or self._serving.done():
            self._ended = None
            self._serving = asyncio.create_task(self.serve(), name=f"vbdt-inbox-{self.organ_id}")
            self._serving.add_done_callback(self._served)

    async def stop(self) -> None:
        """Stop the background consumer: a delivery in hand is left unacked and comes back."""
        if self._serving is not None:
            self._serving.cancel()
            await asyncio.gather(self._serving, return_exceptions=True)

    def _served(self, task: asyncio.Task[None]) -> None:
        self._ended = (task.exception() or EOFError("the inbox was closed")) if not task.cancelled() else EOFError()
        self._arrived.set()

    async def serve(self) -> None:
        """Consume until the transport is closed; raise what stopped it otherwise."""
        flusher = asyncio.create_task(self.outbox.keep_flushing())
        try:
            await self._consume_forever()
        finally:
            flusher.cancel()

    async def items(self) -> AsyncIterator[InboxItem]:
        """Documents and recall requests not acknowledged yet, each handed once per run."""
        self.start()
        for stored in self.ledger.unacknowledged():  # from an earlier run: handed or not, never acknowledged
            if stored.handed or self.ledger.claim_handover(stored.sender, stored.document_id, stored.kind):
                yield self._item(stored)
        swept = -_SWEEP_EVERY
        pause = _SWEEP_EVERY  # doubles while rounds find nothing: an idle inbox costs (almost) nothing
        while True:
            self._arrived.clear()
            # What this process handled since the last round, handed from the items in hand, each
            # claimed just before it is handed (off the event loop when there is a group commit):
            # claimed together, a crash after the first would mark the others handed, unseen.
            fresh = list(self._fresh)
            for key in fresh:
                item = self._fresh.pop(key, None)
                if item is not None and await self.outbox.write(functools.partial(self.ledger.claim_handover, *key)):
                    yield item
            # The ledger itself, for what no handler of this run handed (a handler that failed after
            # its commit, items dropped from the bounded hand): at once when nothing came in hand,
            # else once a second, not on every arrival; while rounds find nothing, less and less often.
            now = time.monotonic()
            found = bool(fresh)
            if not fresh or now - swept >= _SWEEP_EVERY or self._ended is not None:
                swept = now
                for stored in self.ledger.unhanded():
                    # A package whose handler has not returned yet is handed from its item (no second
                    # parse of the body); should the handler fail, the row is still unhanded next time.
                    if (stored.sender, stored.document_id, stored.kind) in self.receiver.settling:
                        continue
                    found = True
                    if self.ledger.claim_handover(stored.sender, stored.document_id, stored.kind):
                        yield self._item(stored)
            pause = _SWEEP_EVERY if found else min(pause * 2, _SWEEP_IDLE)
            if self._ended is not None and not self._fresh and not self.ledger.unhanded():
                if isinstance(self._ended, EOFError):
                    return  # the transport was closed (or the consumer stopped)
                raise self._ended
            if self._fresh:
                continue  # arrived while the application had the last item
            await wait_event(self._arrived, pause)  # every handled delivery wakes it, whatever became of it (see _feed)

    def _keep(self, item: InboxItem) -> None:
        """Hold a handled item for :meth:`items`, which hands it over without reading the body again."""
        self._fresh[(item.sender, item.document_id, item.stored_as)] = item
        while len(self._fresh) > _FRESH_MAX:  # nobody reading: the ledger keeps them anyway
            self._fresh.pop(next(iter(self._fresh)))

    def _item(self, stored: Incoming) -> InboxItem:
        fresh = self._fresh.pop((stored.sender, stored.document_id, stored.kind), None)
        if fresh is not None and not stored.handed:
            return fresh
        return self.receiver.stored(stored)

    async def _consume_forever(self) -> None:
        failures = 0
        while True:
            ready: _Ready = asyncio.Queue()
            feeder: asyncio.Task[None] | None = None
            try:
                await self.outbox.flush()
                feeder = asyncio.create_task(self._feed(ready))
                while (item := await ready.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    failures = 0
                    self._arrived.set()
                return  # the transport was closed
            except TransportError as exc:
                failures += 1
                if failures > self.reconnect_attempts:
                    raise
                log.warning("%s: inbox interrupted (%s); retry %d", self.organ_id, exc, failures)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            finally:
                if feeder is not None:
                    feeder.cancel()
                    await asyncio.gather(feeder, return_exceptions=True)

    async def _feed(self, ready: _Ready) -> None:
        """Handle deliveries concurrently, within the prefetch slots and the byte budget; what is
        to be handed over goes to ``ready``, in completion order."""
        slots = asyncio.Semaphore(self.prefetch)
        running: set[asyncio.Task[None]] = set()

        async def one(delivery: Delivery) -> None:
            try:
                handed = await self.receiver.handle(delivery)
                if handed is not None:
                    self._keep(handed)  # before the handler's settling mark is read again by items()
                    await ready.put(handed)
            except TransportError as exc:  # not acked: the broker gives it again, the ledger knows it
                log.warning("%s: %s left for redelivery: %s", self.organ_id, delivery.message_id, exc)
                self._arrived.set()  # it may be stored all the same: items() looks at the ledger now
            except Exception as exc:  # the ledger failing, or a bug: stop and tell the application (not acked)
                log.exception("%s: %s failed", self.organ_id, delivery.message_id)
                await ready.put(exc)

        def done(task: asyncio.Task[None], held: int) -> None:
            # a done callback, not a finally: a task cancelled before it started runs no finally
            running.discard(task)
            self.budget.release(held)
            slots.release()

        try:
            async for delivery in self.transport.consume(self.organ_id, prefetch=self.prefetch):
                await slots.acquire()
                try:
                    held = await self.budget.acquire(len(delivery.body))
                except BaseException:
                    slots.release()
                    raise
                task = asyncio.create_task(one(delivery))
                running.add(task)
                task.add_done_callback(functools.partial(done, held=held))
            await asyncio.gather(*running, return_exceptions=True)
            await ready.put(None)
        except Exception as exc:  # a transport failure (retried) or a bug (raised to the application), never lost
            await ready.put(exc)
        finally:
            for task in running:
                task.cancel()
