"""Who signed: the certificate bound to the sender is the one whose key verified and whose chain was validated.

Attacks on the unsigned, unordered KeyInfo (a self-made certificate naming the victim put first, the
attacker's real certificate last; extra certificates), and signers the policy refuses (a CA, a TLS
server certificate), through ``verify``, ``unpack`` and ``admit``. After each, the victim's own
package still verifies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from lxml import etree

import vbdt
from vbdt.edxml.codes import Priority, StatusCode
from vbdt.edxml.model import (
    Attachment,
    Business,
    Code,
    DocumentType,
    Organization,
    OtherInfo,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
)
from vbdt.edxml.xmlparse import DS_NS
from vbdt.errors import CertificateRejected, MessageRejected, SignatureInvalid, SignerMismatch, TrustError
from vbdt.exchange.pipeline import admit
from vbdt.trust.chain import TrustStore, check_signer, signer_among
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import unpack
from vbdt.trust.pki import TestPki, issue_certificate, make_ca
from vbdt.trust.samplepdf import make_pdf
from vbdt.trust.xmldsig import sign, verify

G22, H14, H54 = "000.00.00.G22", "000.00.00.H14", "000.00.00.H54"
pytestmark = pytest.mark.usefixtures("dsig_backend")  # every test on signxml and on python-xmlsec
VICTIM, ATTACKER, RECEIVER = H14, H54, G22
X509_DATA = f".//{{{DS_NS}}}X509Data"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, example_directory: vbdt.Directory) -> tuple[TestPki, Path]:
    pki = TestPki.create([(o, example_directory.get(o).name) for o in (G22, H14, H54)])
    folder = tmp_path_factory.mktemp("binding-pki")
    pki.write(folder)
    return pki, folder


def _document(directory: vbdt.Directory) -> vbdt.Document:
    """A document claiming to be from the victim, to the receiver."""
    code = Code(number="77", notation="UBND-VP")
    return vbdt.Document(
        sender=directory.organization(VICTIM),
        recipients=[directory.organization(RECEIVER)],
        code=code,
        promulgation=PromulgationInfo(place=None, date=date.today()),
        document_type=DocumentType(type=1, type_detail=1, type_name="Công văn"),
        subject="Về việc kiểm thử chữ ký",
        signer=SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Nguyễn Văn A"),
        other_info=OtherInfo(priority=Priority.NORMAL, promulgation_amount=1, page_amount=1),
        business=Business(staff_info=StaffInfo(department="Văn thư", staff="Văn thư")),
        attachments=[Attachment.from_bytes("77-UBND-VP.pdf", make_pdf(["UBND", "So: 77/UBND-VP"]), content_id="cid:1")],
    )


def _status(directory: vbdt.Directory) -> StatusMessage:
    """A status 02 claiming to be from the victim, about a document the receiver issued."""
    return StatusMessage(
        sender=Organization(organ_id=VICTIM, organ_name=directory.get(VICTIM).name),
        response_for=ResponseFor(organ_id=RECEIVER, code=Code(number="12", notation="BC-VPCP"),
                                 promulgation_date=date.today(), document_id=f"{RECEIVER},{date.today():%Y/%m/%d},12/BC-VPCP"),
        status_code=StatusCode.REJECTED,
        description="Văn bản gửi nhầm đơn vị",
        timestamp=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )


def _self_made(subject_of: x509.Certificate, *, issuer: SigningKey | None = None) -> x509.Certificate:
    """A certificate with the victim's subject (UID=victim OrganId); self-signed unless ``issuer``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject_of.subject)
        .issuer_name(issuer.certificate.subject if issuer else subject_of.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(issuer.private_key if issuer else key, hashes.SHA256())
    )


def _with_keyinfo(signed: bytes, certs: list[x509.Certificate]) -> bytes:
    """The signed bytes with KeyInfo's certificates replaced (KeyInfo is outside the signature)."""
    root = etree.fromstring(signed)
    data = root.find(X509_DATA)
    for old in list(data):
        data.remove(old)
    for cert in certs:
        element = etree.SubElement(data, f"{{{DS_NS}}}X509Certificate")
        element.text = "".join(cert.public_bytes(serialization.Encoding.PEM).decode().splitlines()[1:-1])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# Each forgery: the attacker signs the victim-claimed package with its own real key, then sets KeyInfo.
FORGERIES: dict[str, Callable[[TestPki], list[x509.Certificate]]] = {
    # the review's attack: a self-made certificate naming the victim first, the attacker's real one last
    "victim-named-first": lambda k: [_self_made(k.agencies[VICTIM].certificate), k.intermediate.certificate,
                                     k.agencies[ATTACKER].certificate],
    # the same, the attacker's chain reversed
    "victim-named-first-reversed": lambda k: [_self_made(k.agencies[VICTIM].certificate),
                                              k.agencies[ATTACKER].certificate, k.intermediate.certificate],
    # the victim's own, real and valid certificate alongside the attacker's
    "victims-real-certificate-added": lambda k: [k.agencies[VICTIM].certificate, k.agencies[ATTACKER].certificate,
                                                 k.intermediate.certificate],
    # a victim-named certificate "issued" by the attacker's end-entity key, so it looks like the only leaf
    "issued-by-attacker-leaf": lambda k: [_self_made(k.agencies[VICTIM].certificate, issuer=k.agencies[ATTACKER]),
                                          k.agencies[ATTACKER].certificate, k.intermediate.certificate],
    # only the victim-named certificate: the key that signed is nowhere
    "victim-named-only": lambda k: [_self_made(k.agencies[VICTIM].certificate), k.intermediate.certificate],
}


def _forge(keys: TestPki, package: vbdt.Document | StatusMessage, forgery: str) -> bytes:
    return _with_keyinfo(sign(package, keys.agencies[ATTACKER]), FORGERIES[forgery](keys))


def _kinds(directory: vbdt.Directory) -> dict[str, vbdt.Document | StatusMessage]:
    return {"document": _document(directory), "status": _status(directory)}


@pytest.mark.parametrize("kind", ["document", "status"])
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_keyinfo_forgery_is_refused_by_verify_unpack_and_admit(  # type: ignore[no-untyped-def]
    pki, example_directory: vbdt.Directory, forgery: str, kind: str
) -> None:
    keys, folder = pki
    package = _kinds(example_directory)[kind]
    forged = _forge(keys, package, forgery)
    trust = folder / "ca.pem"
    with pytest.raises((CertificateRejected, SignerMismatch, SignatureInvalid)) as caught:
        verify(forged, trust=trust, directory=example_directory)
    assert not isinstance(caught.value, SignatureInvalid) or forgery == "victim-named-only"
    with pytest.raises(TrustError):
        unpack(forged, trust=trust, directory=example_directory, pdf_policy="ignore")
    with pytest.raises(MessageRejected) as rejected:
        admit(forged, me=RECEIVER, publisher=None, check_publisher=False, trust=trust, directory=example_directory,
              pdf_policy="ignore")
    assert rejected.value.stage == "verify"
    # the victim keeps working: its own package verifies, bound to it, through all three
    good = sign(package, keys.agencies[VICTIM])
    assert verify(good, trust=trust, directory=example_directory).certificate == keys.agencies[VICTIM].certificate
    assert unpack(good, trust=trust, directory=example_directory, pdf_policy="ignore").package == package
    admitted = admit(good, me=RECEIVER, publisher=VICTIM, trust=trust, directory=example_directory, pdf_policy="ignore")
    assert admitted.sender == VICTIM and admitted.kind == kind


def test_the_attackers_key_with_a_clean_keyinfo_is_a_signer_mismatch(pki, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    for package in _kinds(example_directory).values():
        with pytest.raises(SignerMismatch, match=f"belongs to {ATTACKER}, but the package is from {VICTIM}"):
            verify(sign(package, keys.agencies[ATTACKER]), trust=folder / "ca.pem")


def test_keyinfo_order_does_not_matter_and_the_anchor_may_be_sent(pki, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    document = _document(example_directory)
    victim = keys.agencies[VICTIM].certificate
    for certs in ([keys.intermediate.certificate, victim], [keys.root.certificate, victim, keys.intermediate.certificate]):
        result = verify(_with_keyinfo(sign(document, keys.agencies[VICTIM]), certs), trust=folder / "ca.pem")
        assert result.certificate == victim and result.verdict.leaf == victim
        assert result.verdict.chain == (victim, keys.intermediate.certificate, keys.root.certificate)


@pytest.mark.parametrize(
    "extra",
    [
        lambda k: make_ca("Unrelated CA").certificate,  # a CA on no chain at all
        lambda k: make_ca("Another issuing CA", issuer=k.root).certificate,  # a trusted CA, off the signer's chain
        lambda k: _self_made(k.agencies[ATTACKER].certificate),
    ],
    ids=["unrelated-root", "sibling-ca", "stray-end-entity"],
)
def test_extra_certificates_in_keyinfo_are_refused(pki, example_directory: vbdt.Directory, extra) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    document = _document(example_directory)
    chain = [keys.agencies[VICTIM].certificate, keys.intermediate.certificate]
    with pytest.raises(CertificateRejected, match="not on the signer's chain|do not form one chain"):
        verify(_with_keyinfo(sign(document, keys.agencies[VICTIM]), [*chain, extra(keys)]), trust=folder / "ca.pem")
    assert verify(sign(document, keys.agencies[VICTIM]), trust=folder / "ca.pem").agency == VICTIM


def _ca_signer(issuer: SigningKey, subject: x509.Name) -> SigningKey:
    """A CA certificate (CA=true) that is otherwise fit to sign: digitalSignature, the victim's UID."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, True, True, False, False), critical=True)
        .sign(issuer.private_key, hashes.SHA256())
    )
    return SigningKey(key, cert, [])


def test_a_ca_certificate_may_not_sign(pki, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    # issued by the root, so its chain is valid: being a CA is the only reason to refuse it
    ca = _ca_signer(keys.root, keys.agencies[VICTIM].certificate.subject)
    document = _document(example_directory)
    for package in (document, _status(example_directory)):
        with pytest.raises(CertificateRejected, match="CA certificate; a signer must be an end entity"):
            verify(sign(package, ca), trust=folder / "ca.pem")
    assert verify(sign(document, keys.agencies[VICTIM]), trust=folder / "ca.pem").agency == VICTIM


DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
MS_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")
ADOBE = ObjectIdentifier("1.2.840.113583.1.1.5")


@pytest.mark.parametrize(
    ("usages", "allowed"),
    [
        ([ExtendedKeyUsageOID.SERVER_AUTH], False),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
        ([ExtendedKeyUsageOID.CODE_SIGNING], False),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], False),
        ([DOCUMENT_SIGNING], True),
        ([MS_DOCUMENT_SIGNING], True),
        ([ADOBE], True),
        ([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION], True),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], True),
        (None, True),  # no EKU: the key usage decides
    ],
    ids=["tls-server", "tls-client", "code-signing", "tls-both", "document-signing", "ms-document-signing", "adobe",
         "client-and-email", "any", "none"],
)
def test_extended_key_usage_policy(pki, example_directory: vbdt.Directory, usages, allowed: bool) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signer = issue_certificate(keys.intermediate, "UBND Tỉnh Cao Bằng", organ_id=VICTIM, extended_key_usage=usages)
    document = _document(example_directory)
    signed = sign(document, signer)
    if allowed:
        assert verify(signed, trust=folder / "ca.pem").certificate == signer.certificate
    else:
        with pytest.raises(CertificateRejected, match="may not sign documents: its extended key usage is only"):
            verify(signed, trust=folder / "ca.pem")
        assert verify(sign(document, keys.agencies[VICTIM]), trust=folder / "ca.pem").agency == VICTIM


def _key_usage_only(issuer: SigningKey, usage: x509.KeyUsage | None) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cao Bằng"), x509.NameAttribute(NameOID.USER_ID, VICTIM)])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    return SigningKey(key, builder.sign(issuer.private_key, hashes.SHA256()), [issuer.certificate])


@pytest.mark.parametrize(
    ("usage", "allowed"),
    [
        (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),  # digitalSignature
        (x509.KeyUsage(False, True, False, False, False, False, False, False, False), True),  # nonRepudiation
        (x509.KeyUsage(False, False, True, False, False, False, False, False, False), False),  # keyEncipherment
        (None, False),
    ],
    ids=["digital-signature", "non-repudiation", "key-encipherment-only", "no-key-usage"],
)
def test_key_usage_failures_are_certificate_rejections(pki, example_directory: vbdt.Directory, usage, allowed: bool) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signer = _key_usage_only(keys.intermediate, usage)
    signed = sign(_document(example_directory), signer)
    if allowed:
        assert verify(signed, trust=folder / "ca.pem").certificate == signer.certificate
    else:
        with pytest.raises(CertificateRejected, match="KeyUsage allows neither digitalSignature nor nonRepudiation"):
            verify(signed, trust=folder / "ca.pem")


def test_signer_among_and_the_trust_store(pki) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    leaf, mid, root = keys.agencies[VICTIM].certificate, keys.intermediate.certificate, keys.root.certificate
    assert signer_among([mid, root, leaf]) == leaf
    with pytest.raises(CertificateRejected, match="one chain"):
        signer_among([leaf, keys.agencies[ATTACKER].certificate, mid])
    check_signer(leaf)
    with pytest.raises(CertificateRejected, match="CA certificate"):
        check_signer(mid)
    store = TrustStore.from_pem(folder / "ca.pem")
    verdict = store.validate(leaf, [mid])
    assert verdict.chain == (leaf, mid, root) and verdict.leaf == leaf
    assert verdict.valid_until == min(c.not_valid_after_utc for c in (leaf, mid, root))
    # a verdict lapses with the CRL's next update
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(mid.subject).last_update(now)
        .next_update(now + dt.timedelta(hours=6)).sign(keys.intermediate.private_key, hashes.SHA256())
    )
    assert TrustStore([root], [crl]).validate(leaf, [mid]).valid_until == crl.next_update_utc
    # a CRL in the issuer's name that the issuer did not sign is refused, never skipped
    forged = (
        x509.CertificateRevocationListBuilder().issuer_name(mid.subject).last_update(now)
        .next_update(now + dt.timedelta(hours=6)).sign(keys.agencies[ATTACKER].private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateRejected, match="not signed by its issuer"):
        TrustStore([root], [forged]).validate(leaf, [mid])
    with pytest.raises(CertificateRejected, match="does not chain"):
        store.validate(leaf, [])
    with pytest.raises(CertificateRejected, match="cannot read the trust anchors"):
        TrustStore.from_pem(folder / "missing.pem")


def test_verify_takes_a_trust_store_built_once(pki, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    store = TrustStore.from_pem(folder / "ca.pem")
    document = _document(example_directory)
    signed = sign(document, keys.agencies[VICTIM])
    assert verify(signed, trust=store).package == document
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(keys.intermediate.certificate.subject).last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(keys.agencies[VICTIM].certificate.serial_number)
                                 .revocation_date(now).build())
        .sign(keys.intermediate.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateRejected, match="revoked"):
        verify(signed, trust=store, crls=[crl])
    assert verify(signed, trust=store).agency == VICTIM  # the store itself was not changed


def test_keyinfo_certificates_are_bounded(pki, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    keys, folder = pki
    document = _document(example_directory)
    signed = sign(document, keys.agencies[VICTIM])
    flood = _with_keyinfo(signed, [keys.agencies[VICTIM].certificate, *[keys.intermediate.certificate] * 16])
    with pytest.raises(CertificateRejected, match="max_keyinfo_certificates"):
        verify(flood, trust=folder / "ca.pem")
    tight = dataclasses.replace(vbdt.DEFAULT_LIMITS, max_keyinfo_certificates=1)
    with pytest.raises(CertificateRejected, match="over the limit of 1"):
        verify(signed, trust=folder / "ca.pem", limits=tight)
    assert verify(signed, trust=folder / "ca.pem").agency == VICTIM
