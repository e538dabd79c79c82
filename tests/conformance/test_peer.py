"""The test peer (vbdt.testing.peer) over the embedded exchange and RabbitMQ: every behaviour, as a sender sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import vbdt
from conftest import AMQP_HOST, AMQP_PORT, require_broker
from vbdt.exchange.routing import HEADER_REASON, routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.testing import Behaviour, Peer, TestExchange, assert_status, make_document

H14, C1, C2 = "000.00.00.H14", "000.00.01.H14", "000.00.02.H14"


@pytest.fixture(params=["memory", "amqp"])
def exchange(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestExchange]:
    if request.param == "memory":
        yield TestExchange.embedded(tmp_path)
        return
    require_broker()
    made = TestExchange.rabbitmq(tmp_path, f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def embedded(tmp_path: Path) -> TestExchange:
    return TestExchange.embedded(tmp_path)


async def test_accept_answers_the_whole_flow(exchange: TestExchange) -> None:
    async with exchange.peer(C1, "accept") as peer, exchange.client(H14) as me:
        result = await me.send(make_document(exchange.directory, H14, [C1]))
        delivered = await assert_status(me, result.document_id, C1, "06", within=20)
        assert delivered.state is vbdt.exchange.receipts.DeliveryState.COMPLETED  # type: ignore[attr-defined]
        # receipts may overtake each other (a stale 04 after the 06 is kept, not applied): all came
        assert {e.event for e in me.history(result.document_id, C1) if e.event.isdigit()} == {"01", "03", "04", "05", "06"}
        assert [(a.action, a.sender, a.document_id) for a in peer.actions] == [
            (code, H14, result.document_id) for code in ("03", "04", "05", "06")]


async def test_garbage_is_dead_lettered_by_the_sender(exchange: TestExchange) -> None:
    operator = await exchange.operator()
    try:
        async with exchange.peer(C1, "garbage") as peer, exchange.client(H14) as me:
            first = await me.send(make_document(exchange.directory, H14, [C1]))
            second = await me.send(make_document(exchange.directory, H14, [C1]))
            actions = await peer.wait_for(2, within=20)
            assert sorted(a.action for a in actions) == ["garbage:binary", "garbage:foreign-xml"]
            dead: list[tuple[bytes, dict[str, str]]] = []
            for _ in range(300):
                dead += await operator.dead_letters()
                if len(dead) >= 2:
                    break
                await asyncio.sleep(0.05)
            reasons = sorted(h[HEADER_REASON] for _, h in dead)
            assert len(reasons) == 2 and all(r.startswith("parse: not a readable edXML package") for r in reasons), reasons
            assert "root element is 'html'" in reasons[0] and "the body is not XML" in reasons[1]
            for sent in (first, second):  # the 01 came; nothing the garbage said moved the ledger
                assert (await assert_status(me, sent.document_id, C1, "01")).state.value == "arrived"
    finally:
        await operator.close()


async def test_reject_sends_02_with_the_reason(embedded: TestExchange) -> None:
    async with embedded.peer(C1, "reject") as peer, embedded.client(H14) as me:
        result = await me.send(make_document(embedded.directory, H14, [C1]))
        delivered = await assert_status(me, result.document_id, C1, "02", within=10)
        assert delivered.state.value == "rejected" and delivered.reason and "thẩm quyền" in delivered.reason
        assert [(a.action, a.note) for a in peer.actions] == [("02", peer.reason)]


async def test_slow_waits_before_each_answer(embedded: TestExchange) -> None:
    async with embedded.peer(C1, "slow", delay=0.3) as peer, embedded.client(H14) as me:
        result = await me.send(make_document(embedded.directory, H14, [C1]))
        await assert_status(me, result.document_id, C1, "01", within=5)
        with pytest.raises(AssertionError, match="did not reach status 06"):
            await assert_status(me, result.document_id, C1, "06", within=0.2)
        await assert_status(me, result.document_id, C1, "06", within=10)
        gaps = [(b.at - a.at).total_seconds() for a, b in zip(peer.actions, peer.actions[1:], strict=False)]
        assert len(gaps) == 3 and min(gaps) >= 0.25, gaps


async def test_silent_confirms_arrival_and_nothing_more(embedded: TestExchange) -> None:
    async with embedded.peer(C1, "silent") as peer, embedded.client(H14) as me:
        result = await me.send(make_document(embedded.directory, H14, [C1]))
        await assert_status(me, result.document_id, C1, "01", within=5)
        with pytest.raises(AssertionError, match="it is arrived"):
            await assert_status(me, result.document_id, C1, "03", within=0.5)
        assert peer.actions == []


async def test_recall_refused_and_agreed(embedded: TestExchange) -> None:
    async with embedded.peer(C1, "recall-refuse") as refusing, embedded.peer(C2, "slow", delay=2.0) as agreeing, \
            embedded.client(H14) as me:
        result = await me.send(make_document(embedded.directory, H14, [C1, C2]))
        await assert_status(me, result.document_id, C1, "05", within=10)
        await assert_status(me, result.document_id, C2, "01", within=10)
        assert sorted(await me.recall(result.document_id, "Văn bản ban hành nhầm")) == [C1, C2]
        await assert_status(me, result.document_id, C1, "16", within=10)
        await assert_status(me, result.document_id, C2, "15", within=10)
        assert {d.recipient: d.state.value for d in me.status(result.document_id)} == {C1: "processing", C2: "recalled"}
        assert [a.action for a in refusing.actions] == ["03", "04", "05", "16"]
        assert "15" in [a.action for a in agreeing.actions]


async def test_refused_packages_are_reported(embedded: TestExchange) -> None:
    """What the peer's client refuses (here: an unsigned package) is an action, with the reason."""
    async with embedded.peer(C1, "accept") as peer:
        transport = await embedded.connect(H14)
        try:
            unsigned = vbdt.write(make_document(embedded.directory, H14, [C1]))
            await transport.publish(Outgoing(routing_key(C1), unsigned, "unsigned-1"))
        finally:
            await transport.close()
        (action,) = await peer.wait_for(1, within=10)
        assert action.action == "refused" and action.kind == "refused" and action.note and "signature" in action.note.lower()


async def test_run_stops_after_count_and_on_idle(embedded: TestExchange) -> None:
    client = await embedded.open(C1)
    try:
        peer = Peer(client, "accept")
        assert await peer.run(idle=0.3) == 0  # nothing came
        async with embedded.client(H14) as me:
            for _ in range(2):
                await me.send(make_document(embedded.directory, H14, [C1]))
            assert await peer.run(count=2, idle=10) == 2
        assert len(peer.actions) == 8
    finally:
        await client.close()


async def test_hostile_settings_are_usage_errors(embedded: TestExchange) -> None:
    client = await embedded.open(C1)
    try:
        for bad in [{"behaviour": "chaos"}, {"behaviour": "", "delay": 1}, {"delay": -1.0}, {"reason": "  "}]:
            with pytest.raises(vbdt.UsageError):
                Peer(client, **bad)  # type: ignore[arg-type]
        with pytest.raises(vbdt.UsageError, match="count"):
            await Peer(client).run(count=0)
    finally:
        await client.close()
    assert [b.value for b in Behaviour] == ["accept", "reject", "slow", "silent", "recall-refuse", "garbage"]
    with pytest.raises(vbdt.UsageError):
        embedded.url("000.00.00.X99")
