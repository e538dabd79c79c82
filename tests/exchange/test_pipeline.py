"""Hostile messages off the wire: refused with the reason, dead-lettered, the sender told; the consumer goes on."""

from __future__ import annotations

from datetime import date

import pytest

import vbdt
from conftest import G22, H14, H54, H54_DISTRICT, Network, drain_dead_letters
from vbdt.cli.demo import compose
from vbdt.edxml import building, xmlparse
from vbdt.edxml.findings import Finding
from vbdt.edxml.xmlparse import Limits
from vbdt.errors import MessageRejected
from vbdt.exchange.pipeline import Admitted, admit, signed_digest
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import HEADER_KIND, HEADER_REASON, routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.trust.pki import TestPki


def _doc(net: Network, sender: str, to: list[str], number: str) -> vbdt.Document:
    return compose(net.directory, sender, to, number=number, notation="UBND-VP", type_name="Công văn",
                   subject="Về việc kiểm thử", issued=date.today())


def _signed(net: Network, sender: str, to: list[str], number: str) -> bytes:
    return vbdt.pack(_doc(net, sender, to, number), net.pki.agencies[sender], person=net.pki.signer,  # type: ignore[attr-defined]
                     seal=net.pki.agencies[sender])  # type: ignore[attr-defined]


def _tampered(data: bytes) -> bytes:
    return data.replace("Về việc kiểm thử".encode(), "Về việc đã sửa".encode(), 1)


def _stranger_signed(net: Network, sender: str, to: list[str], number: str) -> bytes:
    stranger = TestPki.create([(sender, "Impostor")])
    return vbdt.pack(_doc(net, sender, to, number), stranger.agencies[sender], person=stranger.signer, seal=stranger.agencies[sender])


HOSTILE = {
    "not xml": lambda net: b"\x89PNG\r\n not xml at all",
    "billion laughs": lambda net: b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><edXML>&b;</edXML>',
    "wrong namespace": lambda net: b'<edXML xmlns="urn:other"><x/></edXML>',
    "changed after signing": lambda net: _tampered(_signed(net, H54, [H54_DISTRICT], "21")),
    "unknown signer": lambda net: _stranger_signed(net, H54, [H54_DISTRICT], "22"),
    "not a recipient": lambda net: _signed(net, H54, [G22], "23"),
    "unsigned": lambda net: vbdt.write(_doc(net, H54, [H54_DISTRICT], "24")),
}
STAGE = {"not xml": "parse", "billion laughs": "parse", "wrong namespace": "parse", "changed after signing": "verify",
         "unknown signer": "verify", "not a recipient": "recipient", "unsigned": "verify"}


# Refused after the signature verified: the sender and the DocumentId are authenticated, a 02 can name them.
AUTHENTICATED = {"not a recipient"}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_message_is_refused_dead_lettered_and_reported(network: Network, case: str) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT)
    body = HOSTILE[case](network)
    document_id = f"{H54},2026/11/23,{case}/UBND-VP"
    await sender.transport.publish(Outgoing(routing_key(H54_DISTRICT), body, f"{document_id}>{H54_DISTRICT}", {HEADER_KIND: "document"}))
    # the consumer keeps running: a good document sent afterwards is received
    good = await sender.send(_doc(network, H54, [H54_DISTRICT], "30"))
    (item,) = await network.pump(receiver).take()
    assert item.document_id == good.document_id
    answered = case in AUTHENTICATED
    dead = await drain_dead_letters(network.admin, 2 if answered else 1)
    refused = [h for b, h in dead if b == body]
    assert len(refused) == 1 and refused[0][HEADER_REASON].startswith(STAGE[case] + ":")
    if not answered:
        # nothing signed names a document: no 02 (it would address what the peer made up), and the reason says so
        assert refused[0][HEADER_REASON].endswith("[no 02 sent: nothing authenticated names a document to answer]")
        assert [b for b, h in dead if b != body] == [] and receiver.ledger.pending() == []
        return
    # the publisher signed it: it was told with a signed 02 naming the reason; it never recorded
    # this document, so its own pipeline keeps that receipt as a dead letter rather than dropping it
    (receipt,) = [b for b, h in dead if b != body]
    status = vbdt.verify(receipt, trust=network.folder / "ca.pem").package
    assert isinstance(status, vbdt.StatusMessage) and status.status_code is vbdt.StatusCode.REJECTED
    assert str(status.sender.organ_id) == H54_DISTRICT and f"{STAGE[case]}:" in (status.description or "")


async def test_garbage_naming_a_real_document_in_its_message_id_is_not_answered(network: Network) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT)
    sent = await sender.send(_doc(network, H54, [H54_DISTRICT], "31"))
    (item,) = await network.pump(receiver).take()
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.ARRIVED)
    # the message id is no authentication: garbage claiming to be that document rejects nothing
    await sender.transport.publish(Outgoing(routing_key(H54_DISTRICT), b"garbage", f"{sent.document_id}>{H54_DISTRICT}",
                                            {HEADER_KIND: "document"}))
    (dead,) = await drain_dead_letters(network.admin, 1)
    assert dead[1][HEADER_REASON].startswith("parse: not a readable edXML package")
    assert sender.status(sent.document_id)[0].state is DeliveryState.ARRIVED
    assert receiver.ledger.pending() == [] and item.document_id == sent.document_id
    await item.accept()  # the real document is still answered normally
    await network.eventually(lambda: sender.status(sent.document_id)[0].state is DeliveryState.ACCEPTED)


async def test_an_agency_cannot_publish_as_another(network: Network) -> None:
    # H14 publishes a package that H54 really signed: the signature is fine, the publisher is not H54
    impostor = await network.agency(H14)
    receiver = await network.agency(H54_DISTRICT)
    body = _signed(network, H54, [H54_DISTRICT], "32")
    await impostor.transport.publish(Outgoing(routing_key(H54_DISTRICT), body, "x>y", {HEADER_KIND: "document"}))
    dead = await drain_dead_letters(network.admin, 1)
    assert dead and dead[0][1][HEADER_REASON].startswith(f"publisher: published by broker user '{H14}'")
    assert network.pump(receiver).items.empty()


async def test_oversized_message(network: Network) -> None:
    sender = await network.agency(H54)
    await network.agency(H54_DISTRICT, pdf_policy="require")
    receiver = network.created[-1]
    from vbdt.errors import MessageRejected
    from vbdt.exchange.pipeline import admit

    with pytest.raises(MessageRejected, match="over the 1,000-byte limit"):
        admit(b"<x/>" * 1000, me=H54_DISTRICT, publisher=H54, trust=receiver.trust, directory=network.directory,
              limits=Limits(max_bytes=1000))
    assert sender.organ_id == H54


# -- one parse per message (issue 13) -------------------------------------------------------------


@pytest.fixture
def world(exchange_pki, example_directory: vbdt.Directory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    pki, folder = exchange_pki
    document = compose(example_directory, H54, [H54_DISTRICT], number="78", notation="UBND-VP", type_name="Công văn",
                       subject="Về việc kiểm thử", issued=date.today())
    return {"pki": pki, "trust": folder / "ca.pem", "directory": example_directory,
            "signed": vbdt.pack(document, pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54]), "document": document}


def _admit(world: dict[str, object], body: bytes) -> Admitted:
    return admit(body, me=H54_DISTRICT, publisher=H54, trust=world["trust"], directory=world["directory"])  # type: ignore[arg-type]


def test_admit_parses_the_body_once_and_builds_the_model_once(world: dict[str, object],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[int] = []
    builds: list[int] = []
    real_build = xmlparse._build

    def counted_parse(data: bytes, limits: Limits) -> object:
        parses.append(len(data))
        return real_build(data, limits)

    class CountedWalker(building.Walker):
        def __init__(self, known: list[Finding]) -> None:
            builds.append(1)
            super().__init__(known)

    monkeypatch.setattr(xmlparse, "_build", counted_parse)
    monkeypatch.setattr(building, "Walker", CountedWalker)
    body: bytes = world["signed"]  # type: ignore[assignment]
    admitted = _admit(world, body)
    assert (len(parses), len(builds)) == (1, 1)
    # what was admitted is what was signed (the PDF signed by pack), with the digest the bytes give
    document: vbdt.Document = world["document"]  # type: ignore[assignment]
    assert admitted.package.document_id == document.document_id and admitted.sender == H54
    assert admitted.digest == signed_digest(body)
    assert admitted.unpacked.pdfs and all(v.original_valid for v in admitted.unpacked.pdfs.values())
    # the same bytes through the two-parse public path give the same verdict
    opened = vbdt.unpack(body, trust=world["trust"], directory=world["directory"])  # type: ignore[arg-type]
    assert opened.package == admitted.package and opened.verified.verdict.chain == admitted.unpacked.verified.verdict.chain


def test_a_package_both_invalid_and_tampered_is_refused_at_validation(world: dict[str, object]) -> None:
    # the signature is checked before the model is built, but its failure is told after validation's
    body: bytes = world["signed"]  # type: ignore[assignment]
    other = body.replace(f"<edXML:DocumentId>{H54},".encode(), f"<edXML:DocumentId>{G22},".encode(), 1)
    assert other != body
    with pytest.raises(MessageRejected) as info:
        _admit(world, other)
    assert info.value.stage == "validate" and "EDX111" in info.value.reason and info.value.sender is None
    with pytest.raises(MessageRejected) as info:
        _admit(world, _tampered(body))
    assert info.value.stage == "verify" and info.value.sender is None
    assert _admit(world, body).sender == H54


def test_a_broken_pdf_under_a_good_envelope_is_answered_without_a_second_parse(
        world: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    document: vbdt.Document = world["document"]  # type: ignore[assignment]
    pdf = document.attachments[0].read()
    broken = document.model_copy(update={"attachments": [
        vbdt.Attachment.from_bytes("hong.pdf", pdf[: len(pdf) // 2], content_id="cid:1")]})
    body = vbdt.sign(broken, world["pki"].agencies[H54])  # type: ignore[attr-defined]
    parses: list[int] = []
    real_build = xmlparse._build
    monkeypatch.setattr(xmlparse, "_build", lambda data, limits: parses.append(1) or real_build(data, limits))
    with pytest.raises(MessageRejected) as info:
        _admit(world, body)
    # the envelope verified: the refusal names what to answer, learnt from the one parse
    assert info.value.stage == "verify" and info.value.sender == H54 and info.value.document_id == document.document_id
    assert "hong.pdf" in info.value.reason and parses == [1]
