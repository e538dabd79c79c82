"""The exchange end to end, over the embedded broker AND a real RabbitMQ (same tests, both transports)."""

from __future__ import annotations

import datetime as dt
from datetime import date

import pytest

import vbdt
from conftest import G22, H14, H14_COMMUNES, H54, H54_COMMUNES, H54_DISTRICT, Network
from vbdt.cli.demo import compose
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.exchange.receipts import DeliveryState

TODAY = date.today()


def doc(net: Network, sender: str, to: list[str], number: str, **kw: object) -> vbdt.Document:
    return compose(net.directory, sender, to, number=number, notation=kw.pop("notation", "UBND-VP"),  # type: ignore[arg-type]
                   type_name=kw.pop("type_name", "Công văn"), subject=kw.pop("subject", f"Về việc thử nghiệm số {number}"),  # type: ignore[arg-type]
                   issued=kw.pop("issued", TODAY), **kw)  # type: ignore[arg-type]


def states(agency, document_id: str) -> dict[str, DeliveryState]:  # type: ignore[no-untyped-def]
    return {d.recipient: d.state for d in agency.status(document_id)}


async def test_province_to_every_commune_by_selector(network: Network) -> None:
    province = await network.agency(H14)
    communes = [await network.agency(c) for c in H14_COMMUNES]
    result = await province.send(doc(network, H14, [], "101"), to=[f"{H14}/**:commune"])
    # the example directory has 56 communes of Cao Bằng; only these two have inboxes in this test
    assert set(H14_COMMUNES) <= set(result.recipients) and len(result.recipients) == 56
    assert set(result.unroutable) == set(result.recipients) - set(H14_COMMUNES)
    for commune in communes:
        (item,) = await network.pump(commune).take()
        assert item.kind == "document" and item.sender == H14 and item.document_id == result.document_id
        assert item.document.subject == "Về việc thử nghiệm số 101"
        await item.accept()
    await network.eventually(lambda: all(states(province, result.document_id)[c] is DeliveryState.ACCEPTED for c in H14_COMMUNES))
    assert states(province, result.document_id)[result.recipients[-1]] is DeliveryState.UNDELIVERABLE


@pytest.mark.parametrize(
    "sender,recipient",
    [(G22, H54), (H54, G22), (H54, H54_DISTRICT), (H54_DISTRICT, H54_COMMUNES[0]), (H54_COMMUNES[0], H54_DISTRICT),
     (H54_COMMUNES[1], H54), (H14, H14_COMMUNES[1]), (H14_COMMUNES[0], G22)],
)
async def test_round_trip_with_every_receipt(network: Network, sender: str, recipient: str) -> None:
    a = await network.agency(sender)
    b = await network.agency(recipient)
    sent = await a.send(doc(network, sender, [recipient], "7"))
    assert sent.unroutable == {} and sent.pending == {}
    (item,) = await network.pump(b).take()
    seen = []
    for answer, state in [(item.accept, DeliveryState.ACCEPTED), (item.assign, DeliveryState.ASSIGNED),
                          (item.processing, DeliveryState.PROCESSING), (item.complete, DeliveryState.COMPLETED)]:
        await answer()
        await network.eventually(lambda s=state: states(a, sent.document_id)[recipient] is s)
        seen.append(state)
    assert seen[-1] is DeliveryState.COMPLETED
    # the receiver's 01 came first and on its own (same-day confirmation)
    assert b.ledger.incoming(sender, sent.document_id, "document").receipt_sent


async def test_rejection_carries_the_reason(network: Network) -> None:
    a, b = await network.agency(H54), await network.agency(H54_DISTRICT)
    sent = await a.send(doc(network, H54, [H54_DISTRICT], "8"))
    (item,) = await network.pump(b).take()
    await item.reject("Sai thẩm quyền giải quyết")
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.REJECTED)
    (delivery,) = a.status(sent.document_id)
    assert delivery.reason == "Sai thẩm quyền giải quyết"


async def test_recall_agreed_and_refused(network: Network) -> None:
    a = await network.agency(H54_DISTRICT)
    b, c = await network.agency(H54_COMMUNES[0]), await network.agency(H54_COMMUNES[1])
    sent = await a.send(doc(network, H54_DISTRICT, H54_COMMUNES, "9"))
    for receiver in (b, c):
        (item,) = await network.pump(receiver).take()
        await item.accept()
    await network.eventually(lambda: set(states(a, sent.document_id).values()) == {DeliveryState.ACCEPTED})
    assert sorted(await a.recall(sent.document_id, "Ban hành nhầm")) == sorted(H54_COMMUNES)
    (request_b,) = await network.pump(b).take()
    (request_c,) = await network.pump(c).take()
    assert request_b.kind == "recall" and request_b.concerns == sent.document_id
    await request_b.agree()
    await request_c.refuse("Đã triển khai thực hiện")
    await network.eventually(lambda: states(a, sent.document_id) == {
        H54_COMMUNES[0]: DeliveryState.RECALLED, H54_COMMUNES[1]: DeliveryState.ACCEPTED})


async def test_update_and_replace(network: Network) -> None:
    a, b = await network.agency(H14), await network.agency(H14_COMMUNES[0])
    first = await a.send(doc(network, H14, [H14_COMMUNES[0]], "10"))
    (item,) = await network.pump(b).take()
    await item.accept()
    update = await a.update(doc(network, H14, [], "11"), of=first.document_id, reason="Bổ sung phụ lục")
    (changed,) = await network.pump(b).take()
    assert changed.kind == "update" and changed.concerns == first.document_id
    assert changed.document.business.doc_type is vbdt.BusinessDocType.UPDATE
    await changed.agree()
    await network.eventually(lambda: states(a, first.document_id)[H14_COMMUNES[0]] is DeliveryState.RECALLED)
    await network.eventually(lambda: states(a, update.document_id)[H14_COMMUNES[0]] is DeliveryState.ARRIVED)
    replacement = await a.replace(doc(network, H14, [], "12"), of=update.document_id, reason="Thay thế")
    (new,) = await network.pump(b).take()
    assert new.kind == "replace" and new.document.business.replacements[0].document_id == update.document_id
    await new.refuse("Không đồng ý")
    await network.eventually(lambda: states(a, update.document_id)[H14_COMMUNES[0]] is DeliveryState.ARRIVED)
    assert replacement.document_id != update.document_id


async def test_trace_header_is_appended_once(network: Network) -> None:
    a, b = await network.agency(G22), await network.agency(H14)
    await a.send(doc(network, G22, [H14], "13"))
    (item,) = await network.pump(b).take()
    assert [str(t.organ_id) for t in item.document.trace] == [G22]


async def test_redelivered_document_reaches_the_application_once(network: Network) -> None:
    a, b = await network.agency(H54), await network.agency(G22)
    sent = await a.send(doc(network, H54, [G22], "14"))
    (item,) = await network.pump(b).take()
    # the sender's outbox entry published again (a sender restarted before recording the confirm)
    from vbdt.exchange.routing import routing_key
    from vbdt.exchange.transport import Outgoing

    body = a.ledger.pending() or None
    assert body is None  # confirmed: nothing pending
    original = item.document
    signed = vbdt.pack(original, network.pki.agencies[H54])  # type: ignore[attr-defined]
    await a.transport.publish(Outgoing(routing_key(G22), signed, f"{sent.document_id}>{G22}", {"x-vbdt-kind": "document"}))
    await a.transport.publish(Outgoing(routing_key(G22), signed, f"{sent.document_id}>{G22}", {"x-vbdt-kind": "document"}))
    with pytest.raises(TimeoutError):
        await network.pump(b).take(timeout=1.5)
    arrivals = [d for d in a.status(sent.document_id)]
    assert arrivals[0].state is DeliveryState.ARRIVED


async def test_overdue_lists_arrivals_not_confirmed_by_the_next_working_day(network: Network) -> None:
    from vbdt.exchange.deadlines import DEFAULT_CALENDAR

    a = await network.agency(H54)
    await network.agency(H54_DISTRICT, pump=False)  # has an inbox, but nobody reads it
    yesterday = TODAY - dt.timedelta(days=1)
    sent = await a.send(doc(network, H54, [H54_DISTRICT], "15", issued=yesterday))
    # issued yesterday, sent now: not late until the end of the next working day after sending
    assert a.overdue() == []
    later = dt.datetime.combine(DEFAULT_CALENDAR.add_working_days(TODAY, 2), dt.time(9), VIETNAM_TZ)
    overdue = a.overdue(later)
    assert [(o.document_id, o.recipient, o.late_by) for o in overdue] == [(sent.document_id, H54_DISTRICT, 1)]
    assert "ngày làm việc" in overdue[0].why
    assert StatusCode.ARRIVED.label.startswith("Đã đến")


async def test_a_rejected_delivery_is_resent_and_its_new_receipts_apply(network: Network) -> None:
    import dataclasses

    from vbdt.edxml.limits import DEFAULT_LIMITS
    from vbdt.errors import InvalidTransition

    a = await network.agency(H54)
    # the recipient refuses at receipt (it allows one PDF signature, the PDF has two): a signed 02 back
    small = dataclasses.replace(DEFAULT_LIMITS, max_pdf_signatures=1)
    strict = await network.agency(H54_DISTRICT, pump=False, limits=small)
    strict.serve()
    sent = await a.send(doc(network, H54, [H54_DISTRICT, H54_COMMUNES[0]], "31"))
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.REJECTED)
    await strict.close()
    network.created.remove(strict)
    with pytest.raises(InvalidTransition, match="only a rejected"):  # the commune's delivery is still open
        await a.resend(sent.document_id, to=[H54_COMMUNES[0]])
    # fixed: the district opens with the usual limits; the resend is a new attempt, its 01 applies
    district = await network.agency(H54_DISTRICT)
    again = await a.resend(sent.document_id)
    assert again.recipients == [H54_DISTRICT] and again.pending == {} and again.unroutable == {}
    (item,) = await network.pump(district).take()
    assert item.document_id == sent.document_id
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.ARRIVED)
    assert {d.recipient: d.attempt for d in a.status(sent.document_id)}[H54_DISTRICT] == 2

    # the clerk rejects it this time, within the second of the first 02 (each receipt still counts);
    # a third attempt reaches the same clerk again, and is accepted.
    await item.reject("Thiếu phụ lục")
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.REJECTED)
    await a.resend(sent.document_id, to=[H54_DISTRICT])
    (third,) = await network.pump(district).take()
    assert third.document_id == sent.document_id and not third.redelivered
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.ARRIVED)
    await third.accept()
    await network.eventually(lambda: states(a, sent.document_id)[H54_DISTRICT] is DeliveryState.ACCEPTED)
    events = [e.event for e in a.history(sent.document_id, H54_DISTRICT)]
    assert events.count("resent") == 2 and events.count("02") == 2


async def test_answers_with_the_same_code_within_one_second_all_reach_the_sender(network: Network) -> None:
    """Status ids and signed times are unique per answer: none is dropped as a repeat of another."""
    a = await network.agency(H54)
    b = await network.agency(H54_DISTRICT)
    sent = await a.send(doc(network, H54, [H54_DISTRICT], "41"))
    (item,) = await network.pump(b).take()
    await item.accept()
    for note in ("Bước 1", "Bước 1", "Bước 2"):  # no pause; the same note twice: still two answers
        await item.processing(note)
    await network.eventually(lambda: [e.event for e in a.history(sent.document_id, H54_DISTRICT)].count("05") == 3)
    notes = [e.note for e in a.history(sent.document_id, H54_DISTRICT) if e.event == "05"]
    assert sorted(notes) == ["Bước 1", "Bước 1", "Bước 2"]
    assert [e.event for e in b.history(sent.document_id, H54)].count("05") == 3


async def test_the_outbox_refuses_another_body_under_a_used_message_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vbdt.errors import LedgerError
    from vbdt.exchange.ledger import OutboxEntry, SqliteLedger
    from vbdt.exchange.memory import MemoryBroker
    from vbdt.exchange.outbox import Outbox

    broker = MemoryBroker()
    broker.provision([H54, H54_DISTRICT])
    ledger = SqliteLedger(tmp_path / "l.db")
    outbox = Outbox(H54, broker.connect(H54), ledger)
    first = OutboxEntry("vbdt-s-1", "DOC-1", H54_DISTRICT, "status", b"<first/>")
    await outbox.record_and_publish([first], "DOC-1", [H54_DISTRICT])
    await outbox.record_and_publish([first], "DOC-1", [H54_DISTRICT])  # the same message again: a repeat
    with pytest.raises(LedgerError, match="already in the outbox with another body"):
        await outbox.record_and_publish([OutboxEntry("vbdt-s-1", "DOC-1", H54_DISTRICT, "status", b"<second/>")],
                                        "DOC-1", [H54_DISTRICT])
    records = ledger.outbox_records(pending_only=False)
    assert [(r.message_id, r.size) for r in records] == [("vbdt-s-1", len(b"<first/>"))]
