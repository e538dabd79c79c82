"""Attacks on the PDF layer: a foreign seal, a seal posing as a person, shadow updates after the
seal, and files built to make validation cost too much. Each is refused, and the genuine document
of the same sender still verifies afterwards."""

from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from test_pades import _tsa

import vbdt
from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import PdfSignatureError
from vbdt.trust.keys import SigningKey, fingerprint
from vbdt.trust.packaging import pack, unpack
from vbdt.trust.pades import sign_pdf, verify_pdf
from vbdt.trust.pki import TestPki, issue_certificate
from vbdt.trust.samplepdf import make_pdf

H14, H54 = "000.00.00.H14", "000.00.00.H54"


@pytest.fixture(scope="module")
def pki(h14_pki):  # type: ignore[no-untyped-def]
    return h14_pki


@pytest.fixture(scope="module")
def genuine(pki: tuple[TestPki, Path]) -> bytes:
    keys, _ = pki
    return sign_pdf(make_pdf(["CHI THI", "So: 05/CT-UBND"]), person=keys.signer, seal=keys.agencies[H14], visible=True)


@pytest.fixture(scope="module")
def other_seal(pki: tuple[TestPki, Path]) -> SigningKey:
    """The seal of another agency, issued by the same trusted CA."""
    keys, _ = pki
    return issue_certificate(keys.intermediate, "UBND Tinh Lang Son", organ_id=H54)


def victim_still_works(genuine: bytes, folder: Path) -> None:
    result = verify_pdf(genuine, trust=folder / "ca.pem", agency=H14)
    assert result.original_valid, result.reasons


def _pyhanko_signer(key: SigningKey) -> signers.SimpleSigner:
    der = serialization.Encoding.DER
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(key.certificate.public_bytes(der)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1_x509.Certificate.load(c.public_bytes(der)) for c in key.chain]),
    )


def _write(writer: IncrementalPdfFileWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- point 3: the seal belongs to the sender, the person is a person --------------------------------


def test_seal_of_another_agency_is_refused(pki: tuple[TestPki, Path], genuine: bytes, other_seal: SigningKey) -> None:
    keys, folder = pki
    forged = sign_pdf(make_pdf(["CHI THI", "So: 05/CT-UBND"]), person=keys.signer, seal=other_seal)
    result = verify_pdf(forged, trust=folder / "ca.pem", agency=H14)
    assert not result.original_valid
    assert result.signatures[1].organ_id == H54 and not result.signatures[1].valid
    assert any("not the sending agency's" in r and H54 in r for r in result.reasons), result.reasons
    # without an expected sender the seal's agency is reported, for the caller to judge
    assert verify_pdf(forged, trust=folder / "ca.pem").signatures[1].organ_id == H54
    victim_still_works(genuine, folder)


def test_package_whose_pdf_another_agency_sealed_is_refused(
    pki: tuple[TestPki, Path], directive: vbdt.Document, other_seal: SigningKey
) -> None:
    keys, folder = pki
    forged = pack(directive, keys.agencies[H14], person=keys.signer, seal=other_seal)
    with pytest.raises(PdfSignatureError, match="not the sending agency's"):
        unpack(forged, trust=folder / "ca.pem")
    good = unpack(pack(directive, keys.agencies[H14], person=keys.signer, seal=keys.agencies[H14]), trust=folder / "ca.pem")
    assert all(v.original_valid for v in good.pdfs.values()) and good.pdfs


def test_person_signature_made_with_a_seal_certificate_is_refused(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    keys, folder = pki
    seal = keys.agencies[H14]
    with pytest.raises(PdfSignatureError, match="not a person's certificate"):
        sign_pdf(make_pdf(["x"]), person=seal, seal=seal)
    # made anyway, the seal twice: no person signed
    twice = sign_pdf(sign_pdf(make_pdf(["x"]), person=None, seal=seal), person=None, seal=seal)
    result = verify_pdf(twice, trust=folder / "ca.pem", agency=H14)
    assert [s.role for s in result.signatures] == ["agency", "agency"]
    assert not result.original_valid and "no signature of the competent person" in result.reasons
    victim_still_works(genuine, folder)


def test_person_signature_made_with_a_pinned_seal_without_uid_is_refused(
    pki: tuple[TestPki, Path], genuine: bytes, example_directory: vbdt.Directory
) -> None:
    # The agency's seal certificate carries no UID: the directory pins it. Used as "the person",
    # it would look like a person's certificate to anyone who ignored the pins.
    keys, folder = pki
    pinned_seal = issue_certificate(keys.intermediate, "UBND Tinh Cao Bang - con dau")
    agencies = [a.model_copy(update={"cert_fingerprints": [fingerprint(pinned_seal.certificate)]})
                if str(a.organ_id) == H14 else a for a in example_directory]
    directory = vbdt.Directory(agencies)
    forged = sign_pdf(make_pdf(["x"]), person=pinned_seal, seal=pinned_seal)
    result = verify_pdf(forged, trust=folder / "ca.pem", agency=H14, directory=directory)
    assert [s.role for s in result.signatures] == ["agency", "agency"]
    assert [s.organ_id for s in result.signatures] == [H14, H14]
    assert not result.original_valid and "no signature of the competent person" in result.reasons
    # the pinned seal after a real person is what the directory asks for
    good = sign_pdf(make_pdf(["x"]), person=keys.signer, seal=pinned_seal)
    assert verify_pdf(good, trust=folder / "ca.pem", agency=H14, directory=directory).original_valid
    # and with pins, the UID seal that is not pinned is not the agency's any more
    unpinned = verify_pdf(genuine, trust=folder / "ca.pem", agency=H14, directory=directory)
    assert not unpinned.original_valid and "not one pinned" in "; ".join(unpinned.reasons)
    victim_still_works(genuine, folder)


def test_a_personal_uid_that_is_not_an_organ_id_is_a_person(pki: tuple[TestPki, Path]) -> None:
    # Vietnamese personal certificates carry UID=CCCD:<number>; that names no agency.
    keys, folder = pki
    citizen = issue_certificate(keys.intermediate, "Tran Thi B", organ_id="CCCD:001089012345")
    data = sign_pdf(make_pdf(["x"]), person=citizen, seal=keys.agencies[H14])
    result = verify_pdf(data, trust=folder / "ca.pem", agency=H14)
    assert result.original_valid, result.reasons
    assert [s.role for s in result.signatures] == ["person", "agency"]


# -- point 4: nothing a reader sees may change after the seal -----------------------------------------


def _shadow_signature(signed: bytes, key: SigningKey, *, visible: bool) -> bytes:
    """A third signature after the seal; visible, its appearance covers the page with new text."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    box = (0, 0, 595, 842) if visible else None
    meta = signers.PdfSignatureMetadata(field_name="Shadow", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    pdf_signer = signers.PdfSigner(
        meta, signer=_pyhanko_signer(key),
        stamp_style=TextStampStyle(stamp_text="So: 99/CT-UBND - BAN SUA DOI", border_width=1) if visible else None,
        new_field_spec=fields.SigFieldSpec("Shadow", box=box, on_page=0),
    )
    return pdf_signer.sign_pdf(writer).getvalue()  # type: ignore[attr-defined]


def _covering_annotation(signed: bytes) -> bytes:
    """A FreeText annotation whose appearance paints the page white and writes other text on it."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0]
    page_box = generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)])
    font = generic.DictionaryObject({pdf_name("/Type"): pdf_name("/Font"), pdf_name("/Subtype"): pdf_name("/Type1"),
                                     pdf_name("/BaseFont"): pdf_name("/Helvetica")})
    appearance = writer.add_object(generic.StreamObject(
        {pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Form"), pdf_name("/BBox"): page_box,
         pdf_name("/Resources"): generic.DictionaryObject(
             {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})})},
        stream_data=b"1 1 1 rg 0 0 595 842 re f 0 g BT /F1 14 Tf 60 780 Td (So: 99/CT-UBND) Tj ET",
    ))
    annotation = writer.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/FreeText"),
        pdf_name("/Rect"): page_box, pdf_name("/Contents"): pdf_string("So: 99/CT-UBND"),
        pdf_name("/DA"): pdf_string("/Helv 14 Tf 0 g"),
        pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
    }))
    annots = page.get("/Annots")
    if isinstance(annots, generic.ArrayObject):
        annots.append(annotation)
    else:
        page[pdf_name("/Annots")] = generic.ArrayObject([annotation])
    writer.update_container(page)
    if isinstance(page.raw_get("/Annots"), generic.IndirectObject):
        writer.mark_update(page.raw_get("/Annots"))
    return _write(writer)


@pytest.mark.parametrize("attack", ["visible signature", "invisible signature", "annotation"])
def test_shadow_updates_after_the_seal_are_refused(pki: tuple[TestPki, Path], genuine: bytes, attack: str) -> None:
    keys, folder = pki
    if attack == "annotation":
        shadowed = _covering_annotation(genuine)
    else:
        shadowed = _shadow_signature(genuine, keys.signer, visible=attack == "visible signature")
    result = verify_pdf(shadowed, trust=folder / "ca.pem", agency=H14)
    assert not result.original_valid
    seal = result.signatures[1]
    assert seal.role == "agency" and seal.intact and seal.trusted and not seal.valid
    assert "after the agency seal" in "; ".join(result.reasons) or "changed after this signature" in seal.problems[-1]
    victim_still_works(genuine, folder)


def _document_timestamp(signed: bytes, stamper: TimeStamper) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    return signers.PdfTimeStamper(stamper).timestamp_pdf(writer, md_algorithm="sha256").getvalue()  # type: ignore[attr-defined]


def test_a_document_time_stamp_after_the_seal_still_passes(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    keys, folder = pki
    stamped = _document_timestamp(genuine, _tsa(keys))
    result = verify_pdf(stamped, trust=folder / "ca.pem", agency=H14)
    assert result.original_valid, result.reasons
    person, seal, stamp = result.signatures
    assert (person.role, seal.role, stamp.role) == ("person", "agency", "timestamp")
    assert seal.modified_after == "validation data" and stamp.timestamp is not None and stamp.whole_file
    # a time-stamp does not make a later shadow signature acceptable
    shadowed = _shadow_signature(stamped, keys.signer, visible=True)
    assert not verify_pdf(shadowed, trust=folder / "ca.pem", agency=H14).original_valid


# -- point 7: bounded work -------------------------------------------------------------------------------


def _many_signature_fields(signed: bytes, count: int) -> bytes:
    """``count`` more filled signature fields in one update, each carrying the seal's signature."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    form = writer.root["/AcroForm"]
    seal_value = form["/Fields"][1].raw_get("/V")
    for i in range(count):
        form["/Fields"].append(writer.add_object(generic.DictionaryObject({
            pdf_name("/FT"): pdf_name("/Sig"), pdf_name("/T"): pdf_string(f"Copy{i}"), pdf_name("/V"): seal_value,
        })))
    writer.update_container(form)
    if isinstance(form.raw_get("/Fields"), generic.IndirectObject):
        writer.mark_update(form.raw_get("/Fields"))
    return _write(writer)


def _many_revisions(pdf: bytes, count: int) -> bytes:
    """``count`` incremental updates, each a new object and a classic cross-reference section.

    Written by hand because pyHanko re-reads the whole chain for every update it writes (quadratic)."""
    trailer = PdfFileReader(io.BytesIO(pdf)).trailer
    root, size = trailer.raw_get("/Root"), int(trailer["/Size"])
    data = bytearray(pdf)
    prev = int(pdf[pdf.rindex(b"startxref") + 9:].split()[0])
    for i in range(count):
        number = size + i
        offset = len(data)
        data += b"%d 0 obj\n(update %d)\nendobj\n" % (number, i)
        xref = len(data)
        data += b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            number, offset, number + 1, root.idnum, prev, xref)
        prev = xref
    return bytes(data)


def test_120_signatures_are_refused_fast(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    crowded = _many_signature_fields(genuine, 118)
    assert len(PdfFileReader(io.BytesIO(crowded)).embedded_signatures) == 120  # what pyHanko would validate
    start = time.perf_counter()
    with pytest.raises(PdfSignatureError, match="max_pdf_signatures"):
        verify_pdf(crowded, trust=folder / "ca.pem", agency=H14)
    assert time.perf_counter() - start < 2.0
    victim_still_works(genuine, folder)


def test_120_revisions_are_refused_fast(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    layered = _many_revisions(genuine, 120)
    assert PdfFileReader(io.BytesIO(layered)).xrefs.total_revisions == 123  # a real chain of updates
    start = time.perf_counter()
    with pytest.raises(PdfSignatureError, match="max_pdf_revisions"):
        verify_pdf(layered, trust=folder / "ca.pem", agency=H14)
    assert time.perf_counter() - start < 2.0
    victim_still_works(genuine, folder)


def test_the_limits_are_the_configured_ones(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    with pytest.raises(PdfSignatureError, match=r"max_pdf_signatures"):
        verify_pdf(genuine, trust=folder / "ca.pem", limits=dataclasses.replace(DEFAULT_LIMITS, max_pdf_signatures=1))
    with pytest.raises(PdfSignatureError, match=r"max_pdf_revisions \(2\)"):
        verify_pdf(genuine, trust=folder / "ca.pem", limits=dataclasses.replace(DEFAULT_LIMITS, max_pdf_revisions=2))
    victim_still_works(genuine, folder)


def _field_dag(levels: int) -> bytes:
    """A form whose fields share their kids: a tree of 2**levels paths over ``levels`` objects."""
    writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf(["x"])))
    node = writer.add_object(generic.DictionaryObject({pdf_name("/FT"): pdf_name("/Sig"), pdf_name("/T"): pdf_string("leaf")}))
    for i in range(levels):
        node = writer.add_object(generic.DictionaryObject({
            pdf_name("/T"): pdf_string(f"n{i}"), pdf_name("/Kids"): generic.ArrayObject([node, node])}))
    writer.root[pdf_name("/AcroForm")] = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject([node])})
    writer.update_root()
    return _write(writer)


def test_a_form_tree_that_is_not_a_tree_is_refused_fast(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    start = time.perf_counter()
    with pytest.raises(PdfSignatureError, match="not a tree"):
        verify_pdf(_field_dag(30), trust=folder / "ca.pem")  # pyHanko alone walks 2**30 paths
    assert time.perf_counter() - start < 2.0
    victim_still_works(genuine, folder)

