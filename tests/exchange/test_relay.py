"""Relaying a received document to subordinate agencies, and the forgeries the relay rule must refuse.

A relay is a new document of the relaying agency whose ResponseFor names the original and which
carries the original's PDF unchanged, sealed by the original's issuer. The receiver accepts that
seal only for the agency the ResponseFor names, on bytes that agency signed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

import vbdt
from conftest import H14, H54, H54_COMMUNES, H54_DISTRICT, Network
from vbdt.errors import PdfSignatureError, UsageError
from vbdt.exchange.relay import relay_document, relay_subject
from vbdt.testing import assert_status, make_document
from vbdt.trust.packaging import pack, relay_origins, unpack
from vbdt.trust.pades import sign_pdf

COMMUNE = H54_COMMUNES[0]


def _org(directory: vbdt.Directory, organ_id: str) -> vbdt.Organization:
    return directory.organization(organ_id)


def _issued(pki: Any, directory: vbdt.Directory, issuer: str, to: str) -> vbdt.Document:
    """A document of ``issuer`` as its recipient reads it: PDF signed by a person and sealed by ``issuer``."""
    key = pki.agencies[issuer]
    return vbdt.read(pack(make_document(directory, issuer, [to]), key, person=pki.signer, seal=key))


def _relay(pki: Any, directory: vbdt.Directory, original: vbdt.Document, **changes: Any) -> bytes:
    """The district's relay of ``original`` to a commune, signed by the district (``changes`` forge it)."""
    document = relay_document(original, sender=_org(directory, H54_DISTRICT), recipients=[_org(directory, COMMUNE)],
                              code=vbdt.Code(number="12", notation="UBND-VP"))
    if changes:
        document = document.model_copy(update=changes)
    key = pki.agencies[H54_DISTRICT]
    return pack(document, key, person=pki.signer, seal=key)


def test_a_relay_carries_the_original_pdf_unchanged_and_verifies(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    original = _issued(pki, example_directory, H54, H54_DISTRICT)
    opened = unpack(_relay(pki, example_directory, original), trust=folder / "ca.pem", directory=example_directory)
    relayed = opened.package
    assert isinstance(relayed, vbdt.Document)
    assert str(relayed.sender.organ_id) == H54_DISTRICT and opened.verified.agency == H54_DISTRICT
    assert [(str(r.organ_id), r.document_id) for r in relayed.response_for] == [(H54, original.document_id)]
    assert relayed.attachments[0].read() == original.attachments[0].read()  # byte for byte
    verdict = opened.pdfs[original.attachments[0].name]
    assert verdict.original_valid, verdict.reasons
    assert [s.organ_id for s in verdict.signatures if s.role == "agency"] == [H54]  # the province's seal, kept
    assert relay_origins(relayed) == {H54}
    assert relayed.subject == relay_subject(original) and relayed.subject.startswith("Chuyển văn bản số ")


def test_a_pdf_sealed_by_another_agency_than_the_one_response_for_names_is_refused(
        exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    """The forged relay: ResponseFor names the province H54, the PDF is sealed by H14."""
    pki, folder = exchange_pki
    original = _issued(pki, example_directory, H54, H54_DISTRICT)
    other = _issued(pki, example_directory, H14, H54_DISTRICT)
    forged = _relay(pki, example_directory, original, attachments=other.attachments)
    with pytest.raises(PdfSignatureError, match="not the sending agency's"):
        unpack(forged, trust=folder / "ca.pem", directory=example_directory)
    reported = unpack(forged, trust=folder / "ca.pem", directory=example_directory, pdf_policy="report")
    assert not reported.pdfs[other.attachments[0].name].original_valid


def test_a_pdf_of_the_named_agency_with_changed_bytes_is_refused(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    original = _issued(pki, example_directory, H54, H54_DISTRICT)
    sealed = original.attachments[0].read()
    assert b"VAN BAN THU NGHIEM" in sealed  # the page's text, in the signed range
    changed = vbdt.Attachment.from_bytes(original.attachments[0].name, sealed.replace(b"VAN BAN THU NGHIEM", b"VAN BAN THU NGHIEN"),
                                         content_id="cid:1")
    forged = _relay(pki, example_directory, original, attachments=[changed])
    with pytest.raises(PdfSignatureError, match="not original-valid"):
        unpack(forged, trust=folder / "ca.pem", directory=example_directory)


def test_the_exception_needs_a_response_for_that_names_a_document_of_the_sealing_agency(
        exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    original = _issued(pki, example_directory, H54, H54_DISTRICT)
    h14_document = _issued(pki, example_directory, H14, H54_DISTRICT)
    about = vbdt.ResponseFor(organ_id=H54, document_id=h14_document.document_id)  # H54 named, but an H14 DocumentId
    for response_for in ([], [about]):
        forged = _relay(pki, example_directory, original, response_for=response_for)
        with pytest.raises(PdfSignatureError, match="not the sending agency's"):
            unpack(forged, trust=folder / "ca.pem", directory=example_directory)


def test_relay_document_refuses_what_is_no_relay(example_directory: vbdt.Directory) -> None:
    original = make_document(example_directory, H54, [H54_DISTRICT])
    code = vbdt.Code(number="1", notation="UBND")
    with pytest.raises(UsageError, match="own document"):
        relay_document(original, sender=_org(example_directory, H54), recipients=[_org(example_directory, COMMUNE)], code=code)
    with pytest.raises(UsageError, match="needs recipients"):
        relay_document(original, sender=_org(example_directory, H54_DISTRICT), recipients=[], code=code)
    with pytest.raises(UsageError, match="to itself"):
        relay_document(original, sender=_org(example_directory, H54_DISTRICT),
                       recipients=[_org(example_directory, H54_DISTRICT)], code=code)


async def test_a_district_relays_a_provincial_directive_to_its_communes(network: Network) -> None:
    province = await network.agency(H54)
    district = await network.agency(H54_DISTRICT)
    communes = [await network.agency(c) for c in H54_COMMUNES]
    sent = await province.send(make_document(network.directory, H54, [H54_DISTRICT]))
    (item,) = await network.pump(district).take()
    async with item:
        await item.accept()
        result = await district.relay(item, to=H54_COMMUNES, code=vbdt.Code(number="7", notation="UBND-VP"))
    assert sorted(result.recipients) == sorted(H54_COMMUNES) and not result.unroutable and not result.failed
    original_pdf = item.document.attachments[0].read()
    for commune in communes:
        (relayed,) = await network.pump(commune).take()
        assert relayed.sender == H54_DISTRICT and relayed.document_id == result.document_id
        assert [r.document_id for r in relayed.document.response_for] == [sent.document_id]
        assert relayed.document.attachments[0].read() == original_pdf
        assert relayed.verdict is not None
        (pdf,) = relayed.verdict.pdfs.values()
        assert pdf.original_valid and {s["organ_id"] for s in pdf.signatures if s["role"] == "agency"} == {H54}
        await relayed.complete("Đã triển khai")
        await relayed.ack()
    for commune_id in H54_COMMUNES:
        await assert_status(district, result.document_id, commune_id, "06", within=15)
    await assert_status(province, sent.document_id, H54_DISTRICT, "03", within=15)


async def test_a_forged_relay_is_refused_with_a_02(exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    """End to end: the district's client sends a 'relay' whose PDF H14 sealed; the commune answers 02."""
    from vbdt.exchange.memory import MemoryBroker

    pki, folder = exchange_pki
    broker = MemoryBroker()
    broker.provision([H54_DISTRICT, COMMUNE])
    refused: list[str] = []
    clients = [vbdt.AgencyClient(o, transport=broker.connect(o), ledger=vbdt.SqliteLedger(tmp_path / f"{o}.db"),
                                 key=pki.agencies[o], trust=folder / "ca.pem", directory=example_directory,
                                 person=pki.signer, seal=pki.agencies[o],
                                 on_refused=(lambda exc, user: refused.append(exc.reason)) if o == COMMUNE else None)
               for o in (H54_DISTRICT, COMMUNE)]
    async with clients[0] as district, clients[1]:
        original = _issued(pki, example_directory, H54, H54_DISTRICT)
        other = _issued(pki, example_directory, H14, H54_DISTRICT)
        forged = relay_document(original, sender=_org(example_directory, H54_DISTRICT),
                                recipients=[_org(example_directory, COMMUNE)], code=vbdt.Code(number="13", notation="UBND-VP"),
                                ).model_copy(update={"attachments": other.attachments})
        result = await district.send(forged)
        delivered = await assert_status(district, result.document_id, COMMUNE, "02", within=15)
        assert "not the sending agency's" in (delivered.reason or "")
    assert refused and "not the sending agency's" in refused[0]


async def test_relay_refuses_a_recall_request_and_a_pdf_that_was_not_original_valid(network: Network) -> None:
    if network.kind != "memory":
        pytest.skip("what relay() refuses does not depend on the transport")
    province = await network.agency(H54)
    district = await network.agency(H54_DISTRICT, pdf_policy="report")  # takes a PDF that is not original-valid
    document = make_document(network.directory, H54, [H54_DISTRICT])
    unsealed = sign_pdf(document.attachments[0].read(), person=network.pki.signer, seal=None)  # type: ignore[attr-defined]
    document = document.model_copy(update={"attachments": [vbdt.Attachment.from_bytes("1.pdf", unsealed, content_id="cid:1")]})
    sent = await province.send(document)  # signed PDFs are sent as they are: this one has no seal
    (item,) = await network.pump(district).take()
    await item.ack()
    assert item.verdict is not None and not item.verdict.pdfs["1.pdf"].original_valid
    code = vbdt.Code(number="8", notation="UBND-VP")
    with pytest.raises(UsageError, match="not original-valid on receipt"):
        await district.relay(item, to=H54_COMMUNES, code=code)
    assert district.status(f"{H54_DISTRICT},{date.today():%Y/%m/%d},{code}") == []  # nothing recorded
    await province.recall(sent.document_id, "Thu hồi để sửa")
    (recall,) = await network.pump(district).take()
    assert recall.kind == "recall"
    with pytest.raises(UsageError, match="recall request"):
        await district.relay(recall, to=H54_COMMUNES, code=code)
