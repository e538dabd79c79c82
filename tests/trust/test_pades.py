"""PAdES signatures of PDFs: person then seal, verification, independent checks (pdfsig, qpdf)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from conftest import require_tool
from vbdt.errors import PdfSignatureError
from vbdt.trust.pades import sign_pdf, verify_pdf
from vbdt.trust.pki import TestPki, issue_certificate
from vbdt.trust.samplepdf import make_pdf

H14 = "000.00.00.H14"


@pytest.fixture(scope="module")
def pki(h14_pki):  # type: ignore[no-untyped-def]
    return h14_pki


@pytest.fixture(scope="module")
def signed(pki: tuple[TestPki, Path]) -> bytes:
    keys, _ = pki
    return sign_pdf(make_pdf(["CHI THI", "So: 05/CT-UBND"]), person=keys.signer, seal=keys.agencies[H14], visible=True)


def test_person_then_seal_is_original_valid(pki: tuple[TestPki, Path], signed: bytes) -> None:
    _, folder = pki
    result = verify_pdf(signed, trust=folder / "ca.pem")
    assert result.original_valid, result.reasons
    person, seal = result.signatures
    assert (person.role, seal.role) == ("person", "agency")
    assert "Nguyen Van A" in person.signer and seal.organ_id == H14
    assert person.intact and person.trusted and person.modified_after == "form filling"  # only the seal's field came after
    assert seal.whole_file and seal.modified_after == "none"
    assert person.signing_time is not None and person.timestamp is None  # B-B: no time-stamp


def test_visible_seal_covers_the_left_third_of_the_signature(signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    rects = {}
    for annot in reader.root["/AcroForm"]["/Fields"]:
        field = annot.get_object()
        rects[str(field["/T"])] = [float(v) for v in field["/Rect"]]
    person = rects["Signature1_person"]
    seal = rects["Signature2_agency"]
    third = person[0] + (person[2] - person[0]) / 3
    assert seal[2] == pytest.approx(third) and seal[0] < person[0] < seal[2]
    assert seal[1] == person[1] and seal[3] == person[3]


def test_pdfsig_and_qpdf_accept_it(signed: bytes, tmp_path: Path) -> None:
    pdfsig, qpdf = require_tool("pdfsig"), require_tool("qpdf")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    report = subprocess.run([pdfsig, str(path)], capture_output=True, text=True).stdout
    assert report.count("Signature Validation: Signature is Valid.") == 2, report
    assert "Signature1_person" in report and "Signature2_agency" in report
    assert report.rstrip().split("Signature #2")[1].count("Total document signed") == 1
    check = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "No syntax or stream encoding errors" in check.stdout


@pytest.mark.parametrize("which", ["person", "seal"])
def test_one_signature_alone_is_not_original(pki: tuple[TestPki, Path], which: str) -> None:
    keys, folder = pki
    pdf = make_pdf(["x"])
    data = sign_pdf(pdf, person=keys.signer, seal=None) if which == "person" else sign_pdf(pdf, person=None, seal=keys.agencies[H14])
    result = verify_pdf(data, trust=folder / "ca.pem")
    assert not result.original_valid and all(s.intact and s.trusted for s in result.signatures)
    assert result.reasons == (["no agency seal signature after the person's signature"] if which == "person"
                              else ["no signature of the competent person"])
    with pytest.raises(PdfSignatureError, match="not original-valid"):
        result.require_original()


def test_changed_bytes_break_the_signature(pki: tuple[TestPki, Path], signed: bytes) -> None:
    _, folder = pki
    tampered = signed.replace(b"So: 05/CT-UBND", b"So: 06/CT-UBND", 1)
    assert tampered != signed
    result = verify_pdf(tampered, trust=folder / "ca.pem")
    assert not result.original_valid and not any(s.intact for s in result.signatures)


def test_content_changed_after_signing_is_reported(pki: tuple[TestPki, Path], signed: bytes) -> None:
    _, folder = pki
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 12 Tf 60 700 Td (So: 99) Tj ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    result = verify_pdf(out.getvalue(), trust=folder / "ca.pem")
    assert not result.original_valid
    assert all(s.intact and s.modified_after == "other" for s in result.signatures)
    assert "changed after this signature" in result.reasons[0]


def test_untrusted_and_expired_certificates(pki: tuple[TestPki, Path]) -> None:
    keys, folder = pki
    stranger = TestPki.create([(H14, "Impostor")])
    data = sign_pdf(make_pdf(["x"]), person=stranger.signer, seal=stranger.agencies[H14])
    result = verify_pdf(data, trust=folder / "ca.pem")
    assert not result.original_valid and not any(s.trusted for s in result.signatures)
    assert "not trusted" in result.reasons[0]
    old = issue_certificate(keys.intermediate, "Expired seal", organ_id=H14,
                            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400), days=30)
    expired = sign_pdf(make_pdf(["x"]), person=keys.signer, seal=old)
    verdict = verify_pdf(expired, trust=folder / "ca.pem")
    assert not verdict.original_valid and not verdict.signatures[1].trusted


def test_revoked_seal_certificate(pki: tuple[TestPki, Path], signed: bytes) -> None:
    keys, folder = pki
    seal = keys.agencies[H14].certificate
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(keys.intermediate.certificate.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(seal.serial_number).revocation_date(now - dt.timedelta(minutes=1)).build()
        )
        .sign(keys.intermediate.private_key, hashes.SHA256())
    )
    result = verify_pdf(signed, trust=folder / "ca.pem", crls=[crl])
    assert not result.original_valid and not result.signatures[1].trusted


def _tsa(keys: TestPki) -> DummyTimeStamper:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vbdt TEST TSA")]))
        .issuer_name(keys.intermediate.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(keys.intermediate.private_key, hashes.SHA256())
    )
    from asn1crypto import x509 as asn1_x509

    return DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        ),
        certs_to_embed=[asn1_x509.Certificate.load(keys.intermediate.certificate.public_bytes(serialization.Encoding.DER))],
    )


def test_pades_b_t_with_a_time_stamp_authority(pki: tuple[TestPki, Path]) -> None:
    keys, folder = pki
    # pyHanko's in-process TSA answers real RFC 3161 requests; an HTTP TSA is the same code path.
    data = sign_pdf(make_pdf(["x"]), person=keys.signer, seal=keys.agencies[H14], timestamper=_tsa(keys))
    result = verify_pdf(data, trust=folder / "ca.pem")
    assert result.original_valid, result.reasons
    assert all(s.timestamp is not None for s in result.signatures)


@pytest.mark.parametrize("junk", [b"", b"not a pdf", b"%PDF-1.7\n" + b"\x00" * 100, make_pdf(["x"])[:200]])
def test_hostile_or_broken_pdfs_are_clear_errors(pki: tuple[TestPki, Path], junk: bytes) -> None:
    keys, folder = pki
    with pytest.raises(PdfSignatureError):
        sign_pdf(junk, person=keys.signer, seal=keys.agencies[H14])
    with pytest.raises(PdfSignatureError):
        verify_pdf(junk, trust=folder / "ca.pem")


def test_unsigned_pdf_is_not_original(pki: tuple[TestPki, Path]) -> None:
    _, folder = pki
    result = verify_pdf(make_pdf(["x"]), trust=folder / "ca.pem")
    assert not result.original_valid and result.reasons == ["the PDF is not signed"]


async def test_sync_api_works_inside_a_running_event_loop(pki: tuple[TestPki, Path]) -> None:
    # an async DMS calling the sync API: pyHanko's own asyncio.run would fail here
    keys, folder = pki
    data = sign_pdf(make_pdf(["x"]), person=keys.signer, seal=keys.agencies[H14])
    assert verify_pdf(data, trust=folder / "ca.pem").original_valid
