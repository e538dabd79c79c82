"""The transport contract, run against both implementations (embedded and RabbitMQ)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import admin_url, drain_dead_letters, fresh_vhost
from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import MessageTooLarge, PublishRefused, QueueFull, TransportError, Unroutable
from vbdt.exchange.routing import (
    DEAD_LETTER_KEY,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_REPORTED_BY,
    inbox_queue,
    routing_key,
)
from vbdt.exchange.transport import DELIVERY_LIMIT, Delivery, Outgoing, QueueLimits, Transport

A, B = "000.00.00.H14", "000.00.01.H14"


@contextlib.asynccontextmanager
async def open_pair(kind: str, **options: Any) -> AsyncIterator[tuple[Transport, Transport, Transport]]:
    """Transports for agency A, agency B and the operator on one broker; ``options`` configure the broker."""
    if kind == "memory":
        from vbdt.exchange.memory import MemoryBroker

        broker = MemoryBroker(**options)
        broker.provision([A, B])
        yield broker.connect(A), broker.connect(B), broker.connect("admin")
        return
    from vbdt.exchange.amqp import AmqpTransport

    max_message_bytes = options.pop("max_message_bytes", DEFAULT_LIMITS.max_message_bytes)
    with fresh_vhost([A, B], **options) as done:
        a = await AmqpTransport.connect(done.urls[A], declare=False, max_message_bytes=max_message_bytes)
        b = await AmqpTransport.connect(done.urls[B], declare=False)
        admin = await AmqpTransport.connect(admin_url(done.vhost), declare=False)  # provisioned, with these limits
        try:
            yield a, b, admin
        finally:
            for t in (a, b, admin):
                await t.close()


@pytest.fixture(params=["memory", "amqp"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def pair(kind: str) -> AsyncIterator[tuple[Transport, Transport, Transport]]:
    async with open_pair(kind) as transports:
        yield transports


async def _next(it: AsyncIterator[Delivery], timeout: float = 10) -> Delivery:
    return await asyncio.wait_for(it.__anext__(), timeout)


async def test_publish_consume_ack_and_user_id(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    await a.publish(Outgoing(routing_key(B), b"<hello/>", "m-1", {"x-vbdt-kind": "document"}))
    it = b.consume(B).__aiter__()
    d = await _next(it)
    assert (d.body, d.message_id, d.user_id, d.redelivered) == (b"<hello/>", "m-1", A, False)
    assert d.headers["x-vbdt-kind"] == "document" and d.routing_key == routing_key(B)
    await d.ack()
    with pytest.raises(asyncio.TimeoutError):
        await _next(it, timeout=0.5)


async def test_unroutable_is_an_error_never_a_silent_loss(pair) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = pair
    with pytest.raises(Unroutable, match="H14.09"):
        await a.publish(Outgoing(routing_key("000.00.09.H14"), b"x", "m-2"))
    outcomes = await a.publish_many([Outgoing(routing_key(B), b"x", "ok"), Outgoing(routing_key("000.00.09.H14"), b"x", "lost")])
    assert [o.ok for o in outcomes] == [True, False] and isinstance(outcomes[1].error, Unroutable)


async def test_many_confirms_in_flight(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    outcomes = await a.publish_many([Outgoing(routing_key(B), f"<m{i}/>".encode(), f"m{i}") for i in range(300)])
    assert all(o.ok for o in outcomes)
    it = b.consume(B, prefetch=50).__aiter__()
    got = set()
    for _ in range(300):
        d = await _next(it)
        got.add(d.message_id)
        await d.ack()
    assert got == {f"m{i}" for i in range(300)}


async def test_unacked_message_is_redelivered_after_the_consumer_goes(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    await a.publish(Outgoing(routing_key(B), b"<again/>", "m-3"))
    it = b.consume(B).__aiter__()
    first = await _next(it)
    assert not first.redelivered
    await it.aclose()  # the consumer dies without acking
    with pytest.raises(TransportError):  # its tag died with its channel: an error, promptly, never a hang
        await asyncio.wait_for(first.ack(), 10)
    it2 = b.consume(B).__aiter__()
    again = await _next(it2)
    assert again.message_id == "m-3" and again.redelivered
    await again.ack()
    await it2.aclose()


async def test_settling_leaves_nothing_behind_on_the_channel() -> None:
    """A consumer's channel lives for days: each ack once hung an observer on it (aiormq's
    ``channel.closing`` makes a new future per read, attached until the channel closes), about
    1 KB per message. The ack now waits on the consumer's own "lost" event and drops its watcher."""
    async with open_pair("amqp") as (a, b, _):
        assert all(o.ok for o in await a.publish_many([Outgoing(routing_key(B), b"<m/>", f"k-{i}") for i in range(200)]))
        it = b.consume(B, prefetch=50).__aiter__()
        first = await _next(it)
        raw = first._message.channel  # type: ignore[attr-defined]
        attached = len(raw._closing._callbacks)  # aiormq's and asyncio's internals: what the observers hung on
        await first.ack()
        for _ in range(199):
            await (await _next(it)).ack()
        assert len(raw._closing._callbacks) <= attached + 2
        await it.aclose()


async def test_poison_message_is_dead_lettered_after_the_delivery_limit(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = pair
    await a.publish(Outgoing(routing_key(B), b"<poison/>", "m-4"))
    it = b.consume(B).__aiter__()
    for _ in range(DELIVERY_LIMIT + 1):
        d = await _next(it)
        await d.nack(requeue=True)
    dead = await drain_dead_letters(admin, 1)
    assert [body for body, _ in dead] == [b"<poison/>"]
    assert "delivery limit" in dead[0][1][HEADER_REASON]


async def test_dead_letter_keeps_the_reason(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = pair
    await a.publish(Outgoing(routing_key(B), b"<bad/>", "m-5"))
    it = b.consume(B).__aiter__()
    d = await _next(it)
    await d.dead_letter("verify: signature does not verify")
    dead = await drain_dead_letters(admin, 1)
    assert dead == [(b"<bad/>", {**dead[0][1], HEADER_REASON: "verify: signature does not verify"})]
    with pytest.raises(asyncio.TimeoutError):
        await _next(it, timeout=0.5)  # and it is gone from the inbox


async def test_an_agency_cannot_read_another_inbox_nor_the_dead_letters(pair) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = pair
    with pytest.raises(TransportError, match="(?i)access refused|refused"):
        async for _ in a.consume(B):
            pass
    with pytest.raises(TransportError, match="(?i)refused"):
        await a.dead_letters()


async def _next_good(sender: Transport, receiver: Transport, organ_id: str, message_id: str) -> None:
    """The victim keeps working: a good message published now is delivered and acked."""
    await sender.publish(Outgoing(routing_key(organ_id), b"<good/>", message_id))
    it = receiver.consume(organ_id).__aiter__()
    try:
        while (d := await _next(it)).message_id != message_id:
            await d.ack()
        await d.ack()
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_user_id_is_the_organ_id_and_an_operator_is_no_agency(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = pair
    await a.publish(Outgoing(routing_key(B), b"<a/>", "from-a"))
    await admin.publish(Outgoing(routing_key(B), b"<op/>", "from-operator"))
    it = b.consume(B).__aiter__()
    first, second = await _next(it), await _next(it)
    assert (first.user_id, second.user_id) == (A, None)  # the operator's user maps to no OrganId
    assert first.broker_user is not None and first.broker_user.endswith(A) and second.broker_user is not None
    await first.ack()
    await second.ack()


@pytest.mark.parametrize("bad", ["id", "header name", "header value", "header value utf-8"])
async def test_over_long_message_id_or_header_is_refused_never_a_type_error(pair, bad: str) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    message = {
        "id": Outgoing(routing_key(B), b"x", "m" * 256),
        "header name": Outgoing(routing_key(B), b"x", "m-h", {"x" * 256: "v"}),
        "header value": Outgoing(routing_key(B), b"x", "m-v", {"x-vbdt-kind": "v" * 256}),
        "header value utf-8": Outgoing(routing_key(B), b"x", "m-u", {"x-vbdt-kind": "ệ" * 86}),  # 258 bytes, 86 characters
    }[bad]
    outcomes = await a.publish_many([message, Outgoing(routing_key(B), b"<ok/>", "ok-alongside")])
    assert isinstance(outcomes[0].error, PublishRefused) and not isinstance(outcomes[0].error, MessageTooLarge)
    assert "255 bytes" in str(outcomes[0].error) and outcomes[1].ok
    await _next_good(a, b, B, "after-refusal")


async def test_over_the_maximum_size_is_message_too_large(kind: str) -> None:
    async with open_pair(kind, max_message_bytes=1000) as (a, b, _):
        with pytest.raises(MessageTooLarge, match="1001 bytes"):
            await a.publish(Outgoing(routing_key(B), b"x" * 1001, "too-big"))
        await a.publish(Outgoing(routing_key(B), b"x" * 1000, "just-fits"))
        await _next_good(a, b, B, "after-too-big")


async def test_a_full_inbox_refuses_and_the_sender_sees_queue_full(kind: str) -> None:
    async with open_pair(kind, queue_limits=QueueLimits(inbox_messages=3)) as (a, b, _):
        # one at a time: a quorum queue refuses once it is over the bound (the last accepted takes it over)
        errors = [(await a.publish_many([Outgoing(routing_key(B), b"<m/>", f"fill-{i}")]))[0].error for i in range(6)]
        assert errors[:4] == [None] * 4 and all(isinstance(e, QueueFull) for e in errors[4:])
        it = b.consume(B).__aiter__()
        for _ in range(4):  # the receiver drains its inbox; the sender's retry then goes through
            await (await _next(it)).ack()
        await a.publish(Outgoing(routing_key(B), b"<m/>", "room-again"))
        assert (await _next(it)).message_id == "room-again"


async def test_an_inbox_bounded_in_bytes_refuses_more(kind: str) -> None:
    async with open_pair(kind, queue_limits=QueueLimits(inbox_bytes=10_000)) as (a, b, _):
        outcomes = [await a.publish_many([Outgoing(routing_key(B), b"x" * 4000, f"b-{i}")]) for i in range(5)]
        errors = [o[0].error for o in outcomes]
        assert errors[:2] == [None, None] and isinstance(errors[-1], QueueFull)
        await _next_good_after_drain(a, b)


async def _next_good_after_drain(a: Transport, b: Transport) -> None:
    it = b.consume(B).__aiter__()
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            await (await _next(it, timeout=1)).ack()
    await it.aclose()  # type: ignore[attr-defined]
    await _next_good(a, b, B, "after-drain")


async def test_a_forged_dead_letter_is_attributed_to_its_publisher(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = pair
    forged = {HEADER_REASON: "delivery limit exceeded", HEADER_QUEUE: inbox_queue(B), HEADER_REPORTED_BY: B,
              "x-death": "forged", "x-vbdt-kind": "document"}
    await a.publish(Outgoing(DEAD_LETTER_KEY, b"<forged/>", "forged-1", forged))
    (dead,) = await drain_dead_letters(admin, 1)
    # The reason is A's own word; where it came from and who said it are the broker's.
    assert dead[1][HEADER_REPORTED_BY] == A and dead[1][HEADER_QUEUE] == inbox_queue(A) and "x-death" not in dead[1]
    await _next_good(a, b, B, "after-forgery")


async def test_a_forged_reason_in_a_message_does_not_survive_broker_dead_lettering(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = pair
    await a.publish(Outgoing(routing_key(B), b"<lie/>", "lie-1", {HEADER_REASON: "signature: all fine", HEADER_REPORTED_BY: B}))
    it = b.consume(B).__aiter__()
    await (await _next(it)).nack(requeue=False)
    (dead,) = await drain_dead_letters(admin, 1)
    assert "rejected" in dead[1][HEADER_REASON] and dead[1][HEADER_QUEUE] == inbox_queue(B)
    assert HEADER_REPORTED_BY not in dead[1]
    await it.aclose()
    await _next_good(a, b, B, "after-lie")


async def test_a_full_dead_letter_queue_delays_dead_letters_never_drops_them(kind: str) -> None:
    async with open_pair(kind, queue_limits=QueueLimits(dead_messages=1)) as (a, b, admin):
        await a.publish_many([Outgoing(routing_key(B), f"<p{i}/>".encode(), f"p-{i}") for i in range(3)])
        it = b.consume(B).__aiter__()
        for _ in range(3):
            await (await _next(it)).nack(requeue=False)  # the broker dead-letters; vbdt.dead holds one
        with pytest.raises(asyncio.TimeoutError):
            await _next(it, timeout=0.5)  # nothing comes back to the consumer
        # the broker retries dead-lettering into the full queue on a timer that backs off: on a
        # loaded machine the third one took longer than the default 15 s
        dead = await drain_dead_letters(admin, 3, timeout=90)
        it = b.consume(B).__aiter__()  # the timed-out iterator is closed
        assert sorted(body for body, _ in dead) == [b"<p0/>", b"<p1/>", b"<p2/>"]
        # and an agency's own report into the full queue is refused, the message kept in the inbox
        await a.publish_many([Outgoing(routing_key(B), f"<r{i}/>".encode(), f"r-{i}") for i in range(3)])
        first, second, third = await _next(it), await _next(it), await _next(it)
        await first.dead_letter("verify: bad")
        await second.dead_letter("verify: bad")  # the queue is now over its bound of one
        with pytest.raises(QueueFull):
            await third.dead_letter("verify: bad too")
        await it.aclose()  # type: ignore[attr-defined]
        assert len(await drain_dead_letters(admin, 2)) == 2
        it = b.consume(B).__aiter__()
        again = await _next(it)
        assert again.message_id == "r-2" and again.redelivered
        await again.dead_letter("verify: bad too")
        assert [h[HEADER_REASON] for _, h in await drain_dead_letters(admin, 1)] == ["verify: bad too"]


async def test_an_agency_cannot_declare_nor_read_another_inbox(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    with pytest.raises(TransportError, match="(?i)refused"):
        async for _ in a.consume(B):
            pass
    await _next_good(b, a, A, "a-still-reads-its-own")
