"""The ledger's methods for deliveries their caller publishes (a bulk run): recorded without outbox
rows, moved many at a time by the state table, resent from the body kept, and a bulk run whose
ledger says ``queued`` until the broker confirms, level with the journal after a resume."""

from __future__ import annotations

import asyncio
import datetime as dt
from datetime import date
from pathlib import Path

import pytest

import vbdt
from conftest import H14, H14_COMMUNES
from vbdt.cli.demo import build_directive
from vbdt.edxml.codes import StatusCode
from vbdt.errors import InvalidTransition, UsageError
from vbdt.exchange.bulk import BulkEvent, BulkItem
from vbdt.exchange.journal import BulkJournal, RecipientState, RunState
from vbdt.exchange.ledger import SentDocument, SqliteLedger
from vbdt.exchange.outbox import attempt_message_id
from vbdt.exchange.receipts import DeliveryState, Event, next_state

DOC = "000.00.00.H14,2026/11/23,05/CT-UBND"
BODY = b"<edXML>signed once</edXML>" * 50
RECIPIENTS = [f"000.00.{i:02d}.H14" for i in range(1, 41)]


def _recorded(tmp_path: Path) -> SqliteLedger:
    ledger = SqliteLedger(tmp_path / "l.db")
    ledger.record_deliveries(SentDocument(DOC, H14, "05/CT-UBND", "Chỉ thị", dt.date(2026, 11, 23)), BODY, RECIPIENTS)
    return ledger


def _states(ledger: SqliteLedger) -> dict[str, DeliveryState]:
    return {d.recipient: d.state for d in ledger.deliveries(DOC)}


def test_record_deliveries_writes_no_outbox_row_and_keeps_what_is_there(tmp_path: Path) -> None:
    ledger = _recorded(tmp_path)
    assert set(_states(ledger).values()) == {DeliveryState.QUEUED} and len(_states(ledger)) == len(RECIPIENTS)
    assert ledger.pending() == [] and ledger.outbox_records(pending_only=False) == []  # the outbox publishes none
    assert ledger.document(DOC) is not None and ledger._file.query("SELECT count(*) FROM bodies")[0][0] == 1
    ledger.move_deliveries(DOC, RECIPIENTS[:1], Event.PUBLISHED)
    ledger.record_deliveries(SentDocument(DOC, H14, "05/CT-UBND", "Chỉ thị", dt.date(2026, 11, 23)), BODY,
                             [*RECIPIENTS, "000.00.99.H14"])  # again, and one more
    states = _states(ledger)
    assert states[RECIPIENTS[0]] is DeliveryState.SENT and states["000.00.99.H14"] is DeliveryState.QUEUED
    assert ledger._file.query("SELECT count(*) FROM bodies")[0][0] == 1
    ledger.close()
    assert _states(SqliteLedger(tmp_path / "l.db")) == states  # durable


def test_move_deliveries_follows_the_state_table(tmp_path: Path) -> None:
    ledger = _recorded(tmp_path)
    published, unroutable, refused, answered = RECIPIENTS[:20], RECIPIENTS[20:30], RECIPIENTS[30:35], RECIPIENTS[35:]
    # receipts that overtook the broker's confirm (a receipt proves the publish)
    for recipient in answered:
        assert ledger.apply(DOC, recipient, StatusCode.ARRIVED, receipt_key=f"k-{recipient}") is DeliveryState.ARRIVED
    assert ledger.move_deliveries(DOC, published + answered, Event.PUBLISHED) == []
    assert ledger.move_deliveries(DOC, unroutable, Event.UNROUTABLE, "no inbox") == []
    assert ledger.move_deliveries(DOC, refused, Event.REFUSED, "too large") == []
    # an unroutable after a receipt: the table has no such move, the delivery keeps its state
    assert ledger.move_deliveries(DOC, [answered[0], unroutable[0]], Event.UNROUTABLE, "gone") == [answered[0]]
    by = {d.recipient: d for d in ledger.deliveries(DOC)}
    assert by[unroutable[0]].reason == "gone"  # undeliverable again: the latest reason
    for group, event, reason in ((published, Event.PUBLISHED, None), (unroutable[1:], Event.UNROUTABLE, "no inbox"),
                                 (refused, Event.REFUSED, "too large")):
        for recipient in group:
            assert by[recipient].state is next_state(DeliveryState.QUEUED, event) and by[recipient].reason == reason
    assert {by[r].state for r in answered} == {DeliveryState.ARRIVED}
    history = ledger.history(DOC, published[0])
    assert [(h.event, h.state) for h in history] == [("published", "sent")]
    assert [h.event for h in ledger.history(DOC, answered[0])] == ["01", "published"]
    assert [(h.event, h.note) for h in ledger.history(DOC, unroutable[0])] == [("unroutable", "no inbox"), ("unroutable", "gone")]


def test_move_deliveries_refuses_what_it_cannot_do_and_changes_nothing(tmp_path: Path) -> None:
    ledger = _recorded(tmp_path)
    with pytest.raises(InvalidTransition, match=r"000\.00\.98\.H14 \(and 1 more\)"):
        ledger.move_deliveries(DOC, [RECIPIENTS[0], "000.00.98.H14", "000.00.97.H14"], Event.PUBLISHED)
    with pytest.raises(UsageError, match="resend"):
        ledger.move_deliveries(DOC, RECIPIENTS, Event.RESENT)
    assert set(_states(ledger).values()) == {DeliveryState.QUEUED}  # one transaction: nothing moved
    assert ledger.move_deliveries(DOC, [], Event.PUBLISHED) == []


def test_a_rejected_bulk_delivery_is_resent_from_the_body_kept(tmp_path: Path) -> None:
    ledger = _recorded(tmp_path)
    ledger.move_deliveries(DOC, RECIPIENTS, Event.PUBLISHED)
    ledger.apply(DOC, RECIPIENTS[3], StatusCode.REJECTED, receipt_key="r", note="sai địa bàn")
    (entry,) = ledger.resend(DOC, [RECIPIENTS[3]], lambda r, attempt: attempt_message_id(DOC, r, attempt))
    assert entry.body == BODY and entry.recipient == RECIPIENTS[3]
    assert [e.message_id for e in ledger.pending()] == [entry.message_id]  # the new attempt goes through the outbox
    delivery = next(d for d in ledger.deliveries(DOC) if d.recipient == RECIPIENTS[3])
    assert delivery.state is DeliveryState.QUEUED and delivery.attempt == 2


def test_each_recipient_is_resent_the_envelope_that_lists_it(tmp_path: Path) -> None:
    """A bulk run signs one envelope per group of recipients and records each group with its own:
    a resend takes the recipient's envelope (another one would not list it in To)."""
    ledger = SqliteLedger(tmp_path / "l.db")
    sent = SentDocument(DOC, H14, "05/CT-UBND", "Chỉ thị", dt.date(2026, 11, 23))
    bodies = {part: b"<edXML>envelope %d</edXML>" % part * 50 for part in range(4)}
    with ledger.batch():
        for part, body in bodies.items():
            ledger.record_deliveries(sent, body, RECIPIENTS[part * 10:(part + 1) * 10])
    ledger.move_deliveries(DOC, RECIPIENTS, Event.PUBLISHED)
    chosen = [RECIPIENTS[3], RECIPIENTS[17], RECIPIENTS[39]]
    for recipient in chosen:
        ledger.apply(DOC, recipient, StatusCode.REJECTED, receipt_key=f"r-{recipient}", note="sai địa bàn")
    entries = ledger.resend(DOC, chosen, lambda r, attempt: attempt_message_id(DOC, r, attempt))
    assert [e.body for e in entries] == [bodies[0], bodies[1], bodies[3]]


async def test_bulk_ledger_is_queued_until_the_broker_confirms(network, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    sender = await network.agency(H14, pump=False)
    for organ_id in H14_COMMUNES:
        await network.agency(organ_id)
    doc = build_directive(example_directory, issued=date(2026, 11, 25), number="07")
    seen: dict[str, dict[str, DeliveryState]] = {}

    def event(e: BulkEvent) -> None:
        if e.kind in ("publishing", "done"):
            seen[e.kind] = {d.recipient: d.state for d in sender.status(e.document_id)}

    run = await sender.bulk_send(doc, to=[f"{H14}/**:commune"], on_event=event)
    journal = {r.recipient: r.state for r in run.journal.recipients(run.run_id)}
    no_inbox = {r for r, s in journal.items() if s is RecipientState.UNROUTABLE}
    assert no_inbox and set(H14_COMMUNES) <= {r for r, s in journal.items() if s is RecipientState.CONFIRMED}
    # before the first publish: queued (undeliverable for those without an inbox), never sent
    assert {r for r, s in seen["publishing"].items() if s is DeliveryState.UNDELIVERABLE} == no_inbox
    assert {s for r, s in seen["publishing"].items() if r not in no_inbox} == {DeliveryState.QUEUED}
    # once the broker confirmed: sent (or a receipt already), as the journal says
    assert {seen["done"][r] for r in H14_COMMUNES} <= {DeliveryState.SENT, DeliveryState.ARRIVED}
    assert sender.ledger.pending() == []  # no outbox row: the run's journal was the outbox


async def test_resume_brings_the_ledger_level_with_the_journal(network, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    """A process that died between the journal's write and the ledger's leaves the ledger behind
    (queued where the journal says confirmed); the resume moves it, and publishes only the rest."""
    sender = await network.agency(H14, pump=False)
    receivers = {o: await network.agency(o) for o in H14_COMMUNES}
    doc = build_directive(example_directory, issued=date(2026, 11, 26), number="08")
    journal = BulkJournal(tmp_path / "journal.db")

    class Stop(Exception):
        pass

    def stop_when_publishing(event: BulkEvent) -> None:
        if event.kind == "publishing":
            raise Stop  # the ledger is recorded (queued), nothing is published

    with pytest.raises(Stop):
        await sender.bulk(journal).send([BulkItem(doc, H14_COMMUNES)], on_event=stop_when_publishing)
    (info,) = journal.runs()
    assert info.state is RunState.INTERRUPTED
    assert {d.state for d in sender.status(str(doc.document_id))} == {DeliveryState.QUEUED}
    journal.mark(info.run_id, str(doc.document_id), [(H14_COMMUNES[0], RecipientState.CONFIRMED, None)])  # the journal's word only
    run = await sender.bulk_resume(info.run_id, journal=journal)
    assert run.info().state is RunState.DONE
    states = {d.recipient: d.state for d in sender.status(str(doc.document_id))}
    assert states[H14_COMMUNES[0]] is DeliveryState.SENT  # moved by the resume, not published again
    assert states[H14_COMMUNES[1]] in (DeliveryState.SENT, DeliveryState.ARRIVED)
    (item,) = await network.pump(receivers[H14_COMMUNES[1]]).take()
    assert item.document_id == str(doc.document_id)
    with pytest.raises(asyncio.TimeoutError):
        await network.pump(receivers[H14_COMMUNES[0]]).take(timeout=1.0)  # never published to it
