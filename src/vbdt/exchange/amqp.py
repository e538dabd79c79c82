"""RabbitMQ through aio-pika: the one module that imports aio-pika, and maps its errors to vbdt's.

Topology (declared idempotently by :func:`AmqpTransport.declare_topology`, by the operator's
``vbdt broker provision`` or by any transport connected with ``declare=True``):

- ``vbdt.exchange``: durable topic exchange; each inbox is bound by its hierarchical routing key
  (:mod:`vbdt.exchange.routing`).
- ``vbdt.inbox.<OrganId>``: one durable quorum queue per agency, bounded (``x-max-length``,
  ``x-max-length-bytes``, ``x-overflow reject-publish``), dead-lettering to ``vbdt.dlx`` after
  ``x-delivery-limit`` redeliveries (a poison message cannot loop forever), ``at-least-once``.
- ``vbdt.dlx`` (fanout, written only by the broker) → ``vbdt.dead`` (quorum, bounded): what could
  not be processed. An agency reports a message it refuses, with the reason in ``x-vbdt-reason``,
  through ``vbdt.exchange`` with the key ``vbdt.dead``; :meth:`AmqpTransport.dead_letters` tells the
  two apart by the exchange the broker names, and attributes each report to its publisher.

Publishing uses publisher confirms and the mandatory flag on a reconnecting connection;
messages are persistent and carry ``user_id``, which RabbitMQ checks against the authenticated
user, so the receiver learns who really published (``<vhost>/<OrganId>`` maps back to the OrganId).
The broker's refusals are mapped by kind: a nack (the inbox is full) is :class:`~vbdt.errors.QueueFull`,
access refused is :class:`~vbdt.errors.PublishRefused`, over the broker's maximum message size is
:class:`~vbdt.errors.MessageTooLarge`; after the broker closes the channel for one, a new channel is
opened. Consumers use manual acks and a prefetch.

Connecting maps the broker's answers apart: nothing at the address (or a failed TLS handshake) is
:class:`~vbdt.errors.BrokerUnreachable`, a wrong user or password :class:`~vbdt.errors.BrokerAuthError`,
a vhost that does not exist or that the user may not use :class:`~vbdt.errors.BrokerVhostMissing`.
A lost connection is opened again under a :class:`~vbdt.exchange.transport.ReconnectPolicy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika import exceptions as amqp_errors
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage
from aiormq.abc import ChannelFrame
from yarl import URL

from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import (
    AccessRefused,
    BrokerAuthError,
    BrokerUnreachable,
    BrokerVhostMissing,
    MessageTooLarge,
    PublishRefused,
    QueueFull,
    TransportError,
    Unroutable,
    UsageError,
)
from vbdt.exchange.routing import (
    BROKER_DEATH,
    BROKER_HEADERS,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_KEY,
    DEAD_LETTER_QUEUE,
    EXCHANGE,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_REPORTED_BY,
    dead_letter_report,
    dead_queue_arguments,
    inbox_arguments,
    inbox_queue,
    organ_id_for_queue,
    organ_id_for_user,
    routing_key,
)
from vbdt.exchange.transport import (
    DEFAULT_QUEUE_LIMITS,
    DEFAULT_RECONNECT,
    DeadLetter,
    Delivery,
    InboxStatus,
    OnWaiting,
    Outgoing,
    PublishOutcome,
    QueueLimits,
    ReconnectPolicy,
    Transport,
    refusal,
    report_waiting,
)

__all__ = ["DEFAULT_URL", "AmqpDelivery", "AmqpTransport"]

log = logging.getLogger("vbdt.exchange.amqp")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
_IN_FLIGHT = 512  # confirms outstanding at once per transport
_CONFIRM_TIMEOUT = 30.0
_REPLAY_SCAN = 10_000  # dead letters looked through for the one to replay
_SETTLE_TIMEOUT = 10.0  # waiting for the broker to say why it closed a channel
_SETTLE_LIMIT = 300.0  # an ack's frame not on the socket after this: the channel is as good as gone
_FANOUT_CONFIRM_TIMEOUT = 300.0  # one publish to thousands of quorum inboxes is confirmed when all have it
_BCC_BYTES = 60_000  # routing keys in one BCC header: well inside a content-header frame (frame_max 128 KiB)
_PROBES = 4  # channels looking for inboxes at once
_PROBE_WINDOW = 256  # passive declares sent on a channel before one round trip checks them
_WRITE_ROOM = 2  # frames a prober leaves in the connection's write queue before it sends another
_NO_QUEUE = re.compile(r"no queue '([^']*)'")  # RabbitMQ's NOT_FOUND reply text for a passive declare


async def _closed_on_missing(raw: aiormq.abc.AbstractChannel, exc: BaseException, chunk: list[str]) -> str:
    """The OrganId of ``chunk`` whose inbox the broker named when it closed the channel (NOT_FOUND);
    the reason the channel closed is raised when it is another one."""
    closing = raw.closing
    if not closing.done():
        await asyncio.wait({closing}, timeout=_SETTLE_TIMEOUT)
    reason = closing.exception() if closing.done() and not closing.cancelled() else None
    match = _NO_QUEUE.search(str(reason)) if isinstance(reason, aiormq.exceptions.ChannelNotFoundEntity) else None
    gone = {inbox_queue(o): o for o in chunk}.get(match.group(1)) if match else None
    if gone is None:
        raise reason if isinstance(reason, Exception) else exc
    return gone


def _bcc_chunks(keys: list[str]) -> list[list[str]]:
    """The keys in groups whose BCC header fits one frame (each key costs its bytes and 5 of framing)."""
    chunks: list[list[str]] = []
    size = _BCC_BYTES
    for key in keys:
        cost = len(key.encode()) + 5
        if size + cost > _BCC_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += cost
    return chunks


def _explain(exc: BaseException, doing: str) -> TransportError:
    """One vbdt error, with a reason a person can act on, for anything aio-pika or the socket raises."""
    if isinstance(exc, amqp_errors.ProbableAuthenticationError | aiormq.exceptions.ProbableAuthenticationError):
        return BrokerAuthError(f"{doing}: access refused (wrong user or password)")
    if isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(exc):
        # The broker took the login and closed at connection.open: NOT_ALLOWED, which RabbitMQ
        # answers for a vhost that does not exist and for one the user has no permission on
        # (aiormq keeps neither the code nor the text).
        return BrokerVhostMissing(f"{doing}: the broker refused the vhost: it does not exist, or this user has no access to it")
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return AccessRefused(f"{doing}: access refused by the broker ({exc})")
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
        return TransportError(f"{doing}: refused by the broker ({exc})")
    if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
        return TransportError(f"{doing}: not found on the broker ({exc})")
    if isinstance(exc, ssl.SSLError):
        return BrokerUnreachable(f"{doing}: TLS failed ({exc.reason or exc})")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return TransportError(f"{doing}: the broker did not answer in time")
    if isinstance(exc, ConnectionError | OSError | amqp_errors.AMQPConnectionError):
        return BrokerUnreachable(f"{doing}: cannot reach the broker ({exc or type(exc).__name__})")
    return TransportError(f"{doing}: {type(exc).__name__}: {exc}")


_MAPPED = (amqp_errors.AMQPError, aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError, asyncio.TimeoutError,
           RuntimeError)
_OVER_MAX_SIZE = re.compile(r"larger than configured max size (\d+)")


def _publish_error(exc: BaseException, message: Outgoing, transport: AmqpTransport) -> Exception:
    """What a failed publish means: refused for good, worth retrying, or the broker out of reach."""
    where = f"publishing {message.message_id[:64]!r} to {message.routing_key!r}"
    if isinstance(exc, amqp_errors.DeliveryError):
        frame = getattr(exc, "frame", None)
        if isinstance(frame, aiormq.spec.Basic.Return):
            return Unroutable(f"no inbox is bound for routing key {message.routing_key!r} ({frame.reply_text})",
                              recipients=[message.routing_key])
        # With x-overflow reject-publish a full queue nacks the publish: the one refusal RabbitMQ
        # sends without closing the channel, and one that can succeed later.
        return QueueFull(f"{where}: the broker refused it (nack): the inbox is at its length or byte limit")
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return PublishRefused(f"{where}: access refused by the broker ({exc})")
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed) and (match := _OVER_MAX_SIZE.search(str(exc))):
        # The channel is closed for the one oversize message; the others in flight on it are
        # collateral and worth retrying on the next channel.
        broker_max = int(match.group(1))
        transport._max_message_bytes = min(transport._max_message_bytes, broker_max)
        if len(message.body) > broker_max:
            return MessageTooLarge(f"{where}: {len(message.body)} bytes, over the broker's maximum message size of {broker_max}")
        return TransportError(f"{where}: the channel was closed for another, oversize message")
    return _explain(exc, where)


class AmqpDelivery(Delivery):
    """A message from a RabbitMQ inbox."""

    def __init__(self, transport: AmqpTransport, message: AbstractIncomingMessage, lost: asyncio.Event) -> None:
        self._transport = transport
        self._message = message
        self._lost = lost  # the consumer's: set when its channel or connection goes
        self.body = message.body
        self.message_id = message.message_id or ""
        self.routing_key = message.routing_key or ""
        self.headers = {str(k): _text(v) for k, v in (message.headers or {}).items() if not k.startswith(BROKER_DEATH)}
        self.broker_user = message.user_id
        self.user_id = organ_id_for_user(message.user_id, transport.vhost)
        if message.user_id is not None and self.user_id is None:
            log.warning("message %r published by broker user %r, which is no agency of vhost %r",
                        self.message_id[:64], message.user_id, transport.vhost)
        self.redelivered = bool(message.redelivered)

    async def _settle(self, what: str, requeue: bool | None = None) -> None:
        # A delivery tag belongs to the channel it came on: once that channel is gone (the broker
        # restarted), the broker gives the message again and this settle must fail fast, not hang.
        try:
            closed = self._message.channel.is_closed
        except _MAPPED:  # aio-pika raises instead of answering when the channel is gone
            closed = True
        if closed or self._lost.is_set():
            raise TransportError(f"{what}: the channel of this delivery is closed; the broker will deliver it again")
        # An ack has no answer: it waits only for its frame to reach the socket, which a busy broker
        # (flow control) or a busy process can delay for long. A short timeout freed prefetch slots
        # for messages the broker still counted unacked; wait while the channel lives, within a bound.
        settling = asyncio.ensure_future(self._message.ack() if requeue is None else self._message.nack(requeue=requeue))
        watcher = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({settling, watcher}, timeout=_SETTLE_LIMIT, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            _abandon(settling)
            raise
        finally:
            watcher.cancel()
        if settling not in done:
            _abandon(settling)
            gone = "closed" if self._lost.is_set() else f"did not take it in {_SETTLE_LIMIT:g} s"
            raise TransportError(f"{what}: the channel of this delivery {gone}; the broker will deliver it again")
        try:
            settling.result()
        except _MAPPED as exc:
            raise _explain(exc, what) from None

    async def ack(self) -> None:
        await self._settle("ack")

    async def nack(self, *, requeue: bool = True) -> None:
        await self._settle("nack", requeue)

    async def dead_letter(self, reason: str) -> None:
        # The broker's own dead-lettering keeps no reason of ours: publish a copy with the reason
        # (confirmed), then ack the original. A crash in between leaves a duplicate, never a loss;
        # a full dead-letter queue refuses the copy (QueueFull) and the original stays.
        await self._transport._publish(dead_letter_report(self, reason))
        await self.ack()


async def _open(url: str, user: str, timeout: float, tls: ssl.SSLContext | None) -> tuple[AbstractConnection, AbstractChannel]:
    try:
        async with asyncio.timeout(timeout):
            connection = await aio_pika.connect(url, timeout=timeout, ssl_context=tls,
                                                client_properties={"connection_name": f"vbdt {user}"})
    except TimeoutError:
        raise ConnectionError(f"no answer in {timeout:g} s") from None  # unreachable, not a slow operation
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    except BaseException:
        with contextlib.suppress(*_MAPPED):
            await connection.close()
        raise
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
    and channel first (under the :class:`~vbdt.exchange.transport.ReconnectPolicy`), and a
    consumer ends with a TransportError when its channel goes so that its caller opens a new one.
    """

    def __init__(self, url: str, connection: AbstractConnection, channel: AbstractChannel, user: str, *, declare: bool,
                 max_message_bytes: int = DEFAULT_LIMITS.max_message_bytes, queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS,
                 reconnect: ReconnectPolicy = DEFAULT_RECONNECT, tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        self._url = url
        self._connection = connection
        self._channel = channel
        self.user = user
        self.vhost = URL(url).path[1:] or "/"
        """The vhost; agency users on it are named ``<vhost>/<OrganId>``."""
        self._declare = declare
        self._max_message_bytes = max_message_bytes  # lowered to the broker's own maximum once it is learned
        self._queue_limits = queue_limits
        self._reconnect_policy = reconnect
        self._tls = tls
        self._timeout = timeout
        self._exchanges: dict[str, AbstractExchange] = {}
        self._in_flight = asyncio.Semaphore(_IN_FLIGHT)
        self._reconnecting = asyncio.Lock()
        self._closed = False
        self._stopping = asyncio.Event()  # set by close(): ends a reconnection's wait at once
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    async def connect(cls, url: str = DEFAULT_URL, *, declare: bool = True, timeout: float = 10.0,
                      max_message_bytes: int = DEFAULT_LIMITS.max_message_bytes,
                      queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS, reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
                      tls: ssl.SSLContext | None = None) -> AmqpTransport:
        """Connect now (failing at once with the reason). ``declare=False`` for agency users that
        may not configure the broker: the topology must then exist (``vbdt broker provision``).
        ``max_message_bytes`` refuses larger messages before sending; ``queue_limits`` bound the
        queues this transport declares; ``reconnect`` governs getting a lost connection back;
        ``tls`` is the context of an ``amqps://`` URL (see :func:`vbdt.exchange.connect.connect`)."""
        user = URL(url).user or "guest"
        try:
            connection, channel = await _open(url, user, timeout, tls)
        except _MAPPED as exc:
            raise _explain(exc, f"connecting to {_redacted(url)} as {user!r}") from None
        transport = cls(url, connection, channel, user, declare=declare, max_message_bytes=max_message_bytes,
                        queue_limits=queue_limits, reconnect=reconnect, tls=tls, timeout=timeout)
        if declare:
            try:
                await transport.declare_topology()
            except TransportError:
                await transport.close()  # not left open for the garbage collector
                raise
        return transport

    async def _live(self) -> AbstractChannel:
        """The publishing channel, reconnecting first if the connection or channel was lost."""
        self._check_open()
        if not self._connection.is_closed and not self._channel.is_closed:
            return self._channel
        async with self._reconnecting:
            self._check_open()
            if self._connection.is_closed:
                await self._reconnect()
            elif self._channel.is_closed:  # the broker closed it over one message: the connection and consumers live on
                try:
                    self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                    self._exchanges.clear()
                except _MAPPED:
                    await self._reconnect()
            return self._channel

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("the connection is closed")

    async def _reconnect(self) -> None:
        policy = self._reconnect_policy
        where = f"reconnecting to {_redacted(self._url)}"
        attempt = 0
        while True:
            try:
                # A fresh connection every time: aio-pika may still call a dead one open.
                with contextlib.suppress(*_MAPPED):
                    await self._connection.close()
                connection, channel = await _open(self._url, self.user, self._timeout, self._tls)
            except _MAPPED as exc:
                error = _explain(exc, where)
                if isinstance(error, AccessRefused):
                    raise error from None  # a wrong password or a missing vhost: retrying cannot help
                attempt += 1
                if policy.gives_up_after(attempt):
                    raise error from None
                delay = policy.delay(attempt)
                log.warning("%s (attempt %d, next in %.1f s): %s", where, attempt, delay, error)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                self._check_open()
                continue
            if self._closed:  # closed while this connection was being opened
                with contextlib.suppress(*_MAPPED):
                    await connection.close()
                self._check_open()
            self._connection, self._channel = connection, channel
            self._exchanges.clear()
            if attempt:
                log.warning("%s: connected again after %d failed attempts", where, attempt)
            return

    async def declare_topology(self) -> None:
        """The exchanges and the dead-letter queue (idempotent)."""
        try:
            channel = await self._live()
            exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
            dead = await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True, arguments=dead_queue_arguments(self._queue_limits))
            await dead.bind(dlx, routing_key="")
            await dead.bind(exchange, routing_key=DEAD_LETTER_KEY)
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
                queue = await (await self._live()).declare_queue(name, durable=True, arguments=inbox_arguments(self._queue_limits))
                await queue.bind(await self._exchange(EXCHANGE), routing_key=routing_key(organ_id))
            # else: an agency user may configure nothing; ``vbdt broker provision`` made the inbox
        except _MAPPED as exc:
            raise _explain(exc, f"declaring the inbox of {organ_id}") from None

    async def _publish(self, message: Outgoing) -> None:
        """Publish one message to ``vbdt.exchange`` and wait for its confirm; raise what it means."""
        refused = refusal(message, self._max_message_bytes)
        if refused is not None:
            raise refused  # aio-pika would fail with a TypeError, or the broker close the channel
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
                exchange = await self._exchange(EXCHANGE)
                await exchange.publish(amqp_message, message.routing_key, mandatory=True, timeout=_CONFIRM_TIMEOUT)
            except (*_MAPPED, amqp_errors.DeliveryError) as exc:
                raise _publish_error(exc, message, self) from None

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        async def one(message: Outgoing) -> PublishOutcome:
            try:
                await self._publish(message)
            except (Unroutable, TransportError, PublishRefused) as exc:
                return PublishOutcome(message, exc)
            return PublishOutcome(message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def publish_fanout(self, message: Outgoing, routing_keys: Sequence[str]) -> list[PublishOutcome]:
        """One publish per few thousand inboxes: the first key is the routing key, the others go in
        the ``BCC`` header, which RabbitMQ routes like the routing key and removes before delivery
        (receivers see a message of their own). The confirm of one publish covers all its inboxes;
        ``mandatory`` returns it only when no key had an inbox, so :meth:`missing_inboxes` comes first."""
        keys = list(routing_keys)
        refused = refusal(message, self._max_message_bytes)
        if refused is not None:
            return [PublishOutcome(dataclasses.replace(message, routing_key=k), refused) for k in keys]
        groups = await asyncio.gather(*(self._publish_bcc(message, chunk) for chunk in _bcc_chunks(keys)))
        return [outcome for group in groups for outcome in group]

    async def _publish_bcc(self, message: Outgoing, keys: list[str]) -> list[PublishOutcome]:
        first = dataclasses.replace(message, routing_key=keys[0])
        headers: dict[str, Any] = dict(message.headers)
        if len(keys) > 1:
            headers["BCC"] = keys[1:]
        amqp_message = aio_pika.Message(message.body, message_id=message.message_id, user_id=self.user, headers=headers,
                                        content_type="application/xml", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        error: Exception | None = None
        async with self._in_flight:
            try:
                exchange = await self._exchange(EXCHANGE)
                await exchange.publish(amqp_message, keys[0], mandatory=True, timeout=_FANOUT_CONFIRM_TIMEOUT)
            except (*_MAPPED, amqp_errors.DeliveryError) as exc:
                error = _publish_error(exc, first, self)
        if isinstance(error, Unroutable):  # returned: not one of these keys had an inbox
            return [PublishOutcome(dataclasses.replace(message, routing_key=k),
                                   Unroutable(f"no inbox is bound for routing key {k!r}", recipients=[k])) for k in keys]
        return [PublishOutcome(dataclasses.replace(message, routing_key=k), error) for k in keys]

    async def missing_inboxes(self, organ_ids: Sequence[str]) -> set[str]:
        """Passive declares pipelined over a few channels: each window of up to
        :data:`_PROBE_WINDOW` declares is sent without waiting (``nowait``: the broker answers
        nothing for a queue that exists), then one declare that waits, answered after every one
        before it. A missing queue closes its channel, naming the queue: it is missing, those before
        it exist, the rest go again on a new channel in a smaller window (a window doubles again
        after each one that passes, so many missing inboxes cost what one declare each did)."""
        todo = list(dict.fromkeys(str(o) for o in organ_ids))
        missing: set[str] = set()
        share = -(-len(todo) // _PROBES) if todo else 1

        async def probe(names: list[str]) -> None:
            start, window = 0, _PROBE_WINDOW
            channel: AbstractChannel | None = None
            try:
                while start < len(names):
                    if channel is None or channel.is_closed:
                        channel = await self._side_channel()
                    chunk = names[start:start + window]
                    raw = cast(aiormq.Channel, await channel.get_underlay_channel())  # aio-pika's is aiormq's
                    try:
                        if len(chunk) > 1:
                            # The window's declares as one write (marshalled together, as aiormq
                            # marshals a publish's frames). Room is left in the connection's write
                            # queue (aiormq's holds ten items): the close-ok answering a channel the
                            # broker closes is dropped when it is full, and the broker then refuses
                            # that channel number's next open, closing the connection.
                            while raw.write_queue.qsize() >= _WRITE_ROOM:
                                await asyncio.sleep(0.001)
                            declares = [aiormq.spec.Queue.Declare(queue=inbox_queue(o), passive=True, nowait=True)
                                        for o in chunk[:-1]]
                            await raw.write_queue.put(ChannelFrame.marshall(channel_number=raw.number, frames=declares))
                        await raw.queue_declare(inbox_queue(chunk[-1]), passive=True)
                    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
                        gone = await _closed_on_missing(raw, exc, chunk)
                        missing.add(gone)
                        start += chunk.index(gone) + 1
                        window = max(1, window // 2)
                        channel = None
                        continue
                    start += len(chunk)
                    window = min(_PROBE_WINDOW, window * 2)
            finally:
                if channel is not None and not channel.is_closed:
                    with contextlib.suppress(*_MAPPED):
                        await channel.close()

        outcomes = await asyncio.gather(*(probe(todo[i:i + share]) for i in range(0, len(todo), share)),
                                        return_exceptions=True)  # every prober ends before a failure is raised
        for outcome in outcomes:
            if isinstance(outcome, _MAPPED):
                raise _explain(outcome, "looking for the recipients' inboxes") from None
            if isinstance(outcome, BaseException):
                raise outcome
        return missing

    async def _side_channel(self) -> AbstractChannel:
        """A channel of its own, so that a refusal (a missing queue) closes it and nothing else."""
        await self._live()  # reconnects if needed
        return await self._connection.channel(publisher_confirms=False)

    async def consume(self, organ_id: str, *, prefetch: int = 32, on_waiting: OnWaiting | None = None) -> AsyncIterator[Delivery]:
        try:
            channel = await self._side_channel()
            await channel.set_qos(prefetch_count=prefetch)
            # A passive declare: needs no configure right, and counts who is already attached.
            queue = await channel.declare_queue(inbox_queue(organ_id), passive=True)
            iterator = queue.iterator()
            await iterator.consume()
        except _MAPPED as exc:
            raise _explain(exc, f"consuming the inbox of {organ_id}") from None
        others = queue.declaration_result.consumer_count or 0
        if others:
            report_waiting(log, organ_id, others, on_waiting)  # single active consumer: this one waits
        # When the channel goes, end this consumer with a TransportError; the caller opens a new one.
        lost = asyncio.Event()
        connection = self._connection

        def on_lost(*_: object) -> None:
            lost.set()

        channel.close_callbacks.add(on_lost)
        connection.close_callbacks.add(on_lost)
        try:
            while not self._closed:
                try:
                    message = await _next_or_lost(iterator, lost, organ_id)
                except TransportError:
                    if self._closed:
                        return  # closed by us: the iteration just ends
                    raise
                if message is None:
                    return
                yield AmqpDelivery(self, message, lost)
        finally:
            connection.close_callbacks.discard(on_lost)
            try:
                await iterator.close()
                await channel.close()
            except _MAPPED:
                pass  # the connection is going away; unacked messages return to the queue anyway

    async def inbox_status(self, organ_id: str) -> InboxStatus:
        own = organ_id_for_user(self.user, self.vhost)
        if own is not None and own != organ_id:
            # RabbitMQ would answer (a passive declare needs no permission); vbdt keeps to its own.
            raise AccessRefused(f"access refused: agency {own} may look only at its own inbox, not that of {organ_id}")
        try:
            channel = await self._side_channel()
            try:
                result = (await channel.declare_queue(inbox_queue(organ_id), passive=True)).declaration_result
            finally:
                with contextlib.suppress(*_MAPPED):
                    await channel.close()
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise TransportError(f"no inbox for {organ_id} on vhost {self.vhost!r}: provision it first") from None
        except _MAPPED as exc:
            raise _explain(exc, f"looking at the inbox of {organ_id}") from None
        return InboxStatus(organ_id, result.message_count or 0, result.consumer_count or 0)

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        out: list[tuple[bytes, dict[str, str]]] = []
        try:
            queue = await (await self._live()).get_queue(DEAD_LETTER_QUEUE, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                out.append((message.body, self._dead_letter_headers(message)))
                await message.ack()
        except _MAPPED as exc:
            raise _explain(exc, "reading the dead-letter queue") from None
        return out

    async def peek_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        try:
            channel = await self._side_channel()
            try:
                queue = await channel.get_queue(DEAD_LETTER_QUEUE, ensure=False)
                while len(out) < limit and (message := await queue.get(no_ack=False, fail=False)) is not None:
                    out.append(self._dead_letter(message))
            finally:
                with contextlib.suppress(*_MAPPED):
                    await channel.close()  # every message taken goes back, in its place
        except _MAPPED as exc:
            raise _explain(exc, "looking at the dead-letter queue") from None
        return out

    async def replay_dead_letter(self, message_id: str) -> DeadLetter:
        try:
            channel = await self._side_channel()
            try:
                return await self._replay(channel, message_id)
            finally:
                with contextlib.suppress(*_MAPPED):
                    await channel.close()  # the others taken on the way go back
        except _MAPPED as exc:
            raise _explain(exc, f"replaying the dead letter {message_id[:64]!r}") from None

    async def _replay(self, channel: AbstractChannel, message_id: str) -> DeadLetter:
        queue = await channel.get_queue(DEAD_LETTER_QUEUE, ensure=False)
        for _ in range(_REPLAY_SCAN):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            if message.message_id != message_id:
                continue
            letter = self._dead_letter(message)
            if not letter.replayable or letter.organ_id is None or message.routing_key != routing_key(letter.organ_id):
                raise UsageError(f"dead letter {message_id[:64]!r} is an agency's report, not replayable: the sender must send again")
            try:
                await (await self._side_channel()).declare_queue(inbox_queue(letter.organ_id), passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                raise Unroutable(f"no inbox for {letter.organ_id}: the dead letter stays",
                                 recipients=[routing_key(letter.organ_id)]) from None
            # Rejected from vbdt.dead, the broker dead-letters it to vbdt.exchange under its own
            # routing key: back to its inbox, with the publisher's user_id the broker vouched for.
            await message.reject(requeue=False)
            return letter
        raise UsageError(f"no dead letter with message id {message_id[:64]!r} (among the first {_REPLAY_SCAN})")

    async def purge_dead_letters(self) -> int:
        try:
            channel = await self._side_channel()
            try:
                ok = await (await channel.get_queue(DEAD_LETTER_QUEUE, ensure=False)).purge()
            finally:
                with contextlib.suppress(*_MAPPED):
                    await channel.close()
        except _MAPPED as exc:
            raise _explain(exc, "purging the dead-letter queue") from None
        return int(ok.message_count or 0)

    def _dead_letter(self, message: AbstractIncomingMessage) -> DeadLetter:
        headers = self._dead_letter_headers(message)
        return DeadLetter(message.body, message.message_id or "", headers, organ_id_for_queue(headers.get(HEADER_QUEUE, "")))

    def _dead_letter_headers(self, message: AbstractIncomingMessage) -> dict[str, str]:
        """A dead letter's headers, with reason, inbox and reporter taken from what the broker vouches for.

        Only the broker writes to ``vbdt.dlx``: what came through it was dead-lettered by the broker
        (``x-death`` says why and from where). Anything else is an agency's report through
        ``vbdt.exchange``: its reason is the reporter's word, attributed to the broker-checked user."""
        raw = message.headers or {}
        headers = {str(k): _text(v) for k, v in raw.items() if not str(k).startswith(BROKER_DEATH)}
        if message.exchange == DEAD_LETTER_EXCHANGE:
            deaths = raw.get("x-death")
            first = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping) else {}
            trusted = {HEADER_REASON: _death_reason(raw), HEADER_QUEUE: _text(first.get("queue", "?"))}
            return {**{k: v for k, v in headers.items() if k not in BROKER_HEADERS}, **trusted}
        reporter = organ_id_for_user(message.user_id, self.vhost)
        headers = {k: v for k, v in headers.items() if k not in (HEADER_QUEUE, HEADER_REPORTED_BY)}
        headers.setdefault(HEADER_REASON, "reported without a reason")
        headers[HEADER_REPORTED_BY] = reporter or message.user_id or "?"
        if reporter is not None:
            headers[HEADER_QUEUE] = inbox_queue(reporter)
        return headers

    async def close(self) -> None:
        if self._closing is None:
            self._closed = True
            self._stopping.set()
            self._closing = asyncio.ensure_future(self._close_connection())
        # Shielded: a caller cancelled while waiting does not leave the connection half closed.
        await asyncio.shield(self._closing)

    async def _close_connection(self) -> None:
        async with self._reconnecting:  # not while a reconnection swaps the connection
            with contextlib.suppress(*_MAPPED):
                await self._connection.close()  # closing a dead connection is not an error


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel a task given up on; an error it ends with anyway is read, not reported as unretrieved."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


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
        if not following.done():  # cancelled while waiting: an orphan would end in StopAsyncIteration, unseen
            following.cancel()
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
