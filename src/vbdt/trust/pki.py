"""A TEST-ONLY PKI for demos and tests: a root CA, an intermediate, one key per agency.

Never use these keys for real documents: they are generated without protection and written in the
clear. ``vbdt pki init DIR`` writes ``DIR/ca.pem`` (root, the trust anchor), ``DIR/intermediate.pem``,
and per agency ``DIR/<OrganId>.key.pem`` and ``DIR/<OrganId>.cert.pem`` (certificate then chain).
Agency certificates carry the OrganId in the subject UID, which is how vbdt binds them to agencies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vbdt.keys import PrivateKey, SigningKey

__all__ = ["TestPki", "issue_certificate", "make_ca"]

_UTC = dt.UTC


def _name(common_name: str, organ_id: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vbdt TEST PKI - not for real documents"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if organ_id:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, organ_id))
    return x509.Name(attrs)


def _new_key(kind: str) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str, *, issuer: SigningKey | None = None, days: int = 3650) -> SigningKey:
    """A CA certificate (self-signed when no issuer)."""
    key = _new_key("rsa")
    now = dt.datetime.now(_UTC) - dt.timedelta(minutes=5)
    subject = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    cert = builder.sign(issuer.private_key if issuer else key, hashes.SHA256())
    # Chains stop below the root: the root is the trust anchor the verifier already has.
    return SigningKey(key, cert, [])


def issue_certificate(
    issuer: SigningKey,
    common_name: str,
    *,
    organ_id: str | None = None,
    kind: str = "rsa",
    not_before: dt.datetime | None = None,
    days: int = 825,
    digital_signature: bool = True,
) -> SigningKey:
    """An end-entity signing certificate issued by ``issuer`` (chain: issuer up to the root, root excluded)."""
    key = _new_key(kind)
    start = not_before or dt.datetime.now(_UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organ_id))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(issuer.private_key, hashes.SHA256())
    )
    return SigningKey(key, cert, [issuer.certificate])


@dataclass
class TestPki:
    """Root, intermediate and per-agency keys, all in memory."""

    __test__ = False  # not a pytest class

    root: SigningKey
    intermediate: SigningKey
    agencies: dict[str, SigningKey]
    signer: SigningKey
    """A person's certificate (no OrganId: a person, not an agency) for the demo signer."""

    @classmethod
    def create(cls, organ_ids: Iterable[tuple[str, str]], *, kind: str = "rsa",
               signer_name: str = "Nguyen Van A") -> TestPki:
        """A PKI with a certificate for each (OrganId, name) and one for a signing person."""
        root = make_ca("vbdt TEST Root CA")
        intermediate = make_ca("vbdt TEST Issuing CA", issuer=root)
        agencies = {oid: issue_certificate(intermediate, name, organ_id=oid, kind=kind) for oid, name in organ_ids}
        signer = issue_certificate(intermediate, signer_name, kind=kind)
        return cls(root, intermediate, agencies, signer)

    def write(self, directory: Path) -> None:
        """``ca.pem``, ``intermediate.pem``, ``<OrganId>.key.pem`` / ``.cert.pem`` per agency, and
        ``signer.key.pem`` / ``signer.cert.pem`` for the person."""
        directory.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        (directory / "ca.pem").write_bytes(self.root.certificate.public_bytes(pem))
        (directory / "intermediate.pem").write_bytes(self.intermediate.certificate.public_bytes(pem))
        for stem, key in [*self.agencies.items(), ("signer", self.signer)]:
            (directory / f"{stem}.key.pem").write_bytes(
                key.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            )
            (directory / f"{stem}.cert.pem").write_bytes(b"".join(c.public_bytes(pem) for c in (key.certificate, *key.chain)))
