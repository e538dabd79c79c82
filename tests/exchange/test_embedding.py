"""The application-facing client: acknowledged hand-over, stored verdicts, answers later, hooks.

Over the embedded broker and RabbitMQ (the ``network`` fixture runs each test on both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from datetime import date
from typing import Any

import pytest

import vbdt
from conftest import H54, H54_COMMUNES, H54_DISTRICT, Network
from vbdt.cli.demo import compose
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import HEADER_KIND, routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.trust.pki import issue_certificate


def doc(net: Network, sender: str, to: list[str], number: str) -> vbdt.Document:
    return compose(net.directory, sender, to, number=number, notation="UBND-VP", type_name="Công văn",
                   subject=f"Về việc thử nghiệm tích hợp số {number}", issued=date.today())


async def reopened(net: Network, organ_id: str, **options: Any) -> vbdt.AgencyClient:
    """A second client for the same agency on the same ledger file: a restarted process."""
    client = vbdt.AgencyClient(
        organ_id, transport=await net.connect(organ_id), ledger=vbdt.SqliteLedger(net.tmp / f"{organ_id}.db"),  # type: ignore[arg-type]
        key=net.pki.agencies[organ_id], trust=net.folder / "ca.pem", directory=net.directory,  # type: ignore[attr-defined]
        person=net.pki.signer, seal=net.pki.agencies[organ_id], **options,  # type: ignore[attr-defined]
    )
    await client.open()
    net.created.append(client)
    return client


async def next_item(client: vbdt.AgencyClient, timeout: float = 15.0) -> vbdt.InboxItem:
    inbox = client.inbox()
    try:
        return await asyncio.wait_for(anext(inbox), timeout)
    finally:
        await inbox.aclose()  # type: ignore[attr-defined]


async def nothing_handed(client: vbdt.AgencyClient, wait: float = 1.5) -> None:
    with pytest.raises(TimeoutError):
        await next_item(client, timeout=wait)


async def test_an_item_not_acknowledged_is_handed_again_after_a_restart(network: Network) -> None:
    sender = await network.agency(H54)
    first = await network.agency(H54_DISTRICT, pump=False)
    sent = await sender.send(doc(network, H54, [H54_DISTRICT], "301"))
    item = await next_item(first)
    assert item.document_id == sent.document_id and not item.redelivered
    await first.close()  # the application died before its own commit: no ack

    second = await reopened(network, H54_DISTRICT)
    again = await next_item(second)
    assert again.document_id == sent.document_id and again.redelivered
    async with again:  # acknowledged when the block ends without an exception
        assert again.document.subject == item.document.subject
    await second.close()

    third = await reopened(network, H54_DISTRICT)
    await nothing_handed(third)
    assert [i.document_id for i in third.received(unacknowledged=False)] == [sent.document_id]


async def test_an_exception_inside_the_block_leaves_the_item_unacknowledged(network: Network) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT, pump=False)
    await sender.send(doc(network, H54, [H54_DISTRICT], "302"))
    item = await next_item(receiver)
    with pytest.raises(RuntimeError):
        async with item:
            raise RuntimeError("the DMS database was down")
    assert [i.document_id for i in receiver.received(unacknowledged=True)] == [item.document_id]


async def test_the_verdict_is_stored_with_the_item_and_survives_a_restart(network: Network) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT, pump=False)
    sent = await sender.send(doc(network, H54, [H54_DISTRICT], "303"))
    item = await next_item(receiver)
    verdict = item.verdict
    assert verdict is not None and verdict.agency == H54 and "UID=" + H54 in verdict.signer
    assert len(verdict.chain) >= 2 and verdict.binding == "uid"
    assert verdict.pdfs and all(p.original_valid for p in verdict.pdfs.values())
    roles = [s["role"] for p in verdict.pdfs.values() for s in p.signatures]
    assert roles == ["person", "agency"]
    await receiver.close()
    later = (await reopened(network, H54_DISTRICT)).item(H54, sent.document_id)
    assert later.verdict == verdict and later.body.startswith(b"<?xml")
    assert later.received_at is not None and later.received_at.utcoffset() == dt.timedelta(hours=7)


async def test_answer_later_by_id_with_staff_and_read_the_history_on_both_sides(network: Network) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT, pump=False)
    sent = await sender.send(doc(network, H54, [H54_DISTRICT], "304"))
    async with await next_item(receiver):
        pass
    await receiver.close()

    restarted = await reopened(network, H54_DISTRICT)
    (item,) = restarted.received(sender=H54, state="01")  # arrived, receipt sent, not yet accepted
    clerk = vbdt.StaffInfo(department="Văn phòng", staff="Nguyễn Văn A")
    officer = vbdt.StaffInfo(department="Phòng Tư pháp", staff="Trần Thị B")
    await item.accept(staff=clerk)
    await item.assign("Giao Phòng Tư pháp", staff=officer)
    await item.complete("Đã xử lý xong", staff=officer)
    assert [i.document_id for i in restarted.received(state="06")] == [sent.document_id]
    mine = [(e.event, e.staff, e.note) for e in restarted.history(sent.document_id, H54)]
    assert mine == [("03", "Nguyễn Văn A", None), ("04", "Trần Thị B", "Giao Phòng Tư pháp"),
                    ("06", "Trần Thị B", "Đã xử lý xong")]
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.COMPLETED)
    theirs = [e.event for e in sender.history(sent.document_id, H54_DISTRICT)]
    # receipts may overtake each other: a 04 arriving after the 06 is kept in the history, not applied
    assert theirs[0] == "published" and {"01", "03", "04", "06"} <= set(theirs)
    assert all(e.at.utcoffset() == dt.timedelta(hours=7) for e in sender.history(sent.document_id))


async def test_a_sender_that_never_reads_its_inbox_sees_receipts_once_each(network: Network) -> None:
    seen: list[str] = []

    async def on_receipt(status: vbdt.StatusMessage) -> None:  # async hooks are awaited
        seen.append(status.status_code.value)

    sender = await network.agency(H54, pump=False, on_receipt=on_receipt)
    sender.serve()  # what `async with` does: consume in the background
    receiver = await network.agency(H54_DISTRICT)
    sent = await sender.send(doc(network, H54, [H54_DISTRICT], "305"))
    (item,) = await network.pump(receiver).take()
    await item.accept()
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.ACCEPTED)
    await asyncio.sleep(0.3)
    assert seen == ["01", "03"]


async def test_send_validates_before_signing(network: Network) -> None:
    sender = await network.agency(H54, pump=False)
    bad = doc(network, H54, [H54_DISTRICT], "306")
    bad = bad.model_copy(update={"due_date": bad.promulgation.date - dt.timedelta(days=3)})  # EDX203
    with pytest.raises(vbdt.ValidationError) as refused:
        await sender.send(bad)
    assert "EDX203" in {f.code for f in refused.value.errors}
    assert sender.ledger.documents() == []


async def test_refusals_reach_the_on_refused_hook(network: Network) -> None:
    refusals: list[tuple[str, str | None]] = []
    receiver = await network.agency(H54_DISTRICT, on_refused=lambda exc, user: refusals.append((exc.stage, user)))
    intruder = await network.agency(H54, pump=False)
    await intruder.transport.publish(Outgoing(routing_key(H54_DISTRICT), b"not edXML", "garbage-1",
                                              {HEADER_KIND: "document"}))
    await network.eventually(lambda: len(refusals) == 1)
    assert refusals == [("parse", H54)]
    assert receiver.organ_id == H54_DISTRICT


def test_the_client_refuses_keys_it_could_not_sign_with(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    broker = vbdt.MemoryBroker()
    mine = pki.agencies[H54]

    def client(key: vbdt.SigningKey) -> vbdt.AgencyClient:
        return vbdt.AgencyClient(H54, transport=broker.connect(H54), ledger=vbdt.SqliteLedger(":memory:"), key=key,
                                 trust=folder / "ca.pem", directory=example_directory)

    with pytest.raises(vbdt.SignerMismatch):
        client(pki.agencies[H54_DISTRICT])  # another agency's certificate
    with pytest.raises(vbdt.KeyFileError, match="does not match"):
        client(dataclasses.replace(mine, private_key=pki.agencies[H54_DISTRICT].private_key))
    old = issue_certificate(pki.intermediate, "old", organ_id=H54, days=30,
                            not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(vbdt.CertificateRejected, match="not valid now"):
        client(old)
    assert client(mine).organ_id == H54


def test_names_say_what_they_are() -> None:
    assert not hasattr(vbdt, "Agency")  # the record and the client no longer share a name
    assert vbdt.AgencyRecord.__module__ == "vbdt.directory.agencies"
    assert vbdt.AgencyClient.__module__ == "vbdt.exchange.client"
    assert dt.datetime.now(VIETNAM_TZ).utcoffset() == dt.timedelta(hours=7)
    assert H54_COMMUNES
