"""Both layers: PDFs signed before the envelope; receiving verifies both."""

from __future__ import annotations

from pathlib import Path

import pytest

import vbdt
from vbdt.errors import PdfSignatureError, SignatureInvalid
from vbdt.packaging import pack, unpack
from vbdt.pades import sign_pdf
from vbdt.pki import TestPki

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
