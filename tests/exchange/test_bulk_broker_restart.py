"""A bulk run to a few hundred inboxes while its broker is stopped and started again (a RabbitMQ node of
the test's own, never the shared one): the run ends with a clear error or with copies left
pending, ``bulk_resume`` finishes it, no inbox misses its copy, a copy the broker confirmed before
the stop is never published again, and the journal and the ledger agree on every recipient."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from own_broker import CTL, OwnBroker

from conftest import UNDER_CI
from vbdt.cli.demo import PROVINCE, build_directive
from vbdt.directory.national import national_directory
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import VbdtError
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.broker import provision
from vbdt.exchange.bulk import BulkEvent, BulkItem, BulkSender
from vbdt.exchange.journal import BulkJournal, RecipientState, RunState
from vbdt.exchange.ledger import SqliteLedger
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.transport import ReconnectPolicy
from vbdt.trust.pki import TestPki

RECIPIENTS = 300
BATCH = 10  # 30 batches, two in flight: the stop comes with copies confirmed, in flight and not yet sent


PORTS = range(17000, 17190, 2)
"""This test's node: above the ports test_faults.py and the other tests take (15700-16700), below
the benchmark's (17200-)."""

@pytest.fixture
def node(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not OwnBroker.available():
        if UNDER_CI:
            pytest.fail("rabbitmq-server is not installed (python3 dev.py test installs it)")
        pytest.skip("rabbitmq-server is not installed")
    broker = OwnBroker(tmp_path / "broker", ports=PORTS)
    broker.start()
    yield broker
    broker.stop()


async def _messages(url: str, organ_ids: list[str]) -> dict[str, int]:
    """Messages in each inbox, from the queues themselves (a passive declare; rabbitmqctl's counts
    of quorum queues lag by seconds). Retried while the restarted node is still starting them."""
    transport = await AmqpTransport.connect(url, declare=False, reconnect=ReconnectPolicy(attempts=30, initial=0.5, cap=2))
    try:
        counts: dict[str, int] = {}
        for organ_id in organ_ids:
            for attempt in range(30):
                try:
                    counts[organ_id] = (await transport.inbox_status(organ_id)).ready
                    break
                except VbdtError:
                    if attempt == 29:
                        raise
                    await asyncio.sleep(1)
        return counts
    finally:
        await transport.close()


async def test_broker_restarted_in_the_middle_of_a_bulk_run(node: OwnBroker, tmp_path: Path) -> None:
    directory = national_directory()  # the 2025 country: 3,321 communes
    sender = PROVINCE
    communes = [str(a.organ_id) for a in directory.select("**:commune")][:RECIPIENTS]
    urls = provision([sender, *communes], vhost="vbdt", port=node.port, node=node.node, env=node.env, ctl=CTL).urls
    pki = TestPki.create([(sender, directory.get(sender).name)])
    # reconnection attempts for about 20 s: the node may be back before the run gives up, or not
    transport = await AmqpTransport.connect(urls[sender], declare=False,
                                            reconnect=ReconnectPolicy(attempts=8, initial=0.5, cap=4))
    ledger = SqliteLedger(tmp_path / "sender.db")
    journal = BulkJournal(tmp_path / "sender.bulk.db")
    bulk = BulkSender(sender, directory=directory, ledger=ledger, transport=transport, journal=journal,
                      key=pki.agencies[sender], person=pki.signer, seal=pki.agencies[sender], limits=Limits(),
                      batch=BATCH, in_flight=2)
    document = build_directive(directory, issued=dt.datetime.now(VIETNAM_TZ).date(), number="09")
    confirmed_before_stop: set[str] = set()
    restart: list[asyncio.Task[None]] = []

    def event(e: BulkEvent) -> None:
        if e.kind == "progress" and e.confirmed >= 3 * BATCH and not restart:
            confirmed_before_stop.update(r.recipient for r in journal.recipients(e.run_id)
                                         if r.state is RecipientState.CONFIRMED)
            node.stop()  # here, the loop standing still: the next batches go to a broker that is gone
            restart.append(asyncio.ensure_future(asyncio.to_thread(node.start)))  # back while the run retries

    error: VbdtError | None = None
    try:
        run = await bulk.send([BulkItem(document, communes)], on_event=event)
        outcome = run.info()
    except VbdtError as exc:  # a clear error: the broker gone
        error = exc
        (outcome,) = journal.runs()
    assert restart and len(confirmed_before_stop) < RECIPIENTS  # stopped in the middle of the run
    await restart[0]
    assert outcome.state in (RunState.DONE, RunState.INTERRUPTED)
    if outcome.state is RunState.INTERRUPTED:
        assert outcome.counts["pending"] > 0
    print(f"the run after the stop: {outcome.state.value}, {outcome.counts}, error: {error}")
    for _ in range(5):  # the node may still be starting its queues: resume until nothing is pending
        try:
            run = await bulk.resume(outcome.run_id)
        except VbdtError:
            await asyncio.sleep(2)
            continue
        if run.complete:
            break
        await asyncio.sleep(2)
    info = run.info()
    assert info.state is RunState.DONE and info.counts["confirmed"] == RECIPIENTS and info.counts["pending"] == 0
    await transport.close()

    counts = await _messages(f"amqp://guest:guest@127.0.0.1:{node.port}/vbdt", communes)
    assert {o for o in communes if counts.get(o, 0) == 0} == set()  # no inbox misses its copy
    # confirmed before the stop: never published again (a copy in flight at the stop may be there twice)
    assert {o: counts[o] for o in confirmed_before_stop if counts[o] != 1} == {}
    assert len(confirmed_before_stop) >= 3 * BATCH and len(confirmed_before_stop) < RECIPIENTS
    assert max(counts[o] for o in communes) <= 2
    # the journal and the ledger agree: every copy confirmed, every delivery sent (no outbox row)
    assert {r.recipient: r.state for r in journal.recipients(info.run_id)} == dict.fromkeys(communes, RecipientState.CONFIRMED)
    assert {d.recipient: d.state for d in ledger.deliveries(str(document.document_id))} == dict.fromkeys(communes, DeliveryState.SENT)
    assert ledger.pending() == []
    twice = sorted(o for o in communes if counts[o] == 2)
    print(f"inboxes holding the copy twice (in flight at the stop, published again by the resume): {len(twice)}")
    journal.close()
    ledger.close()
