"""Signing keys and certificates: loaded once, kept as objects (loading an RSA key is expensive).

A :class:`SigningKey` holds the private key, its certificate and the chain up to (not including)
the trust anchor. It is the software implementation of the signer interface; a hardware token
(PKCS#11) would provide the same three attributes with a key object whose ``sign`` calls the token.

How an agency's certificate is bound to its OrganId (enforced by :mod:`vbdt.trust.xmldsig`): the
certificate subject carries the OrganId in its ``UID`` attribute (OID 0.9.2342.19200300.100.1.1),
and/or the directory pins the certificate's SHA-256 fingerprint for that agency. When the directory
pins fingerprints for an agency, only a pinned certificate is accepted for it. The certificate
bound is always the validated leaf of :mod:`vbdt.trust.chain`, the one whose key verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from vbdt.directory.agencies import Directory
from vbdt.errors import KeyFileError, SignerMismatch

__all__ = [
    "SigningKey",
    "bind_certificate",
    "certificate_organ_id",
    "fingerprint",
    "load_certificates",
    "revocation",
]


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate and chain."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def from_pem(
        cls, key_path: str | Path, cert_path: str | Path, chain_path: str | Path | None = None,
        passphrase: bytes | None = None,
    ) -> SigningKey:
        """Load a PEM private key and certificate (and an optional PEM chain file)."""
        key = _load_key(Path(key_path), passphrase)
        certs = load_certificates(cert_path)
        chain = load_certificates(chain_path) if chain_path else certs[1:]
        return cls(key, certs[0], chain)

    @classmethod
    def from_pkcs12(cls, path: str | Path, passphrase: bytes | None) -> SigningKey:
        """Load a PKCS#12 (.p12/.pfx) file with its passphrase."""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(Path(path).read_bytes(), passphrase)
        except FileNotFoundError:
            raise KeyFileError(f"{path}: no such file") from None
        except ValueError as exc:
            raise KeyFileError(f"{path}: cannot open PKCS#12 ({exc}); is the passphrase right?") from None
        if key is None or cert is None or not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyFileError(f"{path}: no RSA or EC private key with a certificate inside")
        return cls(key, cert, list(extra))

    def check_pair(self) -> None:
        """Raise :class:`~vbdt.errors.KeyFileError` unless the private key is the certificate's."""
        if self.certificate.public_key() != self.private_key.public_key():
            raise KeyFileError(f"the key does not match its certificate {self.certificate.subject.rfc4514_string()}")

    @property
    def organ_id(self) -> str | None:
        """The OrganId in the certificate subject (UID), if any."""
        return certificate_organ_id(self.certificate)


def _load_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), passphrase)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a usable PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{path}: only RSA and EC keys are supported")
    return key


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every PEM certificate in a file (at least one)."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such certificate file") from None
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM certificate file ({exc})") from None
    return certs


def certificate_organ_id(cert: x509.Certificate) -> str | None:
    """The OrganId a certificate names in its subject UID attribute."""
    values = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value) if values else None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, lowercase hex without separators (the form the directory pins)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def revocation(cert: x509.Certificate, crls: list[x509.CertificateRevocationList]) -> str | None:
    """Why ``cert`` is revoked according to ``crls`` (from its issuer), or ``None``."""
    for crl in crls:
        if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(cert.serial_number):
            return f"certificate {cert.subject.rfc4514_string()} is revoked (CRL of {crl.issuer.rfc4514_string()})"
    return None


def bind_certificate(cert: x509.Certificate, agency: str, directory: Directory | None) -> str:
    """Check that ``cert`` belongs to ``agency``; return how (``"pinned"`` or ``"uid"``).

    The one binding rule of vbdt, for the envelope signature and the PDF agency seal alike: when
    the directory pins certificate fingerprints for the agency, the certificate must be one of
    them; otherwise its subject UID must be the agency's OrganId. Raises SignerMismatch.
    """
    pins: list[str] = []
    if directory is not None and agency in directory:
        pins = [p.lower().replace(":", "") for p in directory.get(agency).cert_fingerprints]
    if pins:
        if fingerprint(cert) in pins:
            return "pinned"
        raise SignerMismatch(f"certificate {cert.subject.rfc4514_string()} is not one pinned for {agency}")
    uid = certificate_organ_id(cert)
    if uid == agency:
        return "uid"
    raise SignerMismatch(
        f"certificate {cert.subject.rfc4514_string()} belongs to {uid or 'no agency'}, but the package is from {agency}"
    )
