"""The embedded exchange: a broker in the process, with RabbitMQ's semantics for what vbdt uses.

For the demo, for tests and for single-process deployments. It keeps the guarantees the
:mod:`vbdt.exchange.transport` interface promises and the permissions ``vbdt broker provision``
gives on RabbitMQ — confirmed publishes, unroutable messages refused, the publisher's user stamped
by the broker, redelivery of unacked messages up to a limit, dead letters with a reason, each
agency reading only its own inbox and configuring nothing, bounded queues refusing when full, a
maximum message size, a single active consumer per inbox — but nothing survives the process.

:meth:`MemoryBroker.named` gives a process-wide broker by name, so that two clients of one process
opened from the same ``memory://NAME`` URL (:func:`vbdt.exchange.connect.connect`) share it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import AccessRefused, PublishRefused, QueueFull, TransportError, Unroutable, UsageError
from vbdt.exchange.routing import (
    BROKER_DEATH,
    BROKER_HEADERS,
    DEAD_LETTER_KEY,
    DEAD_LETTER_QUEUE,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_REPORTED_BY,
    dead_letter_report,
    inbox_queue,
    organ_id_for_queue,
    routing_key,
)
from vbdt.exchange.transport import (
    DEFAULT_QUEUE_LIMITS,
    DELIVERY_LIMIT,
    DeadLetter,
    Delivery,
    InboxStatus,
    OnWaiting,
    Outgoing,
    PublishOutcome,
    QueueLimits,
    Transport,
    refusal,
    report_waiting,
)

__all__ = ["MemoryBroker", "MemoryDelivery", "MemoryTransport"]

log = logging.getLogger("vbdt.exchange.memory")


class _Signal:
    """An ``asyncio.Event`` that any event loop may wait on.

    An ``asyncio.Event`` binds to the first loop that waits on it, so a broker shared by two loops (a
    second ``asyncio.run``, a :class:`~vbdt.exchange.sync.SyncAgencyClient` thread) would make the
    other loop's consumer fail; each waiter here is a future of its own loop, woken thread-safely.
    """

    def __init__(self) -> None:
        self._flag = False
        self._waiters: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        self._flag = True
        for waiter in list(self._waiters):
            try:
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                self._waiters.discard(waiter)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
    """A bounded queue: ``offer`` refuses past the bounds, as ``x-overflow reject-publish`` does."""

    name: str
    max_messages: int
    max_bytes: int
    ready: deque[_Message] = field(default_factory=deque)
    size: int = 0  # bytes of the ready messages
    changed: _Signal = field(default_factory=lambda: _Signal())
    consumers: list[object] = field(default_factory=list)  # the first is the single active one

    def full(self) -> bool:
        # As quorum queues: a publish is refused once the queue is over a bound, so the last
        # message accepted may take it one over.
        return len(self.ready) > self.max_messages or self.size > self.max_bytes

    def put(self, message: _Message, *, front: bool = False) -> None:
        """Enqueue regardless of the bounds (a requeue is not a publish)."""
        (self.ready.appendleft if front else self.ready.append)(message)
        self.size += len(message.body)
        self.changed.set()

    def offer(self, message: _Message) -> bool:
        if self.full():
            return False
        self.put(message)
        return True

    def take(self) -> _Message:
        message = self.ready.popleft()
        self.size -= len(message.body)
        return message


class MemoryBroker:
    """An in-process broker. ``admins`` may read any inbox and the dead letters, and declare queues.

    Agencies (any other user, named by its OrganId) may publish and read their own inbox, once the
    operator has created it with :meth:`provision` (or an admin's ``declare_inbox``)."""

    _named: ClassVar[dict[str, MemoryBroker]] = {}

    @classmethod
    def named(cls, name: str) -> MemoryBroker:
        """The process-wide broker called ``name``, created (with the defaults) on first use."""
        return cls._named.setdefault(name, cls())

    def __init__(self, *, delivery_limit: int = DELIVERY_LIMIT, admins: Iterable[str] = ("guest", "admin"),
                 queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS, max_message_bytes: int = DEFAULT_LIMITS.max_message_bytes) -> None:
        self.delivery_limit = delivery_limit
        self.admins = frozenset(admins)
        self.queue_limits = queue_limits
        self.max_message_bytes = max_message_bytes
        self._queues: dict[str, _Queue] = {}  # routing key -> inbox
        self._dead = _Queue(DEAD_LETTER_QUEUE, queue_limits.dead_messages, queue_limits.dead_bytes)
        # Dead letters waiting for room in the dead-letter queue (RabbitMQ's at-least-once strategy).
        self._dead_waiting: deque[_Message] = deque()
        self._hosts: dict[str, frozenset[str]] = {}  # host user -> the OrganIds whose inboxes it may read

    def connect(self, user: str = "guest") -> MemoryTransport:
        """A transport authenticated as ``user`` (an OrganId for an agency)."""
        return MemoryTransport(self, user)

    def provision(self, organ_ids: Iterable[str]) -> None:
        """Create the agencies' inboxes (idempotent): the operator's step, as ``vbdt broker provision``."""
        for organ_id in organ_ids:
            limits = self.queue_limits
            self._queues.setdefault(routing_key(organ_id), _Queue(inbox_queue(organ_id), limits.inbox_messages, limits.inbox_bytes))

    def provision_host(self, user: str, organ_ids: Iterable[str]) -> None:
        """Let ``user`` read the inboxes of ``organ_ids`` and nothing else: a host of many agencies
        (:mod:`vbdt.exchange.host`), as :func:`vbdt.exchange.broker.provision_host` on RabbitMQ. It
        may not publish (its agencies publish as themselves) and replaces the host's earlier list."""
        if user in self.admins:
            raise UsageError(f"{user!r} is an operator of this broker, not a host")
        self._hosts[user] = frozenset(str(o) for o in organ_ids)

    def queue_depth(self, organ_id: str) -> int:
        """Messages waiting (not delivered) in an agency's inbox."""
        queue = self._queues.get(routing_key(organ_id))
        return len(queue.ready) if queue else 0

    def _dead_letter(self, queue: _Queue, message: _Message, reason: str) -> None:
        """The broker's own dead-lettering: the reason and queue come from the broker, not the message."""
        headers = {k: v for k, v in message.headers.items() if k not in BROKER_HEADERS and not k.startswith(BROKER_DEATH)}
        dead = _Message(message.body, message.message_id, message.routing_key,
                        {**headers, HEADER_REASON: reason, HEADER_QUEUE: queue.name}, message.user_id)
        if self._dead_waiting or not self._dead.offer(dead):
            self._dead_waiting.append(dead)

    def _give_back(self, queue: _Queue, message: _Message) -> None:
        """An unsuccessful delivery: requeue it, or dead-letter it past the delivery limit (as quorum queues do)."""
        if message.deliveries > self.delivery_limit:
            self._dead_letter(queue, message, f"delivery limit: delivered {message.deliveries} times without being acknowledged")
        else:
            queue.put(message, front=True)

    def _route(self, user: str, message: Outgoing) -> Exception | None:
        """Publish one message to ``vbdt.exchange`` as ``user``: ``None`` when confirmed, else the refusal."""
        refused = refusal(message, self.max_message_bytes)
        if refused is not None:
            return refused
        if user in self._hosts:  # as the host's RabbitMQ user: write "^$"
            return PublishRefused(f"access refused: host user {user!r} may not publish (its agencies publish as themselves)")
        if message.routing_key == DEAD_LETTER_KEY:
            return self._report(user, message)
        queue = self._queues.get(message.routing_key)
        if queue is None:
            return Unroutable(f"no inbox is bound for routing key {message.routing_key!r}", recipients=[message.routing_key])
        if not queue.offer(_Message(message.body, message.message_id, message.routing_key, dict(message.headers), user)):
            return QueueFull(f"the inbox {queue.name} is full (its length or byte limit): the broker refused the message")
        return None

    def _report(self, user: str, message: Outgoing) -> Exception | None:
        """An agency's dead letter with its reason, attributed to it by the broker."""
        headers = {k: v for k, v in message.headers.items()
                   if k not in (HEADER_QUEUE, HEADER_REPORTED_BY) and not k.startswith(BROKER_DEATH)}
        headers[HEADER_REPORTED_BY] = user
        if user not in self.admins:
            headers[HEADER_QUEUE] = inbox_queue(user)
        if not self._dead.offer(_Message(message.body, message.message_id, message.routing_key, headers, user)):
            return QueueFull(f"the dead-letter queue {DEAD_LETTER_QUEUE} is full: the broker refused the message")
        return None

    def _drain_dead(self) -> list[tuple[bytes, dict[str, str]]]:
        out = []
        while self._dead.ready or self._dead_waiting:
            while self._dead.ready:
                message = self._dead.take()
                out.append((message.body, message.headers))
            while self._dead_waiting and not self._dead.full():
                self._dead.put(self._dead_waiting.popleft())
        return out

    def _peek_dead(self, limit: int) -> list[DeadLetter]:
        return [_dead_letter_view(m) for m in list(self._dead.ready)[:limit]]

    def _replay(self, message_id: str) -> DeadLetter:
        found = next((m for m in self._dead.ready if m.message_id == message_id), None)
        if found is None:
            raise UsageError(f"no dead letter with message id {message_id[:64]!r}")
        letter = _dead_letter_view(found)
        if not letter.replayable or letter.organ_id is None:
            raise UsageError(f"dead letter {message_id[:64]!r} is an agency's report, not replayable: the sender must send again")
        queue = self._queues.get(routing_key(letter.organ_id))
        if queue is None:
            raise Unroutable(f"no inbox for {letter.organ_id}: the dead letter stays", recipients=[routing_key(letter.organ_id)])
        # Back as its publisher sent it; the reason rides along as the broker's own record (as x-death).
        headers = {k: v for k, v in found.headers.items() if k not in BROKER_HEADERS}
        headers[BROKER_DEATH[0]] = found.headers.get(HEADER_REASON, "")
        if not queue.offer(_Message(found.body, found.message_id, found.routing_key, headers, found.user_id)):
            raise QueueFull(f"the inbox {queue.name} is full: the dead letter stays")
        self._dead.ready.remove(found)
        self._dead.size -= len(found.body)
        return letter

    def _purge_dead(self) -> int:
        count = len(self._dead.ready) + len(self._dead_waiting)
        self._dead.ready.clear()
        self._dead_waiting.clear()
        self._dead.size = 0
        return count

    def _allowed(self, user: str, organ_id: str) -> bool:
        return user in self.admins or user == organ_id or organ_id in self._hosts.get(user, ())


def _dead_letter_view(message: _Message) -> DeadLetter:
    headers = dict(message.headers)
    return DeadLetter(message.body, message.message_id, headers, organ_id_for_queue(headers.get(HEADER_QUEUE, "")))


class MemoryDelivery(Delivery):
    """A delivery from the embedded broker."""

    def __init__(self, transport: MemoryTransport, queue: _Queue, message: _Message) -> None:
        self._transport = transport
        self._queue = queue
        self._message = message
        self.body = message.body
        self.message_id = message.message_id
        self.routing_key = message.routing_key
        self.headers = {k: v for k, v in message.headers.items() if not k.startswith(BROKER_DEATH)}
        self.user_id = None if message.user_id in transport._broker.admins else message.user_id
        self.broker_user = message.user_id
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
            self._transport._broker._dead_letter(self._queue, self._message, "rejected by the consumer")

    async def dead_letter(self, reason: str) -> None:
        if self._settled:
            raise TransportError("delivery already acknowledged or rejected")
        # As on RabbitMQ: the agency reports the message with its reason (a confirmed publish),
        # then acks it; a full dead-letter queue refuses the report and the message stays.
        await self._transport.publish(dead_letter_report(self, reason))
        self._settle()

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
        if self.user in self._broker.admins:
            self._broker.provision([organ_id])
        elif not (self.user == organ_id and routing_key(organ_id) in self._broker._queues):
            # An agency configures nothing: its own provisioned inbox is there, anything else is refused.
            raise AccessRefused(f"access refused: user {self.user!r} may not declare the inbox of {organ_id}")

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        self._check_open()
        outcomes = [PublishOutcome(m, self._broker._route(self.user, m)) for m in messages]
        await asyncio.sleep(0)  # a publish is a suspension point, as on a real broker
        return outcomes

    async def missing_inboxes(self, organ_ids: Sequence[str]) -> set[str]:
        self._check_open()
        return {o for o in organ_ids if routing_key(o) not in self._broker._queues}

    async def consume(self, organ_id: str, *, prefetch: int = 32, on_waiting: OnWaiting | None = None) -> AsyncIterator[Delivery]:
        self._check_open()
        if not self._broker._allowed(self.user, organ_id):
            raise AccessRefused(f"access refused: user {self.user!r} may not read the inbox of {organ_id}")
        queue = self._broker._queues.get(routing_key(organ_id))
        if queue is None:
            raise TransportError(f"no inbox for {organ_id}: provision it first")
        token = object()
        if queue.consumers:
            report_waiting(log, organ_id, len(queue.consumers), on_waiting)
        queue.consumers.append(token)
        mine: set[MemoryDelivery] = set()
        try:
            while not self._closed:
                mine = {d for d in mine if not d._settled}
                if queue.consumers[0] is not token or not queue.ready or len(mine) >= prefetch:
                    queue.changed.clear()
                    # Woken by a publish, an ack (a free prefetch slot) or close(). No wait_for with
                    # a timeout here: on Python 3.11 it can swallow a cancellation (gh-86296).
                    await queue.changed.wait()
                    continue
                message = queue.take()
                message.deliveries += 1
                delivery = MemoryDelivery(self, queue, message)
                mine.add(delivery)
                self._unacked.add(delivery)
                yield delivery
        finally:
            queue.consumers.remove(token)
            queue.changed.set()  # the next consumer, if any, becomes the active one
            for delivery in mine:
                delivery._return()
                self._unacked.discard(delivery)

    async def inbox_status(self, organ_id: str) -> InboxStatus:
        self._check_open()
        if not self._broker._allowed(self.user, organ_id):
            raise AccessRefused(f"access refused: user {self.user!r} may not look at the inbox of {organ_id}")
        queue = self._broker._queues.get(routing_key(organ_id))
        if queue is None:
            raise TransportError(f"no inbox for {organ_id}: provision it first")
        return InboxStatus(organ_id, len(queue.ready), len(queue.consumers))

    def _check_operator(self) -> None:
        self._check_open()
        if self.user not in self._broker.admins:
            raise AccessRefused(f"access refused: user {self.user!r} may not read the dead-letter queue")

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        self._check_operator()
        return self._broker._drain_dead()

    async def peek_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        self._check_operator()
        return self._broker._peek_dead(limit)

    async def replay_dead_letter(self, message_id: str) -> DeadLetter:
        self._check_operator()
        return self._broker._replay(message_id)

    async def purge_dead_letters(self) -> int:
        self._check_operator()
        return self._broker._purge_dead()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for queue in self._broker._queues.values():
            queue.changed.set()  # wake this transport's consumers so they see it closed
        for delivery in list(self._unacked):
            delivery._return()
        self._unacked.clear()

