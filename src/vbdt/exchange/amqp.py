"""RabbitMQ through aio-pika: the one module that imports aio-pika, and maps its errors to vbdt's.

Topology (declared idempotently by :func:`AmqpTransport.declare_topology`, by the operator's
``vbdt broker provision`` or by any transport connected with ``declare=True``):

- ``vbdt.exchange``: durable topic exchange; each inbox is bound by its hierarchical routing key
  (:mod:`vbdt.routing`).
- ``vbdt.inbox.<OrganId>``: one durable quorum queue per agency, dead-lettering to ``vbdt.dlx``
  after ``x-delivery-limit`` redeliveries (a poison message cannot loop forever).
- ``vbdt.dlx`` (fanout) → ``vbdt.dead`` (quorum): what could not be processed, with the reason in
  the ``x-vbdt-reason`` header (or RabbitMQ's own ``x-death`` for the delivery limit).

Publishing uses publisher confirms and the mandatory flag on a reconnecting connection;
messages are persistent and carry ``user_id``, which RabbitMQ checks against the authenticated
user, so the receiver learns who really published. Consumers use manual acks and a prefetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika import exceptions as amqp_errors
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage
from yarl import URL

from vbdt.errors import TransportError, Unroutable
from vbdt.routing import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EXCHANGE, HEADER_REASON, inbox_queue, routing_key
from vbdt.transport import DELIVERY_LIMIT, Delivery, Outgoing, PublishOutcome, Transport

__all__ = ["DEFAULT_URL", "AmqpTransport", "inbox_arguments"]

log = logging.getLogger("vbdt.amqp")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
_IN_FLIGHT = 512  # confirms outstanding at once per transport
_CONFIRM_TIMEOUT = 30.0
_RECONNECT_WAIT = 60.0
_SETTLE_TIMEOUT = 10.0


def inbox_arguments(delivery_limit: int = DELIVERY_LIMIT) -> dict[str, Any]:
    """Queue arguments of an agency inbox."""
    return {"x-queue-type": "quorum", "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-delivery-limit": delivery_limit}


def _explain(exc: BaseException, doing: str) -> TransportError:
    """One vbdt error, with a reason a person can act on, for anything aio-pika or the socket raises."""
    if isinstance(exc, amqp_errors.ProbableAuthenticationError | aiormq.exceptions.ProbableAuthenticationError):
        return TransportError(f"{doing}: access refused (wrong user or password)")
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return TransportError(f"{doing}: access refused by the broker ({exc})")
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
        return TransportError(f"{doing}: refused by the broker ({exc})")
    if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
        return TransportError(f"{doing}: not found on the broker ({exc})")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return TransportError(f"{doing}: the broker did not answer in time")
    if isinstance(exc, ConnectionError | OSError | amqp_errors.AMQPConnectionError):
        return TransportError(f"{doing}: cannot reach the broker ({exc or type(exc).__name__})")
    return TransportError(f"{doing}: {type(exc).__name__}: {exc}")


_MAPPED = (amqp_errors.AMQPError, aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError, asyncio.TimeoutError,
           RuntimeError)


class AmqpDelivery(Delivery):
    """A message from a RabbitMQ inbox."""

    def __init__(self, transport: AmqpTransport, message: AbstractIncomingMessage) -> None:
        self._transport = transport
        self._message = message
        self.body = message.body
        self.message_id = message.message_id or ""
        self.routing_key = message.routing_key or ""
        self.headers = {str(k): _text(v) for k, v in (message.headers or {}).items() if not k.startswith("x-death")}
        self.user_id = message.user_id
        self.redelivered = bool(message.redelivered)

    async def _settle(self, what: str, requeue: bool | None = None) -> None:
        # A delivery tag belongs to the channel it came on: once that channel is gone (the broker
        # restarted), the broker gives the message again and this settle must fail fast, not hang.
        try:
            closed = self._message.channel.is_closed
        except _MAPPED:  # aio-pika raises instead of answering when the channel is gone
            closed = True
        if closed:
            raise TransportError(f"{what}: the channel of this delivery is closed; the broker will deliver it again")
        try:
            async with asyncio.timeout(_SETTLE_TIMEOUT):
                if requeue is None:
                    await self._message.ack()
                else:
                    await self._message.nack(requeue=requeue)
        except _MAPPED as exc:
            raise _explain(exc, what) from None

    async def ack(self) -> None:
        await self._settle("ack")

    async def nack(self, *, requeue: bool = True) -> None:
        await self._settle("nack", requeue)

    async def dead_letter(self, reason: str) -> None:
        # The broker's own dead-lettering keeps no reason of ours: publish a copy with the reason
        # (confirmed), then ack the original. A crash in between leaves a duplicate, never a loss.
        headers = {**self.headers, HEADER_REASON: reason[:1000], "x-vbdt-queue": self.routing_key}
        await self._transport._publish_to(DEAD_LETTER_EXCHANGE, Outgoing(self.routing_key, self.body, self.message_id, headers))
        await self.ack()


async def _open(url: str, user: str, timeout: float) -> tuple[AbstractConnection, AbstractChannel]:
    connection = await aio_pika.connect(url, timeout=timeout, client_properties={"connection_name": f"vbdt {user}"})
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    return connection, channel


def _redacted(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class AmqpTransport(Transport):
    """A connection to RabbitMQ as one user, reconnecting by itself. Build it with :meth:`connect`.

    Reconnection is ours, not aio-pika's robust connection: after a broker restart its restored
    channels sometimes never became ready again and its queue iterators did not resume (RabbitMQ
    3.10, aio-pika 10). Here every operation takes the live channel, or opens a new connection
    and channel first (backing off up to a minute), and a consumer ends with a TransportError
    when its channel goes so that its caller opens a new one.
    """

    def __init__(self, url: str, connection: AbstractConnection, channel: AbstractChannel, user: str, *, declare: bool) -> None:
        self._url = url
        self._connection = connection
        self._channel = channel
        self.user = user
        self._declare = declare
        self._exchanges: dict[str, AbstractExchange] = {}
        self._in_flight = asyncio.Semaphore(_IN_FLIGHT)
        self._reconnecting = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(cls, url: str = DEFAULT_URL, *, declare: bool = True, timeout: float = 10.0) -> AmqpTransport:
        """Connect now (failing at once with the reason). ``declare=False`` for agency users that
        may not configure the broker: the topology must then exist (``vbdt broker provision``)."""
        user = URL(url).user or "guest"
        try:
            connection, channel = await _open(url, user, timeout)
            transport = cls(url, connection, channel, user, declare=declare)
            if declare:
                await transport.declare_topology()
            return transport
        except _MAPPED as exc:
            raise _explain(exc, f"connecting to {_redacted(url)}") from None

    async def _live(self) -> AbstractChannel:
        """The publishing channel, reconnecting first if the connection or channel was lost."""
        if self._closed:
            raise TransportError("the connection is closed")
        if not self._connection.is_closed and not self._channel.is_closed:
            return self._channel
        async with self._reconnecting:
            if self._connection.is_closed or self._channel.is_closed:
                await self._reconnect()
            return self._channel

    async def _reconnect(self) -> None:
        deadline = asyncio.get_running_loop().time() + _RECONNECT_WAIT
        attempt = 0
        while True:
            try:
                # A fresh connection every time: aio-pika may still call a dead one open.
                with contextlib.suppress(*_MAPPED):
                    await self._connection.close()
                self._connection, self._channel = await _open(self._url, self.user, 10.0)
                self._exchanges.clear()
                return
            except (amqp_errors.ProbableAuthenticationError, aiormq.exceptions.ProbableAuthenticationError) as exc:
                raise _explain(exc, f"reconnecting to {_redacted(self._url)}") from None
            except _MAPPED as exc:
                attempt += 1
                log.warning("reconnecting to %s (attempt %d): %s", _redacted(self._url), attempt, _explain(exc, "connect"))
                if asyncio.get_running_loop().time() > deadline:
                    raise _explain(exc, f"reconnecting to {_redacted(self._url)}") from None
                await asyncio.sleep(min(0.25 * 2**attempt, 5.0))

    async def declare_topology(self) -> None:
        """The exchanges and the dead-letter queue (idempotent)."""
        try:
            channel = await self._live()
            await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
            dead = await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
            await dead.bind(dlx, routing_key="")
        except _MAPPED as exc:
            raise _explain(exc, "declaring the vbdt topology") from None

    async def _exchange(self, name: str) -> AbstractExchange:
        channel = await self._live()
        if name not in self._exchanges:
            self._exchanges[name] = await channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def declare_inbox(self, organ_id: str) -> None:
        name = inbox_queue(organ_id)
        try:
            if self._declare:
                queue = await (await self._live()).declare_queue(name, durable=True, arguments=inbox_arguments())
                await queue.bind(await self._exchange(EXCHANGE), routing_key=routing_key(organ_id))
            # else: an agency user may configure nothing; ``vbdt broker provision`` made the inbox
        except _MAPPED as exc:
            raise _explain(exc, f"declaring the inbox of {organ_id}") from None

    async def _publish_to(self, exchange_name: str, message: Outgoing) -> None:
        amqp_message = aio_pika.Message(
            message.body,
            message_id=message.message_id,
            user_id=self.user,
            headers=dict(message.headers),
            content_type="application/xml",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        async with self._in_flight:
            try:
                exchange = await self._exchange(exchange_name)
                await exchange.publish(amqp_message, message.routing_key, mandatory=True, timeout=_CONFIRM_TIMEOUT)
            except amqp_errors.DeliveryError as exc:
                frame = getattr(exc, "frame", None)
                if isinstance(frame, aiormq.spec.Basic.Return):
                    raise Unroutable(f"no inbox is bound for routing key {message.routing_key!r} ({frame.reply_text})",
                                     recipients=[message.routing_key]) from None
                raise TransportError(f"the broker refused the message for {message.routing_key!r} (nack)") from None
            except _MAPPED as exc:
                raise _explain(exc, f"publishing to {message.routing_key!r}") from None

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        async def one(message: Outgoing) -> PublishOutcome:
            try:
                await self._publish_to(EXCHANGE, message)
            except (Unroutable, TransportError) as exc:
                return PublishOutcome(message, exc)
            return PublishOutcome(message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def consume(self, organ_id: str, *, prefetch: int = 32) -> AsyncIterator[Delivery]:
        try:
            await self._live()  # reconnects if needed
            channel = await self._connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.get_queue(inbox_queue(organ_id), ensure=False)  # no declare: needs no configure right
            iterator = queue.iterator()
            await iterator.consume()
        except _MAPPED as exc:
            raise _explain(exc, f"consuming the inbox of {organ_id}") from None
        # When the channel goes, end this consumer with a TransportError; the caller opens a new one.
        lost = asyncio.Event()
        connection = self._connection

        def on_lost(*_: object) -> None:
            lost.set()

        channel.close_callbacks.add(on_lost)
        connection.close_callbacks.add(on_lost)
        try:
            while True:
                message = await _next_or_lost(iterator, lost, organ_id)
                if message is None:
                    return
                yield AmqpDelivery(self, message)
        finally:
            connection.close_callbacks.discard(on_lost)
            try:
                await iterator.close()
                await channel.close()
            except _MAPPED:
                pass  # the connection is going away; unacked messages return to the queue anyway

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        out: list[tuple[bytes, dict[str, str]]] = []
        try:
            queue = await (await self._live()).get_queue(DEAD_LETTER_QUEUE, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                headers = {str(k): _text(v) for k, v in (message.headers or {}).items() if k != "x-death"}
                if HEADER_REASON not in headers:
                    headers[HEADER_REASON] = _death_reason(message.headers or {})
                out.append((message.body, headers))
                await message.ack()
        except _MAPPED as exc:
            raise _explain(exc, "reading the dead-letter queue") from None
        return out

    async def close(self) -> None:
        self._closed = True
        try:
            await self._connection.close()
        except _MAPPED:
            pass  # closing a dead connection is not an error


async def _next_or_lost(iterator: Any, lost: asyncio.Event, organ_id: str) -> AbstractIncomingMessage | None:
    """The next message, ``None`` at the end, or a TransportError when the channel was lost first."""
    if lost.is_set():
        raise TransportError(f"consuming the inbox of {organ_id}: the connection to the broker was lost")
    following = asyncio.ensure_future(iterator.__anext__())
    watcher = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({following, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if following not in done:
        following.cancel()
        raise TransportError(f"consuming the inbox of {organ_id}: the connection to the broker was lost")
    try:
        return following.result()  # type: ignore[no-any-return]
    except StopAsyncIteration:
        return None
    except _MAPPED as exc:
        raise _explain(exc, f"consuming the inbox of {organ_id}") from None


def _death_reason(headers: Mapping[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], Mapping):
        reason = _text(deaths[0].get("reason", "?"))
        return "delivery limit exceeded" if reason == "delivery_limit" else f"dead-lettered by the broker ({reason})"
    return "dead-lettered by the broker"
