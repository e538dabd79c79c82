"""The transport interface: what the exchange layer needs from a message broker, and no more.

Two implementations share these semantics and one test suite: :class:`vbdt.exchange.memory.MemoryBroker`
(embedded, in-process) and :class:`vbdt.exchange.amqp.AmqpTransport` (RabbitMQ through aio-pika, the only
module that imports aio-pika). The agency client (:mod:`vbdt.exchange.client`) speaks only to this
interface, the way httpx's client speaks to a transport.

Semantics both keep:

- **publish** is confirmed: it returns only when the broker has the message durably, and raises
  :class:`~vbdt.errors.Unroutable` when no inbox is bound for the routing key (the mandatory flag),
  :class:`~vbdt.errors.QueueFull` when the inbox is at its length or byte limit (``reject-publish``;
  worth retrying later), :class:`~vbdt.errors.PublishRefused` when the broker will never take it
  (access refused; a message id or header over 255 bytes), :class:`~vbdt.errors.MessageTooLarge`
  over the maximum message size, and :class:`~vbdt.errors.TransportError` when the broker is
  unreachable or loses it. Many publishes may be in flight at once (``publish_many``).
- every message carries ``user_id``, the broker-authenticated publisher, given to the receiver as
  the agency's OrganId; a transport cannot claim another user's identity.
- every queue is bounded (:class:`QueueLimits`) and refuses, never drops, what exceeds its bound.
- a delivery is removed only by :meth:`Delivery.ack`; one not acked (consumer gone, ``nack``) is
  delivered again with ``redelivered`` set, up to the queue's delivery limit, after which it is
  dead-lettered with the reason.
- :meth:`Delivery.dead_letter` moves a message to the dead-letter queue with a reason header,
  then removes it from the inbox: the message is never lost.
- an inbox has a **single active consumer**: a second one (a leftover process, a second
  deployment) gets nothing until the first goes away, and is told it waits (``on_waiting``).
- the operator looks at dead letters without taking them (:meth:`Transport.peek_dead_letters`),
  sends one back to its inbox (:meth:`Transport.replay_dead_letter`) or drops them all
  (:meth:`Transport.purge_dead_letters`); :meth:`Transport.inbox_status` says who is offline.
- :meth:`Transport.close` is idempotent, may be called from any task, and ends every consumer
  cleanly (their iterators stop; nothing is left for the garbage collector to report).

:func:`vbdt.exchange.connect.connect` opens either from a URL (``memory://``, ``amqp://``, ``amqps://``).
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vbdt.errors import MessageTooLarge, PublishRefused

__all__ = ["DEFAULT_QUEUE_LIMITS", "DELIVERY_LIMIT", "SHORTSTR_MAX", "DeadLetter", "Delivery", "InboxStatus", "OnWaiting", "Outgoing",
           "PublishOutcome", "QueueLimits", "ReconnectPolicy", "Transport", "WrappedDelivery", "refusal",
           "report_waiting"]

DELIVERY_LIMIT = 5
"""How many times a message is redelivered before it is dead-lettered (a poison message)."""
SHORTSTR_MAX = 255
"""Longest AMQP short string in bytes: a message id, a header name; vbdt bounds header values the same."""
GiB = 1024**3


@dataclass(frozen=True)
class QueueLimits:
    """Bounds of the broker's queues; a full queue refuses new messages (``reject-publish``).

    One agency cannot fill the broker's disk: its messages to an inbox stop at that inbox's
    bounds, and the sender sees :class:`~vbdt.errors.QueueFull`."""

    inbox_messages: int = 100_000
    """Most messages waiting in one agency's inbox."""
    inbox_bytes: int = 4 * GiB
    """Most bytes (message bodies) waiting in one agency's inbox."""
    dead_messages: int = 100_000
    """Most messages kept in the dead-letter queue; past it, dead-lettering waits (nothing is dropped)."""
    dead_bytes: int = 4 * GiB
    """Most bytes kept in the dead-letter queue."""


DEFAULT_QUEUE_LIMITS = QueueLimits()


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a transport gets its connection back after losing it: capped exponential backoff with jitter.

    ``attempts=None`` retries for as long as the transport is open (``vbdt listen``); a wrong
    password or a missing vhost is never retried. Closing the transport ends the wait at once."""

    attempts: int | None = 12
    """Connection attempts before giving up with the last error (``None``: forever)."""
    initial: float = 0.25
    """Wait before the second attempt, in seconds; it doubles at each attempt after that."""
    cap: float = 30.0
    """Longest wait between two attempts, in seconds."""
    jitter: float = 0.5
    """Fraction of each wait drawn at random, so that many agencies do not reconnect in step."""

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        base = min(self.cap, self.initial * 2.0 ** min(attempt - 1, 62))
        return base * (1 - self.jitter * random.random())  # spreads the load; not a secret

    def gives_up_after(self, attempt: int) -> bool:
        """Whether ``attempt`` failed attempts exhaust the policy."""
        return self.attempts is not None and attempt >= self.attempts


DEFAULT_RECONNECT = ReconnectPolicy()


@dataclass(frozen=True)
class InboxStatus:
    """What the broker says of one agency's inbox: is anyone reading it, and how much waits."""

    organ_id: str
    ready: int
    """Messages waiting to be delivered (not those delivered and not yet acknowledged)."""
    consumers: int
    """Consumers attached; 0 means offline. RabbitMQ counts only the active consumer of a
    single-active-consumer inbox, not those waiting behind it; the embedded broker counts all."""

    @property
    def online(self) -> bool:
        """Some consumer is attached."""
        return self.consumers > 0


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, as :meth:`Transport.peek_dead_letters` shows it."""

    body: bytes
    message_id: str
    headers: Mapping[str, str]
    """With ``x-vbdt-reason`` and ``x-vbdt-queue`` (and ``x-vbdt-reported-by`` for an agency's report)."""
    organ_id: str | None
    """The agency whose inbox the message was dead-lettered from, when known."""

    @property
    def replayable(self) -> bool:
        """Dead-lettered by the broker (delivery limit, rejected), so it can go back to its inbox as
        its publisher sent it. An agency's report is its verdict on the message, not replayable."""
        return self.organ_id is not None and "x-vbdt-reported-by" not in self.headers


OnWaiting = Callable[[int], None]
"""Called with the number of other consumers when a consumer starts behind an active one."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish to one inbox."""

    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishOutcome:
    """What the broker said about one message of :meth:`Transport.publish_many`."""

    message: Outgoing
    error: Exception | None = None
    """``None`` when confirmed; else an :class:`~vbdt.errors.Unroutable`, :class:`~vbdt.errors.PublishRefused`
    (never worth retrying) or :class:`~vbdt.errors.TransportError` (:class:`~vbdt.errors.QueueFull` included)."""

    @property
    def ok(self) -> bool:
        """Confirmed by the broker."""
        return self.error is None


def refusal(message: Outgoing, max_message_bytes: int) -> PublishRefused | None:
    """Why the broker could never take ``message`` (checked before publishing), or ``None``."""
    if len(message.body) > max_message_bytes:
        return MessageTooLarge(f"message {message.message_id[:64]!r} has {len(message.body)} bytes, "
                               f"over the maximum message size of {max_message_bytes}")
    fields = [("message id", message.message_id), *(("header name", k) for k in message.headers),
              *((f"header {k[:64]!r}", v) for k, v in message.headers.items())]
    for what, text in fields:
        if not isinstance(text, str) or len(text.encode("utf-8", "surrogatepass")) > SHORTSTR_MAX:
            return PublishRefused(f"{what} of message {message.message_id[:64]!r} is not text of at most {SHORTSTR_MAX} bytes")
    return None


def report_waiting(log: logging.Logger, organ_id: str, others: int, on_waiting: OnWaiting | None) -> None:
    """Say that a new consumer waits behind ``others`` attached to the inbox of ``organ_id``."""
    log.warning("waiting: another consumer is active on the inbox of %s (%d attached); "
                "this one gets nothing until it goes", organ_id, others)
    if on_waiting is not None:
        on_waiting(others)


class Delivery(abc.ABC):
    """A message taken from an inbox, to be acked, requeued or dead-lettered exactly once."""

    body: bytes
    message_id: str
    routing_key: str
    headers: Mapping[str, str]
    user_id: str | None
    """The publisher as the broker authenticated it: its OrganId, or ``None`` for a broker user that
    is no agency of this exchange (an operator, a foreign name); :attr:`broker_user` keeps the name."""
    broker_user: str | None
    """The broker user name that published (``<vhost>/<OrganId>`` on RabbitMQ), for logs."""
    redelivered: bool

    @abc.abstractmethod
    async def ack(self) -> None:
        """The message is durably handled: the broker may forget it."""

    @abc.abstractmethod
    async def nack(self, *, requeue: bool = True) -> None:
        """Give the message back (to be delivered again) or drop it to the dead-letter exchange."""

    @abc.abstractmethod
    async def dead_letter(self, reason: str) -> None:
        """Keep the message in the dead-letter queue with ``reason``, then remove it from the inbox."""


class WrappedDelivery(Delivery):
    """A delivery that forwards to another: subclasses change what one of the settlements does
    (logging it, publishing a report as someone else) and keep the rest."""

    def __init__(self, inner: Delivery) -> None:
        self._inner = inner
        self.body = inner.body
        self.message_id = inner.message_id
        self.routing_key = inner.routing_key
        self.headers = inner.headers
        self.user_id = inner.user_id
        self.broker_user = inner.broker_user
        self.redelivered = inner.redelivered

    async def ack(self) -> None:
        await self._inner.ack()

    async def nack(self, *, requeue: bool = True) -> None:
        await self._inner.nack(requeue=requeue)

    async def dead_letter(self, reason: str) -> None:
        await self._inner.dead_letter(reason)


class Transport(abc.ABC):
    """A connection to a broker, as one user (one agency, or an operator)."""

    user: str
    """The broker user this transport is authenticated as."""

    @abc.abstractmethod
    async def declare_inbox(self, organ_id: str) -> None:
        """Make sure the agency's inbox exists and is bound (idempotent)."""

    @abc.abstractmethod
    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        """Publish concurrently, all confirms in flight at once; one outcome per message, in order."""

    async def publish(self, message: Outgoing) -> None:
        """Publish one message and wait for its confirm; raise its error."""
        (outcome,) = await self.publish_many([message])
        if outcome.error is not None:
            raise outcome.error

    async def publish_fanout(self, message: Outgoing, routing_keys: Sequence[str]) -> list[PublishOutcome]:
        """Publish one message to the inbox of every routing key in as few broker operations as the
        broker allows; one outcome per routing key, in order (its ``message`` carries that key).

        This default publishes a copy per key (``publish_many``); RabbitMQ routes one publish to
        thousands of inboxes (:meth:`vbdt.exchange.amqp.AmqpTransport.publish_fanout`). A broker
        that routes one publish to many queues cannot say which of them lacked an inbox: call
        :meth:`missing_inboxes` first."""
        return await self.publish_many([dataclasses.replace(message, routing_key=key) for key in routing_keys])

    async def missing_inboxes(self, organ_ids: Sequence[str]) -> set[str]:
        """The agencies among ``organ_ids`` with no inbox on the broker (a publish to them is unroutable).

        This default knows of none (each publish then says so itself)."""
        return set()

    @abc.abstractmethod
    def consume(self, organ_id: str, *, prefetch: int = 32, on_waiting: OnWaiting | None = None) -> AsyncIterator[Delivery]:
        """Deliveries from an agency's inbox, until :meth:`close` (or the iterator is closed).

        The inbox has a single active consumer: when another is already attached, this one waits
        (gets nothing) until it goes; a WARNING is logged and ``on_waiting`` is called with the
        number of other consumers. After :meth:`close` the iterator just ends; a lost connection
        ends it with a :class:`~vbdt.errors.TransportError` (consume again to reconnect)."""

    @abc.abstractmethod
    async def inbox_status(self, organ_id: str) -> InboxStatus:
        """Messages waiting in an agency's inbox and consumers attached to it (an agency: its own only)."""

    @abc.abstractmethod
    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        """Drain the dead-letter queue: body and headers (with the reason) of each message."""

    @abc.abstractmethod
    async def peek_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The first ``limit`` dead letters, left in the queue (the operator's).

        At least once: they are taken and given back, so they are invisible to others meanwhile;
        if this process dies in between, the broker gives them back itself."""

    @abc.abstractmethod
    async def replay_dead_letter(self, message_id: str) -> DeadLetter:
        """Send the first dead letter with ``message_id`` back to its inbox, body, headers and
        publisher unchanged, and remove it from the dead-letter queue (the operator's).

        :class:`~vbdt.errors.UsageError` when there is none or it is an agency's report
        (:attr:`DeadLetter.replayable`); the dead-letter queue is left as it was."""

    @abc.abstractmethod
    async def purge_dead_letters(self) -> int:
        """Delete every dead letter (the operator's); return how many there were."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection (idempotent, from any task); unacked deliveries go back to their queues."""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
