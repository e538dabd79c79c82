"""XML-DSig of packages: sign, verify, bind to the sender, refuse tampering; interop with xmlsec1."""

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

import vbdt
from conftest import require_tool
from vbdt.edxml.xmlparse import DS_NS, EDXML_NS
from vbdt.trust.pki import TestPki, issue_certificate
from vbdt.trust.xmldsig import (
    CertificateRejected,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    TrustError,
    sign,
    verify,
)

H14, H54 = "000.00.00.H14", "000.00.00.H54"
pytestmark = pytest.mark.usefixtures("dsig_backend")  # every test on signxml and on python-xmlsec


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, Path]:
    pki = TestPki.create([(H14, "UBND Tỉnh Cao Bằng"), (H54, "UBND Tỉnh Thái Bình")])
    folder = tmp_path_factory.mktemp("pki")
    pki.write(folder)
    return pki, folder


def test_sign_and_verify_returns_what_was_signed(pki, directive: vbdt.Document, example_directory) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    result = verify(signed, trust=folder / "ca.pem", directory=example_directory)
    assert result.package == directive
    assert result.agency == H14 and result.binding == "uid"
    assert result.signature_algorithm.endswith("rsa-sha256") and not result.warnings
    assert "UBND Tỉnh Cao Bằng" in result.signer and len(result.chain) == 3  # leaf, issuing CA, root
    assert result.verdict.leaf == keys.agencies[H14].certificate == result.certificate
    assert result.verdict.chain[-1] == keys.root.certificate
    # the signature sits where the profile says, and the package still validates
    root = etree.fromstring(signed)
    header = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")
    assert header[-1].tag == f"{{{DS_NS}}}Signature"
    assert vbdt.validate(signed).valid


def test_ecdsa_p256(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    ec_key = issue_certificate(keys.intermediate, "UBND Tỉnh Cao Bằng", organ_id=H14, kind="ec")
    result = verify(sign(directive, ec_key), trust=folder / "ca.pem")
    assert result.signature_algorithm.endswith("ecdsa-sha256")


def test_another_agencys_valid_signature_is_rejected(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    with pytest.raises(SignerMismatch, match=f"belongs to {H54}, but the package is from {H14}"):
        verify(sign(directive, keys.agencies[H54]), trust=folder / "ca.pem")


def test_pinned_fingerprint_overrides_uid(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    other = issue_certificate(keys.intermediate, "Cao Bằng 2", organ_id=H14)
    pinned = other.certificate.fingerprint(hashes.SHA256()).hex()
    directory = vbdt.Directory.from_rows([{"organ_id": H14, "name": "x", "level": "province", "cert_fingerprints": [pinned]}])
    assert verify(sign(directive, other), trust=folder / "ca.pem", directory=directory).binding == "pinned"
    with pytest.raises(SignerMismatch, match="not one pinned"):
        verify(sign(directive, keys.agencies[H14]), trust=folder / "ca.pem", directory=directory)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b.replace("Về việc tăng".encode(), "Về việc giảm".encode()),
        lambda b: b.replace(b"<edXML:CodeNumber>05<", b"<edXML:CodeNumber>06<"),
        lambda b: b.replace(b"JVBERi0x", b"JVBERi0y"),  # the attachment
    ],
    ids=["header", "code", "attachment"],
)
def test_changes_after_signing_are_caught(pki, directive: vbdt.Document, tamper) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    with pytest.raises(SignatureInvalid):
        verify(tamper(sign(directive, keys.agencies[H14])), trust=folder / "ca.pem")


def _wrap_second_header(b: bytes) -> bytes:
    root = etree.fromstring(b)
    envelope = root.find(f"{{{EDXML_NS}}}edXMLEnvelope")
    envelope.append(etree.fromstring(etree.tostring(envelope.find(f"{{{EDXML_NS}}}edXMLHeader/{{{EDXML_NS}}}MessageHeader"))))
    return etree.tostring(root)


def _move_signature(b: bytes) -> bytes:
    root = etree.fromstring(b)
    sig = root.find(f".//{{{DS_NS}}}Signature")
    root.append(sig)
    return etree.tostring(root)


def _duplicate_signature(b: bytes) -> bytes:
    root = etree.fromstring(b)
    sig = root.find(f".//{{{DS_NS}}}Signature")
    sig.getparent().insert(0, etree.fromstring(etree.tostring(sig)))
    return etree.tostring(root)


def _id_reference(b: bytes) -> bytes:
    return b.replace(b'URI=""', b'URI="#x"', 1)


def _extra_reference(b: bytes) -> bytes:
    root = etree.fromstring(b)
    ref = root.find(f".//{{{DS_NS}}}Reference")
    ref.addnext(etree.fromstring(etree.tostring(ref)))
    return etree.tostring(root)


def _second_envelope(b: bytes) -> bytes:
    root = etree.fromstring(b)
    root.insert(0, etree.fromstring(etree.tostring(root.find(f"{{{EDXML_NS}}}edXMLEnvelope"))))
    return etree.tostring(root)


def _doctype(b: bytes) -> bytes:
    return b.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "x">]>', 1)


@pytest.mark.parametrize(
    ("attack", "error"),
    [
        (_wrap_second_header, SignatureProfileError),
        (_move_signature, SignatureProfileError),
        (_duplicate_signature, SignatureProfileError),
        (_id_reference, SignatureProfileError),
        (_extra_reference, SignatureProfileError),
        (_second_envelope, SignatureProfileError),
        (_doctype, vbdt.UnsafeXml),
        (lambda b: b.replace(b"<edXML:Subject>", b"<edXML:Subject> "), SignatureInvalid),
    ],
    ids=["second-header", "moved", "duplicated", "id-reference", "extra-reference", "second-envelope", "dtd", "whitespace"],
)
def test_signature_wrapping_and_games(pki, directive: vbdt.Document, attack, error) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    with pytest.raises(error):
        verify(attack(sign(directive, keys.agencies[H14])), trust=folder / "ca.pem")


def test_comments_are_outside_the_signature_and_change_nothing(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14]).replace(b"<edXML:Subject>", b"<!-- injected --><edXML:Subject>")
    assert verify(signed, trust=folder / "ca.pem").package == directive  # exclusive C14N drops comments


def test_untrusted_expired_revoked_and_swapped(pki, directive: vbdt.Document, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    stranger = TestPki.create([(H14, "Impostor")])
    stranger.write(tmp_path)
    with pytest.raises(CertificateRejected):
        verify(signed, trust=tmp_path / "ca.pem")  # a different root
    with pytest.raises(CertificateRejected):
        verify(sign(directive, stranger.agencies[H14]), trust=folder / "ca.pem")
    old = issue_certificate(keys.intermediate, "old", organ_id=H14, not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=30)
    with pytest.raises(CertificateRejected, match="expired|not valid"):
        verify(sign(directive, old), trust=folder / "ca.pem")
    # revoked: a CRL from the issuing CA naming the signer's serial
    cert = keys.agencies[H14].certificate
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(keys.intermediate.certificate.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
        .sign(keys.intermediate.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateRejected, match="revoked"):
        verify(signed, trust=folder / "ca.pem", crls=[crl])
    # a certificate swapped in KeyInfo: the signature no longer matches its key
    other = etree.fromstring(sign(directive, issue_certificate(keys.intermediate, "x", organ_id=H14)))
    root = etree.fromstring(signed)
    cert_path = f".//{{{DS_NS}}}X509Certificate"
    root.find(cert_path).text = other.find(cert_path).text
    swapped = etree.tostring(root)
    with pytest.raises(TrustError):
        verify(swapped, trust=folder / "ca.pem")


def test_unsigned_and_legacy_samples() -> None:
    from conftest import INTEROP

    data = (INTEROP / "new-document-small.edxml").read_bytes()
    with pytest.raises(SignatureProfileError, match="not signed"):
        verify(data, trust=__file__)
    with pytest.raises(SignatureProfileError, match="SHA-1"):
        verify(data.replace(b"<Signature>", b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">')
               .replace(b"</Signature>", b"</Signature>"), trust=__file__)


def test_xmlsec1_verifies_what_vbdt_signs(pki, directive: vbdt.Document, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    xmlsec1 = require_tool("xmlsec1")
    keys, folder = pki
    path = tmp_path / "signed.edxml"
    path.write_bytes(sign(directive, keys.agencies[H14]))
    result = subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(folder / "ca.pem"), "--untrusted-pem", str(folder / "intermediate.pem"), str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0 and "OK" in result.stdout + result.stderr


def _xmlsec1_sign(directive: vbdt.Document, folder: Path, tmp_path: Path, *, sha1: bool = False,
                  sha1_digest: bool | None = None) -> bytes:
    """Sign with the xmlsec1 command-line tool from a template in the edXML profile (SHA-1 for the
    signature method with ``sha1``, for the digest with ``sha1_digest``, which follows ``sha1`` by default)."""
    xmlsec1 = require_tool("xmlsec1")
    from vbdt.edxml.writer import serialize, to_tree

    root = to_tree(directive)
    header = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")
    ds = f"{{{DS_NS}}}"
    method = "http://www.w3.org/2000/09/xmldsig#rsa-sha1" if sha1 else "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    digest = "http://www.w3.org/2000/09/xmldsig#sha1" if (sha1 if sha1_digest is None else sha1_digest) else "http://www.w3.org/2001/04/xmlenc#sha256"
    sig = etree.SubElement(header, ds + "Signature", nsmap={"ds": DS_NS})
    info = etree.SubElement(sig, ds + "SignedInfo")
    etree.SubElement(info, ds + "CanonicalizationMethod", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(info, ds + "SignatureMethod", Algorithm=method)
    ref = etree.SubElement(info, ds + "Reference", URI="")
    transforms = etree.SubElement(ref, ds + "Transforms")
    etree.SubElement(transforms, ds + "Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    etree.SubElement(transforms, ds + "Transform", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(ref, ds + "DigestMethod", Algorithm=digest)
    etree.SubElement(ref, ds + "DigestValue")
    etree.SubElement(sig, ds + "SignatureValue")
    data = etree.SubElement(etree.SubElement(sig, ds + "KeyInfo"), ds + "X509Data")
    etree.SubElement(data, ds + "X509Certificate")
    template = tmp_path / "template.edxml"
    template.write_bytes(serialize(root))
    out = tmp_path / "signed-by-xmlsec1.edxml"
    result = subprocess.run(
        [xmlsec1, "--sign", "--privkey-pem", f"{folder / (H14 + '.key.pem')},{folder / (H14 + '.cert.pem')},{folder / 'intermediate.pem'}", "--output", str(out), str(template)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def test_vbdt_verifies_what_xmlsec1_signs(pki, directive: vbdt.Document, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _keys, folder = pki
    verified = verify(_xmlsec1_sign(directive, folder, tmp_path), trust=folder / "ca.pem")
    assert verified.package == directive and verified.agency == H14 and not verified.weak
    assert verified.signing_time == directive.trace[-1].timestamp


def test_legacy_sha1_verifies_only_on_request_and_says_it_is_weak(pki, directive: vbdt.Document, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _keys, folder = pki
    signed = _xmlsec1_sign(directive, folder, tmp_path, sha1=True)
    with pytest.raises(SignatureProfileError, match="SHA-1"):
        verify(signed, trust=folder / "ca.pem")
    result = verify(signed, trust=folder / "ca.pem", legacy_sha1=True)
    assert result.package == directive and result.weak
    assert result.signature_algorithm.endswith("rsa-sha1")
    assert any("SHA-1" in w for w in result.warnings)


@pytest.mark.parametrize(("sha1", "sha1_digest", "weak_part"), [(False, True, "digest"), (True, False, "signature method")],
                         ids=["sha256-signature-over-sha1-digest", "sha1-signature-over-sha256-digest"])
def test_any_sha1_verifies_only_on_request_and_warns(pki, directive: vbdt.Document, tmp_path: Path, sha1: bool,  # type: ignore[no-untyped-def]
                                                     sha1_digest: bool, weak_part: str) -> None:
    _keys, folder = pki
    signed = _xmlsec1_sign(directive, folder, tmp_path, sha1=sha1, sha1_digest=sha1_digest)
    with pytest.raises(SignatureProfileError, match="SHA-1; it verifies only with legacy_sha1=True"):
        verify(signed, trust=folder / "ca.pem")
    result = verify(signed, trust=folder / "ca.pem", legacy_sha1=True)
    assert result.package == directive and result.weak
    assert [w for w in result.warnings if "SHA-1" in w and weak_part in w]


def test_large_attachment_signs_and_verifies(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    # 8 MB is 10.7 MB of base64: over libxml2's default 10 MB text-node cap, which signxml's own
    # parser would hit when it re-parses the document
    keys, folder = pki
    big = directive.model_copy(update={"attachments": [vbdt.Attachment.from_bytes("scan.pdf", b"%PDF" + b"\x07" * 8_000_000, content_id="cid:1")]})
    result = verify(sign(big, keys.agencies[H14]), trust=folder / "ca.pem")
    assert result.package.attachments[0].size == 8_000_004


def test_sign_tree_signs_in_place_what_sign_signs_and_leaves_the_tree_whole(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    """sign_tree (the sender's one tree, checked then signed) writes the bytes sign() writes for the
    same bytes, big attachment included, and leaves the tree whole to be read on."""
    from vbdt.edxml.xmlparse import parse_xml
    from vbdt.trust.xmldsig import sign_tree

    keys, folder = pki
    big = vbdt.Document(**{**directive.__dict__, "attachments": [
        *directive.attachments, vbdt.Attachment.from_bytes("phu-luc.pdf", b"%PDF-1.4 " + bytes(range(256)) * 6000,
                                                           content_id="cid:big")]})
    for document in (directive, big):
        written = vbdt.write(document)
        tree = parse_xml(written)
        signed = sign_tree(tree, keys.agencies[H14])
        assert signed == sign(written, keys.agencies[H14])
        assert etree.tostring(tree.getroot(), xml_declaration=True, encoding="UTF-8") + b"\n" == signed  # whole
        assert verify(signed, trust=folder / "ca.pem").package == document
        with pytest.raises(SignatureProfileError, match="signed already"):
            sign_tree(tree, keys.agencies[H14])
    beside = parse_xml(vbdt.write(directive).replace(b"<edXML:edXML", b"<!-- x --><edXML:edXML", 1))
    with pytest.raises(SignatureProfileError, match="beside the root"):
        sign_tree(beside, keys.agencies[H14])
