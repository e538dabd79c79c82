"""The transport interface: what the exchange layer needs from a message broker, and no more.

Two implementations share these semantics and one test suite: :class:`vbdt.memory.MemoryBroker`
(embedded, in-process) and :class:`vbdt.amqp.AmqpTransport` (RabbitMQ through aio-pika, the only
module that imports aio-pika). The agency client (:mod:`vbdt.agency`) speaks only to this
interface, the way httpx's client speaks to a transport.

Semantics both keep:

- **publish** is confirmed: it returns only when the broker has the message durably, and raises
  :class:`~vbdt.errors.Unroutable` when no inbox is bound for the routing key (the mandatory flag)
  and :class:`~vbdt.errors.TransportError` when the broker refuses or loses it. Many publishes may
  be in flight at once (``publish_many``).
- every message carries ``user_id``, the broker-authenticated publisher; a transport cannot claim
  another user's identity.
- a delivery is removed only by :meth:`Delivery.ack`; one not acked (consumer gone, ``nack``) is
  delivered again with ``redelivered`` set, up to the queue's delivery limit, after which it is
  dead-lettered with the reason.
- :meth:`Delivery.dead_letter` moves a message to the dead-letter queue with a reason header,
  then removes it from the inbox: the message is never lost.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DELIVERY_LIMIT", "Delivery", "Outgoing", "PublishOutcome", "Transport"]

DELIVERY_LIMIT = 5
"""How many times a message is redelivered before it is dead-lettered (a poison message)."""


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
    """``None`` when confirmed; an :class:`~vbdt.errors.Unroutable` or :class:`~vbdt.errors.TransportError`."""

    @property
    def ok(self) -> bool:
        """Confirmed by the broker."""
        return self.error is None


class Delivery(abc.ABC):
    """A message taken from an inbox, to be acked, requeued or dead-lettered exactly once."""

    body: bytes
    message_id: str
    routing_key: str
    headers: Mapping[str, str]
    user_id: str | None
    """The publisher as the broker authenticated it."""
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

    @abc.abstractmethod
    def consume(self, organ_id: str, *, prefetch: int = 32) -> AsyncIterator[Delivery]:
        """Deliveries from an agency's inbox, until :meth:`close` (or the iterator is closed)."""

    @abc.abstractmethod
    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        """Drain the dead-letter queue: body and headers (with the reason) of each message."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection; unacked deliveries go back to their queues."""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
