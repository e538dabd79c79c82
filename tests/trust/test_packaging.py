"""Both layers: PDFs signed before the envelope; receiving verifies both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vbdt
from vbdt.errors import DuplicateAttachment, PdfSignatureError, SignatureInvalid
from vbdt.trust.packaging import PdfPolicy, is_pdf, name_key, pack, unpack
from vbdt.trust.pades import sign_pdf
from vbdt.trust.pki import TestPki
from vbdt.trust.samplepdf import make_pdf
from vbdt.trust.xmldsig import sign

H14 = "000.00.00.H14"


@pytest.fixture(scope="module")
def pki(h14_pki):  # type: ignore[no-untyped-def]
    return h14_pki


def test_pack_signs_pdfs_then_envelope_and_unpack_checks_both(pki: tuple[TestPki, Path], directive: vbdt.Document) -> None:
    keys, folder = pki
    data = pack(directive, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14])
    opened = unpack(data, trust=folder / "ca.pem")
    assert opened.verified.agency == H14
    (name, pdf), = opened.pdfs.items()
    assert name == directive.attachments[0].name and pdf.original_valid
    assert [s.role for s in pdf.signatures] == ["person", "agency"]
    # everything but the PDF bytes is what was built
    assert opened.package.model_copy(update={"attachments": directive.attachments}) == directive


def test_unsigned_pdf_is_refused_unless_only_reported(pki: tuple[TestPki, Path], directive: vbdt.Document) -> None:
    keys, folder = pki
    data = pack(directive, keys.agencies[H14])
    with pytest.raises(PdfSignatureError, match="not original-valid: the PDF is not signed"):
        unpack(data, trust=folder / "ca.pem")
    report = unpack(data, trust=folder / "ca.pem", pdf_policy="report")
    assert not report.pdfs[directive.attachments[0].name].original_valid
    assert unpack(data, trust=folder / "ca.pem", pdf_policy="ignore").pdfs == {}


def test_already_signed_pdfs_are_not_signed_twice(pki: tuple[TestPki, Path], directive: vbdt.Document) -> None:
    keys, folder = pki
    signed_pdf = sign_pdf(directive.attachments[0].read(), person=keys.signer, seal=keys.agencies[H14])
    doc = directive.model_copy(update={"attachments": [vbdt.Attachment.from_bytes("05-CT-UBND.pdf", signed_pdf, content_id="cid:1")]})
    opened = unpack(pack(doc, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14]), trust=folder / "ca.pem")
    assert len(opened.pdfs["05-CT-UBND.pdf"].signatures) == 2


def test_pdf_swapped_after_the_envelope_was_signed(pki: tuple[TestPki, Path], directive: vbdt.Document) -> None:
    keys, folder = pki
    data = pack(directive, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14])
    # replace a chunk of the base64 PDF: the envelope digest catches it before the PDF is looked at
    i = data.index(b"JVBER") + 40  # inside the base64 of "%PDF-"
    tampered = data[:i] + (b"A" if data[i:i + 1] != b"A" else b"B") + data[i + 1:]
    with pytest.raises(SignatureInvalid):
        unpack(tampered, trust=folder / "ca.pem")


# -- issue 9 point 14: nothing hides behind a name or a label ------------------------------------------


def _with(doc: vbdt.Document, *extra: vbdt.Attachment) -> vbdt.Document:
    return doc.model_copy(update={"attachments": [*doc.attachments, *extra]})


@pytest.mark.parametrize("twin", ["05-CT-UBND.PDF", "05-CT-UBND.pdf ", " 05-CT-UBND.pdf.", "０５-CT-UBND.pdf",
                                  "05-CT-UBND\u200b.pdf", "05-CT-UBND.pdf\u00a0"])
def test_duplicate_names_are_refused_by_pack(pki: tuple[TestPki, Path], directive: vbdt.Document, twin: str) -> None:
    keys, folder = pki
    assert directive.attachments[0].name == "05-CT-UBND.pdf"
    doc = _with(directive, vbdt.Attachment.from_bytes(twin, make_pdf(["ban khac"]), content_id="cid:2"))
    assert name_key(twin) == name_key("05-CT-UBND.pdf")
    with pytest.raises(DuplicateAttachment, match="same name"):
        pack(doc, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14])
    # the sender keeps working: the same package without the twin packs and unpacks
    opened = unpack(pack(directive, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14]), trust=folder / "ca.pem")
    assert opened.pdfs["05-CT-UBND.pdf"].original_valid


@pytest.mark.parametrize("policy", ["require", "report", "ignore"])
def test_an_unsigned_pdf_behind_a_signed_one_of_the_same_name_is_refused(
    pki: tuple[TestPki, Path], directive: vbdt.Document, policy: PdfPolicy
) -> None:
    keys, folder = pki
    signed_pdf = sign_pdf(directive.attachments[0].read(), person=keys.signer, seal=keys.agencies[H14])
    # a hostile sender signs the envelope itself, skipping pack's check
    doc = directive.model_copy(update={"attachments": [
        vbdt.Attachment.from_bytes("05-CT-UBND.pdf", make_pdf(["So: 99/CT-UBND"]), content_id="cid:1"),
        vbdt.Attachment.from_bytes("05-CT-UBND.pdf", signed_pdf, content_id="cid:2"),
    ]})
    with pytest.raises(DuplicateAttachment):
        unpack(sign(doc, keys.agencies[H14]), trust=folder / "ca.pem", pdf_policy=policy)
    good = pack(directive, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14])
    assert unpack(good, trust=folder / "ca.pem", pdf_policy=policy).package.document_id == directive.document_id


DISGUISES = [
    ("trailing space", "phu-luc.pdf ", "application/pdf", b""),
    ("second extension", "phu-luc.pdf.bin", "application/octet-stream", b""),
    ("other label", "phu-luc.dat", "application/x-pdf", b""),
    ("text label", "phu-luc.txt", "text/plain", b""),
    ("header after junk", "phu-luc.bin", "application/octet-stream", b"junk before the header\n" * 20),
]


@pytest.mark.parametrize(("label", "name", "content_type", "prefix"), DISGUISES, ids=[d[0] for d in DISGUISES])
def test_a_pdf_is_checked_whatever_its_name_or_label(
    pki: tuple[TestPki, Path], directive: vbdt.Document, label: str, name: str, content_type: str, prefix: bytes
) -> None:
    keys, folder = pki
    hidden = vbdt.Attachment.from_bytes(name, prefix + make_pdf(["So: 99/CT-UBND"]), content_id="cid:2",
                                        content_type=content_type)
    assert is_pdf(hidden)
    signed_pdf = sign_pdf(directive.attachments[0].read(), person=keys.signer, seal=keys.agencies[H14])
    doc = directive.model_copy(update={"attachments": [
        vbdt.Attachment.from_bytes("05-CT-UBND.pdf", signed_pdf, content_id="cid:1"), hidden]})
    data = pack(doc, keys.agencies[H14])  # the envelope is signed, the hidden PDF is not
    with pytest.raises(PdfSignatureError, match=f"attachment {re.escape(name)} is not original-valid"):
        unpack(data, trust=folder / "ca.pem")
    report = unpack(data, trust=folder / "ca.pem", pdf_policy="report")
    assert report.pdfs["05-CT-UBND.pdf"].original_valid and not report.pdfs[name].original_valid
    # pack recognises it the same way: it signs it, or (junk before the header) refuses to send it unsigned
    if prefix:
        with pytest.raises(PdfSignatureError, match="not a readable PDF"):
            pack(doc, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14])
        return
    opened = unpack(pack(doc, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14]), trust=folder / "ca.pem")
    assert opened.pdfs[name].original_valid and opened.pdfs["05-CT-UBND.pdf"].original_valid


def test_a_file_labelled_pdf_that_is_not_one_is_not_original(pki: tuple[TestPki, Path], directive: vbdt.Document) -> None:
    keys, folder = pki
    doc = _with(directive, vbdt.Attachment.from_bytes("bia.pdf", b"hello, not a PDF", content_id="cid:2"))
    signed_pdf = sign_pdf(directive.attachments[0].read(), person=keys.signer, seal=keys.agencies[H14])
    doc.attachments[0] = vbdt.Attachment.from_bytes("05-CT-UBND.pdf", signed_pdf, content_id="cid:1")
    data = pack(doc, keys.agencies[H14])
    with pytest.raises(PdfSignatureError, match="bia.pdf is not original-valid: not a readable PDF"):
        unpack(data, trust=folder / "ca.pem")
    report = unpack(data, trust=folder / "ca.pem", pdf_policy="report")
    assert not report.pdfs["bia.pdf"].original_valid and report.pdfs["05-CT-UBND.pdf"].original_valid
    # readers look for the header in the first 1024 bytes only; a text quoting it later is text
    assert not is_pdf(vbdt.Attachment.from_bytes("notes.txt", b" " * 1024 + b"%PDF-1.7", content_id="cid:3"))
