"""Attacks by peers on the exchange (issue 9, points 7-12), over the embedded broker AND RabbitMQ.

Each test performs the attack, asserts the refusal, then that the victim keeps working: the next
good document still arrives and is answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import vbdt
from conftest import H14, H54, H54_DISTRICT, Network, Pump, drain_dead_letters
from vbdt.cli.demo import compose
from vbdt.edxml.codes import BusinessDocType, StatusCode
from vbdt.edxml.model import VIETNAM_TZ, Attachment, ResponseFor, StatusMessage
from vbdt.errors import MessageTooLarge, UsageError
from vbdt.exchange import pipeline
from vbdt.exchange.ledger import SqliteLedger
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import HEADER_KIND, HEADER_REASON, routing_key
from vbdt.exchange.transport import SHORTSTR_MAX, Outgoing
from vbdt.trust.xmldsig import sign


def _doc(net: Network, sender: str, to: list[str], number: str, notation: str = "UBND-VP") -> vbdt.Document:
    return compose(net.directory, sender, to, number=number, notation=notation, type_name="Công văn",
                   subject=f"Về việc số {number}", issued=date.today())


async def _good_one_still_works(net: Network, sender: Any, receiver: Any, number: str) -> None:
    """The victim keeps working: a good document arrives, is answered, and the answer lands."""
    sent = await sender.send(_doc(net, sender.organ_id, [receiver.organ_id], number))
    (item,) = await net.pump(receiver).take()
    assert item.document_id == sent.document_id
    await item.accept()
    await net.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.ACCEPTED)


def _status(net: Network, sender: str, about: ResponseFor, code: StatusCode) -> bytes:
    message = StatusMessage(sender=net.directory.organization(sender), response_for=about, status_code=code,
                            description="Đề nghị thu hồi", timestamp=dt.datetime.now(VIETNAM_TZ).replace(microsecond=0))
    return sign(message, net.pki.agencies[sender])  # type: ignore[attr-defined]


async def _publish(agency: Any, to: str, body: bytes, message_id: str = "m", kind: str = "document") -> None:
    await agency.transport.publish(Outgoing(routing_key(to), body, message_id, {HEADER_KIND: kind}))


# -- 7: the memory of concurrent handling ---------------------------------------------------------

async def test_concurrent_handling_stays_within_the_inflight_bytes(network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = await network.agency(H54)
    bodies = [vbdt.pack(_doc(network, H54, [H54_DISTRICT], f"7{i}"), network.pki.agencies[H54],  # type: ignore[attr-defined]
                        person=network.pki.signer, seal=network.pki.agencies[H54]) for i in range(4)]  # type: ignore[attr-defined]
    size = max(len(b) for b in bodies)
    handling: list[int] = []
    peak = 0
    real_admit = pipeline.admit

    def measured(body: bytes, **kw: Any) -> Any:  # the real admission, measured
        nonlocal peak
        handling.append(len(body))
        peak = max(peak, sum(handling))
        try:
            return real_admit(body, **kw)
        finally:
            handling.remove(len(body))

    monkeypatch.setattr(pipeline, "admit", measured)  # what the admission job runs (workers.admit_job)
    receiver = await network.agency(H54_DISTRICT, pump=False, prefetch=32,
                                    limits=dataclasses.replace(vbdt.DEFAULT_LIMITS, max_inflight_bytes=size + size // 2))
    for i, body in enumerate(bodies):  # all waiting in the inbox before the receiver starts
        await _publish(sender, H54_DISTRICT, body, f"seven-{i}")
    network.pumps.append(Pump(receiver))
    items = await network.pump(receiver).take(4, timeout=60)
    assert len({i.document_id for i in items}) == 4
    assert 0 < peak <= size + size // 2  # prefetch 32 would have admitted all four at once
    await _good_one_still_works(network, sender, receiver, "78")
    # a single message larger than the whole bound is still handled (alone), never refused for it
    tiny = await network.agency(H14, limits=dataclasses.replace(vbdt.DEFAULT_LIMITS, max_inflight_bytes=1000))
    await _good_one_still_works(network, sender, tiny, "79")


# -- 8: a PDF the PDF library cannot read ---------------------------------------------------------

async def test_a_corrupt_pdf_is_answered_with_a_02_and_the_inbox_goes_on(network: Network) -> None:
    sender, receiver = await network.agency(H54), await network.agency(H54_DISTRICT)
    document = _doc(network, H54, [H54_DISTRICT], "81")
    signed_pdf = vbdt.sign_pdf(document.attachments[0].read(), person=network.pki.signer,  # type: ignore[attr-defined]
                               seal=network.pki.agencies[H54])  # type: ignore[attr-defined]
    start = signed_pdf.index(b"stream") + 8
    broken = signed_pdf[:start] + b"\x00garbage, not zlib\xff" * 4 + signed_pdf[start + 72:]
    attachment = Attachment.from_bytes(document.attachments[0].name, broken, content_id="cid:1")
    body = sign(document.model_copy(update={"attachments": [attachment]}), network.pki.agencies[H54])  # type: ignore[attr-defined]
    await _publish(sender, H54_DISTRICT, body, "eight")
    dead = await drain_dead_letters(network.admin, 2)  # the message, and the 02 the sender could not place
    (refused,) = [h for b, h in dead if b == body]
    assert refused[HEADER_REASON].startswith("verify:")
    (answer,) = [b for b, h in dead if b != body]
    status = vbdt.verify(answer, trust=network.folder / "ca.pem").package
    assert isinstance(status, StatusMessage) and status.status_code is StatusCode.REJECTED
    assert status.response_for.document_id == document.document_id and "verify:" in (status.description or "")
    await _good_one_still_works(network, sender, receiver, "82")


# -- 9: identifiers of unbounded length -----------------------------------------------------------

async def test_a_long_message_id_on_garbage_does_not_brick_the_receiver(network: Network) -> None:
    sender, receiver = await network.agency(H54), await network.agency(H54_DISTRICT)
    await _publish(sender, H54_DISTRICT, b"garbage", "x" * 224 + f">{H54_DISTRICT}")
    (dead,) = await drain_dead_letters(network.admin, 1)
    assert dead[1][HEADER_REASON].startswith("parse:") and "no 02 sent" in dead[1][HEADER_REASON]
    assert receiver.ledger.pending() == [] and receiver.ledger.failures() == []  # nothing built from the header
    await receiver.open()  # and a restart has nothing stuck to publish
    await _good_one_still_works(network, sender, receiver, "91")


async def test_a_long_document_id_travels_with_bounded_message_ids(network: Network) -> None:
    sender, receiver = await network.agency(H54), await network.agency(H54_DISTRICT)
    notation = "UBND-VP-" + "X" * 300
    sent = await sender.send(_doc(network, H54, [H54_DISTRICT], "92", notation=notation))
    assert len(sent.document_id.encode()) > SHORTSTR_MAX and sent.pending == {} and sent.failed == {}
    (item,) = await network.pump(receiver).take()
    assert item.document_id == sent.document_id
    await item.complete()
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.COMPLETED)
    assert sender.ledger.failures() == [] and receiver.ledger.failures() == [] and receiver.ledger.pending() == []


# -- 10: recall, update, revoke, replace of another agency's document ----------------------------

async def test_only_the_issuer_may_recall_or_change_its_document(network: Network) -> None:
    owner, victim, intruder = await network.agency(H54), await network.agency(H54_DISTRICT), await network.agency(H14)
    sent = await owner.send(_doc(network, H54, [H54_DISTRICT], "101"))
    (item,) = await network.pump(victim).take()
    # a 13 naming the owner's document, once as the owner's and once as the intruder's own
    attacks = [_status(network, H14, ResponseFor(organ_id=H54, document_id=sent.document_id), StatusCode.RECALL_REQUESTED),
               _status(network, H14, ResponseFor(organ_id=H14, document_id=sent.document_id), StatusCode.RECALL_REQUESTED)]
    for kind in (BusinessDocType.REVOKE, BusinessDocType.UPDATE, BusinessDocType.REPLACE):
        change = _doc(network, H14, [H54_DISTRICT], f"10{kind.value + 2}")
        replacements = [vbdt.ReplacementInfo(document_id=sent.document_id, organ_ids=[H54_DISTRICT])] if kind is BusinessDocType.REPLACE else []
        business = change.business.model_copy(update={"doc_type": kind, "reason": "x", "document_id": sent.document_id,
                                                      "replacements": replacements})
        keys = network.pki.agencies[H14]  # type: ignore[attr-defined]
        attacks.append(vbdt.pack(change.model_copy(update={"business": business}), keys, person=network.pki.signer, seal=keys))  # type: ignore[attr-defined]
    for i, body in enumerate(attacks):
        await _publish(intruder, H54_DISTRICT, body, f"ten-{i}", "status" if i < 2 else "document")
    dead = await drain_dead_letters(network.admin, 2 * len(attacks))  # each refused, and each 02 the intruder cannot place
    reasons = sorted(h[HEADER_REASON].split(":")[0] for b, h in dead if b in attacks)
    assert reasons == ["owner", "owner", "owner", "owner", "recipient"]
    answers = [vbdt.verify(b, trust=network.folder / "ca.pem").package for b, h in dead if b not in attacks]
    assert all(isinstance(a, StatusMessage) and a.status_code is StatusCode.REJECTED for a in answers) and len(answers) == 5
    # the application was never asked; the owner's document is untouched and the victim goes on
    assert network.pump(victim).items.empty()
    await item.accept()
    await network.eventually(lambda: owner.status(sent.document_id)[0].state is DeliveryState.ACCEPTED)
    await _good_one_still_works(network, owner, victim, "109")


# -- 11: the same DocumentId for other content ---------------------------------------------------

async def test_a_document_id_names_one_document(network: Network) -> None:
    sender, receiver = await network.agency(H54), await network.agency(H54_DISTRICT)
    first = _doc(network, H54, [H54_DISTRICT], "111")
    sent = await sender.send(first)
    (item,) = await network.pump(receiver).take()
    # the sender refuses other content under the DocumentId, before anything is recorded
    other = first.model_copy(update={"subject": "Nội dung khác"})
    with pytest.raises(UsageError, match="update\\(\\) or replace\\(\\)"):
        await sender.send(other)
    assert (await sender.send(first)).recipients == [H54_DISTRICT]  # the same document again: nothing new
    assert sender.ledger.pending() == []
    # a peer doing it anyway (bypassing its client): the receiver answers the conflict with a 02
    forged = vbdt.pack(other, network.pki.agencies[H54], person=network.pki.signer, seal=network.pki.agencies[H54])  # type: ignore[attr-defined]
    await _publish(sender, H54_DISTRICT, forged, "eleven")
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.REJECTED)
    assert "conflict:" in (sender.status(sent.document_id)[0].reason or "")
    (dead,) = await drain_dead_letters(network.admin, 1)
    assert dead[0] == forged and dead[1][HEADER_REASON].startswith("conflict:")
    stored = receiver.ledger.incoming(H54, sent.document_id, "document")
    assert stored is not None and b"N\xe1\xbb\x99i dung kh\xc3\xa1c" not in stored.body  # the first one is kept
    assert item.document.subject == first.subject and network.pump(receiver).items.empty()
    await _good_one_still_works(network, sender, receiver, "112")


# -- 12: a package the broker will never take ----------------------------------------------------

async def test_an_oversize_package_is_refused_before_anything_is_recorded(network: Network) -> None:
    small = dataclasses.replace(vbdt.DEFAULT_LIMITS, max_message_bytes=60_000)
    sender = await network.agency(H54, limits=small)
    receiver = await network.agency(H54_DISTRICT)
    big = _doc(network, H54, [H54_DISTRICT], "121")
    big = big.model_copy(update={"attachments": [*big.attachments, Attachment.from_bytes("phu-luc.bin", bytes(range(256)) * 300,
                                                                                         content_id="cid:2")]})
    with pytest.raises(MessageTooLarge, match="max_message_bytes"):
        await sender.send(big)
    assert sender.ledger.document(str(big.document_id)) is None and sender.ledger.pending() == []
    await _good_one_still_works(network, sender, receiver, "122")


async def test_a_broker_refusal_is_a_failure_and_a_full_inbox_is_retried(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                          tmp_path: Path) -> None:
    from vbdt.exchange.client import Agency
    from vbdt.exchange.memory import MemoryBroker
    from vbdt.exchange.transport import QueueLimits

    pki, folder = exchange_pki
    # the broker's maximum is below what the agency allows itself, and the inbox holds one message
    broker = MemoryBroker(max_message_bytes=60_000, queue_limits=QueueLimits(inbox_messages=0))
    broker.provision([H54, H54_DISTRICT])

    def agency(organ_id: str) -> Agency:
        return Agency(organ_id, transport=broker.connect(organ_id), ledger=SqliteLedger(tmp_path / f"{organ_id}.db"),
                      key=pki.agencies[organ_id], trust=folder / "ca.pem", directory=example_directory,
                      person=pki.signer, seal=pki.agencies[organ_id])

    sender, receiver = agency(H54), agency(H54_DISTRICT)
    net = Network("memory", None, None, pki, folder, example_directory, tmp_path)  # type: ignore[arg-type]
    big = _doc(net, H54, [H54_DISTRICT], "123")
    big = big.model_copy(update={"attachments": [*big.attachments, Attachment.from_bytes("phu-luc.bin", bytes(range(256)) * 300,
                                                                                         content_id="cid:2")]})
    refused = await sender.send(big)
    assert set(refused.failed) == {H54_DISTRICT} and refused.pending == {}
    (delivery,) = sender.status(refused.document_id)
    assert delivery.state is DeliveryState.FAILED and "maximum message size" in (delivery.reason or "")
    assert sender.ledger.pending() == [] and (await sender.flush()).failed == {}  # never republished
    first = await sender.send(_doc(net, H54, [H54_DISTRICT], "124"))
    full = await sender.send(_doc(net, H54, [H54_DISTRICT], "125"))
    assert first.pending == {} and set(full.pending) == {H54_DISTRICT}  # QueueFull: kept, retried
    pump = Pump(receiver)
    try:
        (one,) = await pump.take()
        await sender.flush()  # room again: the retried one goes
        (two,) = await pump.take()
        assert {one.document_id, two.document_id} == {first.document_id, full.document_id}
        await two.accept()
        await asyncio.sleep(0.1)
    finally:
        await pump.stop()
        for a in (sender, receiver):
            await a.transport.close()
            a.ledger.close()
