"""The embedded exchange: a broker in the process, with RabbitMQ's semantics for what vbdt uses.

For the demo, for tests and for single-process deployments. It keeps the guarantees the
:mod:`vbdt.transport` interface promises — confirmed publishes, unroutable messages refused, the
publisher's user stamped by the broker, redelivery of unacked messages up to a limit, dead letters
with a reason, each user reading only its own inbox — but nothing survives the process.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from vbdt.errors import TransportError, Unroutable
from vbdt.routing import HEADER_REASON, routing_key
from vbdt.transport import DELIVERY_LIMIT, Delivery, Outgoing, PublishOutcome, Transport

__all__ = ["MemoryBroker", "MemoryTransport"]


@dataclass
class _Message:
    body: bytes
    message_id: str
    routing_key: str
    headers: dict[str, str]
    user_id: str
    deliveries: int = 0


@dataclass
class _Queue:
    name: str
    ready: deque[_Message] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, message: _Message, *, front: bool = False) -> None:
        (self.ready.appendleft if front else self.ready.append)(message)
        self.changed.set()


class MemoryBroker:
    """An in-process broker. ``admins`` may read any inbox and declare any queue."""

    def __init__(self, *, delivery_limit: int = DELIVERY_LIMIT, admins: Iterable[str] = ("guest", "admin")) -> None:
        self.delivery_limit = delivery_limit
        self.admins = frozenset(admins)
        self._queues: dict[str, _Queue] = {}  # routing key -> inbox
        self._dead: list[tuple[bytes, dict[str, str]]] = []

    def connect(self, user: str = "guest") -> MemoryTransport:
        """A transport authenticated as ``user`` (an OrganId for an agency)."""
        return MemoryTransport(self, user)

    def queue_depth(self, organ_id: str) -> int:
        """Messages waiting (not delivered) in an agency's inbox."""
        queue = self._queues.get(routing_key(organ_id))
        return len(queue.ready) if queue else 0

    def _give_back(self, queue: _Queue, message: _Message) -> None:
        """An unsuccessful delivery: requeue it, or dead-letter it past the delivery limit (as quorum queues do)."""
        if message.deliveries > self.delivery_limit:
            self._dead.append((message.body, {
                **message.headers, HEADER_REASON: f"delivery limit: delivered {message.deliveries} times without being acknowledged"}))
        else:
            queue.put(message, front=True)

    def _allowed(self, user: str, organ_id: str) -> bool:
        return user in self.admins or user == organ_id


class MemoryDelivery(Delivery):
    """A delivery from the embedded broker."""

    def __init__(self, transport: MemoryTransport, queue: _Queue, message: _Message) -> None:
        self._transport = transport
        self._queue = queue
        self._message = message
        self.body = message.body
        self.message_id = message.message_id
        self.routing_key = message.routing_key
        self.headers = dict(message.headers)
        self.user_id = message.user_id
        self.redelivered = message.deliveries > 1
        self._settled = False

    def _settle(self) -> None:
        if self._settled:
            raise TransportError("delivery already acknowledged or rejected")
        self._settled = True
        self._transport._unacked.discard(self)
        self._queue.changed.set()  # a prefetch slot is free

    async def ack(self) -> None:
        self._settle()

    async def nack(self, *, requeue: bool = True) -> None:
        self._settle()
        if requeue:
            self._transport._broker._give_back(self._queue, self._message)
        else:
            self._transport._broker._dead.append((self.body, {**self.headers, HEADER_REASON: "rejected by the consumer"}))

    async def dead_letter(self, reason: str) -> None:
        self._settle()
        self._transport._broker._dead.append((self.body, {**self.headers, HEADER_REASON: reason}))

    def _return(self) -> None:
        """The consumer went away without settling: back to the queue, to be redelivered."""
        if not self._settled:
            self._settled = True
            self._transport._broker._give_back(self._queue, self._message)


class MemoryTransport(Transport):
    """One user's connection to a :class:`MemoryBroker`."""

    def __init__(self, broker: MemoryBroker, user: str) -> None:
        self._broker = broker
        self.user = user
        self._unacked: set[MemoryDelivery] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("the connection is closed")

    async def declare_inbox(self, organ_id: str) -> None:
        self._check_open()
        if not self._broker._allowed(self.user, organ_id):
            raise TransportError(f"access refused: user {self.user!r} may not declare the inbox of {organ_id}")
        key = routing_key(organ_id)
        self._broker._queues.setdefault(key, _Queue(f"vbdt.inbox.{organ_id}"))

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        self._check_open()
        outcomes = []
        for message in messages:
            queue = self._broker._queues.get(message.routing_key)
            if queue is None:
                outcomes.append(PublishOutcome(message, Unroutable(
                    f"no inbox is bound for routing key {message.routing_key!r}", recipients=[message.routing_key])))
                continue
            queue.put(_Message(message.body, message.message_id, message.routing_key, dict(message.headers), self.user))
            outcomes.append(PublishOutcome(message))
        await asyncio.sleep(0)  # a publish is a suspension point, as on a real broker
        return outcomes

    async def consume(self, organ_id: str, *, prefetch: int = 32) -> AsyncIterator[Delivery]:
        self._check_open()
        if not self._broker._allowed(self.user, organ_id):
            raise TransportError(f"access refused: user {self.user!r} may not read the inbox of {organ_id}")
        queue = self._broker._queues.get(routing_key(organ_id))
        if queue is None:
            raise TransportError(f"no inbox for {organ_id}: declare it first")
        mine: set[MemoryDelivery] = set()
        try:
            while not self._closed:
                mine = {d for d in mine if not d._settled}
                if not queue.ready or len(mine) >= prefetch:
                    queue.changed.clear()
                    # Woken by a publish, an ack (a free prefetch slot) or close(). No wait_for with
                    # a timeout here: on Python 3.11 it can swallow a cancellation (gh-86296).
                    await queue.changed.wait()
                    continue
                message = queue.ready.popleft()
                message.deliveries += 1
                delivery = MemoryDelivery(self, queue, message)
                mine.add(delivery)
                self._unacked.add(delivery)
                yield delivery
        finally:
            for delivery in mine:
                delivery._return()
                self._unacked.discard(delivery)

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        if self.user not in self._broker.admins:
            raise TransportError(f"access refused: user {self.user!r} may not read the dead-letter queue")
        drained, self._broker._dead = self._broker._dead, []
        return drained

    async def close(self) -> None:
        self._closed = True
        for queue in self._broker._queues.values():
            queue.changed.set()  # wake this transport's consumers so they see it closed
        for delivery in list(self._unacked):
            delivery._return()
        self._unacked.clear()
