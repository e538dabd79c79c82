"""A TEST-ONLY PKI for demos and tests: a root CA, an intermediate, one key per agency.

Never use these keys for real documents: they are generated without protection and written in the
clear. ``vbdt pki init DIR`` writes ``DIR/ca.pem`` (root, the trust anchor), ``DIR/intermediate.pem``
and ``DIR/intermediate.key.pem`` (the issuing CA, kept so that :func:`add_agencies`, ``vbdt pki add``,
can certify agencies later), and per agency ``DIR/<OrganId>.key.pem`` and ``DIR/<OrganId>.cert.pem``
(certificate then chain). Private keys are written mode 0600 from their first byte, every file
atomically (a temporary name, then a rename); the root's private key is not kept.
Agency certificates carry the OrganId in the subject UID, which is how vbdt binds them to agencies.
Agency and person certificates are end entities that pass the signer policy of
:mod:`vbdt.trust.chain`: KeyUsage digitalSignature and nonRepudiation, ExtendedKeyUsage
id-kp-documentSigning and emailProtection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from vbdt.errors import KeyFileError
from vbdt.trust.keys import PrivateKey, SigningKey

__all__ = [
    "CA_FILES",
    "SIGNING_USAGES",
    "TestPki",
    "add_agencies",
    "agency_files",
    "certify",
    "existing_ca",
    "issue_certificate",
    "load_issuer",
    "make_ca",
]

CA_FILES = ("ca.pem", "intermediate.pem", "intermediate.key.pem")
"""The files of a test CA in its folder: the root (trust anchor), the issuing CA and its key."""

SIGNING_USAGES: tuple[ObjectIdentifier, ...] = (ObjectIdentifier("1.3.6.1.5.5.7.3.36"), ExtendedKeyUsageOID.EMAIL_PROTECTION)
"""The extended key usages of test signing certificates: id-kp-documentSigning, emailProtection."""

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
    extended_key_usage: Sequence[ObjectIdentifier] | None = SIGNING_USAGES,
) -> SigningKey:
    """An end-entity signing certificate issued by ``issuer`` (chain: issuer up to the root, root excluded).

    ``extended_key_usage=None`` leaves the extension out; tests pass other purposes to check the policy.
    """
    key = _new_key(kind)
    cert = certify(issuer, common_name, key.public_key(), organ_id=organ_id, not_before=not_before, days=days,
                   digital_signature=digital_signature, extended_key_usage=extended_key_usage)
    return SigningKey(key, cert, [issuer.certificate])


def certify(
    issuer: SigningKey,
    common_name: str,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    *,
    organ_id: str | None = None,
    not_before: dt.datetime | None = None,
    days: int = 825,
    digital_signature: bool = True,
    extended_key_usage: Sequence[ObjectIdentifier] | None = SIGNING_USAGES,
) -> x509.Certificate:
    """An end-entity signing certificate for a public key whose private key is kept elsewhere
    (for instance generated on a PKCS#11 token)."""
    key = public_key
    start = not_before or dt.datetime.now(_UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organ_id))
        .issuer_name(issuer.certificate.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
    return builder.sign(issuer.private_key, hashes.SHA256())


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
        """``ca.pem``, ``intermediate.pem`` and ``intermediate.key.pem``, ``<OrganId>.key.pem`` /
        ``.cert.pem`` per agency, and ``signer.key.pem`` / ``signer.cert.pem`` for the person.

        Overwrites what is there: callers that must not (``vbdt pki init``) check :func:`existing_ca`.
        """
        directory.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        _write(directory / "ca.pem", self.root.certificate.public_bytes(pem))
        _write(directory / "intermediate.pem", self.intermediate.certificate.public_bytes(pem))
        _write_key(directory / "intermediate.key.pem", self.intermediate)
        for stem, key in [*self.agencies.items(), ("signer", self.signer)]:
            _write_key(directory / f"{stem}.key.pem", key)
            _write(directory / f"{stem}.cert.pem", b"".join(c.public_bytes(pem) for c in (key.certificate, *key.chain)))


def existing_ca(directory: Path) -> list[Path]:
    """The files of a test CA (:data:`CA_FILES`) already in ``directory``."""
    return [directory / name for name in CA_FILES if (directory / name).exists()]


def agency_files(directory: Path, organ_id: str) -> tuple[Path, Path]:
    """``<OrganId>.key.pem`` and ``<OrganId>.cert.pem`` in ``directory``."""
    return directory / f"{organ_id}.key.pem", directory / f"{organ_id}.cert.pem"


def load_issuer(directory: Path) -> SigningKey:
    """The issuing CA that ``vbdt pki init`` kept in ``directory`` (``intermediate.pem`` and its key).

    Raises :class:`~vbdt.errors.KeyFileError` when they are missing (a folder written before the
    key was kept), do not match, or are not a CA.
    """
    key_path, cert_path = directory / "intermediate.key.pem", directory / "intermediate.pem"
    missing = [p.name for p in (key_path, cert_path, directory / "ca.pem") if not p.is_file()]
    if missing:
        raise KeyFileError(f"{directory}: no test CA to issue from ({', '.join(missing)} missing); "
                           "create one with vbdt pki init")
    issuer = SigningKey.from_pem(key_path, cert_path)
    try:
        issuer.check_pair()
    except KeyFileError as exc:
        raise KeyFileError(f"{key_path}: {exc}") from None
    try:
        is_ca = issuer.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise KeyFileError(f"{cert_path}: not a CA certificate")
    return issuer


def add_agencies(directory: Path, organ_ids: Iterable[tuple[str, str]], *, kind: str = "rsa") -> dict[str, SigningKey]:
    """Certify more agencies with the test CA kept in ``directory``; write their key and certificate.

    Agencies whose files exist are overwritten: callers that must not check :func:`agency_files`.
    """
    issuer = load_issuer(directory)
    pem = serialization.Encoding.PEM
    added = {}
    for organ_id, name in organ_ids:
        key = issue_certificate(issuer, name, organ_id=organ_id, kind=kind)
        key_path, cert_path = agency_files(directory, organ_id)
        _write_key(key_path, key)
        _write(cert_path, b"".join(c.public_bytes(pem) for c in (key.certificate, *key.chain)))
        added[organ_id] = key
    return added


def _write_key(path: Path, key: SigningKey) -> None:
    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    _write(path, pem, mode=0o600)


def _write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write atomically: a new temporary file created with ``mode`` (less the umask: a key is never
    readable by others, not even for a moment), then renamed over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a crashed run of this process id
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
