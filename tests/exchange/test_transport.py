"""The transport contract, run against both implementations (embedded and RabbitMQ)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from conftest import AMQP_HOST, AMQP_PORT, drain_dead_letters, require_broker
from vbdt.errors import TransportError, Unroutable
from vbdt.routing import HEADER_REASON, routing_key
from vbdt.transport import DELIVERY_LIMIT, Delivery, Outgoing, Transport

A, B = "000.00.00.H14", "000.00.01.H14"


@pytest.fixture(params=["memory", "amqp"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Transport, Transport, Transport]]:
    """Transports for agency A, agency B and the operator, on one broker."""
    if request.param == "memory":
        from vbdt.memory import MemoryBroker

        broker = MemoryBroker()
        a, b, admin = broker.connect(A), broker.connect(B), broker.connect("admin")
        for t, oid in ((a, A), (b, B)):
            await t.declare_inbox(oid)
        vhost = None
    else:
        require_broker()
        from vbdt.amqp import AmqpTransport
        from vbdt.broker import provision

        vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
        urls = provision([A, B], vhost=vhost, host=AMQP_HOST, port=AMQP_PORT)
        a = await AmqpTransport.connect(urls[A], declare=False)
        b = await AmqpTransport.connect(urls[B], declare=False)
        admin = await AmqpTransport.connect(f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}")
    yield a, b, admin
    for t in (a, b, admin):
        await t.close()
    if vhost:
        import subprocess

        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, check=False)


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
    it2 = b.consume(B).__aiter__()
    again = await _next(it2)
    assert again.message_id == "m-3" and again.redelivered
    await again.ack()
    await it2.aclose()


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
