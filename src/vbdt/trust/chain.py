"""Certificate chains: which certificate signed, whether it may sign, and whether it chains to an anchor.

A :class:`TrustStore` is built once from the trust anchors (never the system store) and the CRLs
the caller has. :meth:`TrustStore.validate` takes the signer's certificate and the untrusted
certificates that came with it, checks the signer policy, builds and validates the chain with
cryptography's X.509 verifier, checks revocation, and returns a :class:`ChainVerdict` naming the
leaf and the chain it was validated for. Every refusal is a
:class:`~vbdt.errors.CertificateRejected` saying why.

The signer policy (:func:`check_signer`), for envelope and PDF signatures alike:

- the signer is an **end entity**: a certificate with ``basicConstraints CA=true`` may issue
  certificates, not sign documents;
- its **KeyUsage** is present and allows ``digitalSignature`` or ``nonRepudiation``
  (``contentCommitment``);
- its **ExtendedKeyUsage**, when present, names a document-signing purpose: id-kp-documentSigning
  (RFC 9336), Microsoft document signing, emailProtection (the purpose Vietnamese CAs put on
  signing tokens), Adobe authentic documents, or anyExtendedKeyUsage. TLS server or client
  authentication and code signing alone are not a licence to sign official documents.

:func:`signer_among` picks the signer out of an unordered bag of certificates (XML-DSig's
``X509Data`` has no order): the one certificate that issues none of the others.

A store caches its verdicts (a province's thousandth document from the same commune does not
rebuild the same chain): keyed on the SHA-256 fingerprints of the leaf and of the intermediates
presented, an entry serves a moment inside the chain's validity and ends at the earliest of the
chain's expiry, the next update of a CRL used, and the store's ``cache_ttl``; new CRLs
(:meth:`TrustStore.update_crls`) empty the cache. The signer policy is part of the cached verdict:
it reads only the leaf, which is the key. Refusals are never cached. The binding of the leaf to the
sending agency is not a chain matter and runs on every message (:func:`vbdt.trust.keys.bind_certificate`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from vbdt.errors import CertificateRejected
from vbdt.kept import Kept

__all__ = ["DOCUMENT_SIGNING_USAGES", "CacheInfo", "ChainVerdict", "TrustStore", "anchors_file", "check_key_cost",
           "check_signer", "signer_among"]

DOCUMENT_SIGNING_USAGES: frozenset[ObjectIdentifier] = frozenset({
    ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning, RFC 9336
    ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ObjectIdentifier("1.2.840.113583.1.1.5"),  # Adobe authentic documents trust
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
})
"""Extended key usages that allow a certificate to sign documents (any one suffices)."""


@dataclass(frozen=True)
class ChainVerdict:
    """A validated chain: the signer's certificate up to a trust anchor, at one moment."""

    leaf: x509.Certificate
    """The certificate the chain was validated for: the only one whose key may verify."""
    chain: tuple[x509.Certificate, ...]
    """From the leaf up to and including the trust anchor."""
    at: dt.datetime
    """The moment the chain was validated for (UTC)."""
    valid_until: dt.datetime
    """When the verdict lapses: the earliest expiry in the chain or next update of a CRL used."""

    @property
    def subjects(self) -> list[str]:
        """The chain's subjects (RFC 4514), leaf first."""
        return [c.subject.rfc4514_string() for c in self.chain]


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def check_signer(cert: x509.Certificate) -> None:
    """Raise :class:`CertificateRejected` unless ``cert`` may sign documents (see the module)."""
    try:
        extensions = cert.extensions
    except ValueError as exc:  # a duplicated or malformed extension
        raise CertificateRejected(f"certificate {_name(cert)} has unreadable extensions: {exc}") from None
    basic = _extension(extensions, x509.BasicConstraints)
    if basic is not None and basic.ca:
        raise CertificateRejected(f"certificate {_name(cert)} is a CA certificate; a signer must be an end entity")
    usage = _extension(extensions, x509.KeyUsage)
    if usage is None or not (usage.digital_signature or usage.content_commitment):
        raise CertificateRejected(
            f"certificate {_name(cert)} may not sign: its KeyUsage allows neither digitalSignature nor nonRepudiation"
        )
    purposes = _extension(extensions, x509.ExtendedKeyUsage)
    if purposes is not None and not DOCUMENT_SIGNING_USAGES.intersection(purposes):
        names = ", ".join(getattr(p, "_name", p.dotted_string) for p in purposes)
        raise CertificateRejected(
            f"certificate {_name(cert)} may not sign documents: its extended key usage is only {names}"
        )


MAX_RSA_BITS = 4096
"""The largest RSA (and DSA) key a sent certificate may carry: the national and sectoral CAs use
2048 and 4096 bits; each doubling costs about four times as much to check a signature."""
MAX_RSA_EXPONENT = 2**32
"""The largest RSA public exponent a sent certificate may carry: every real one uses 65537 (17
bits); one of 3,070 bits made each signature check cost 4.4 ms, and a chain builder runs over a
hundred of them on a certificate loop (A issued by B, B by A) before it gives up."""


def check_key_cost(cert: x509.Certificate) -> None:
    """Raise :class:`CertificateRejected` when ``cert``'s key would make checking a signature with it
    cost milliseconds: an RSA or DSA key over :data:`MAX_RSA_BITS`, an RSA exponent over
    :data:`MAX_RSA_EXPONENT`. Checked on every certificate a sender sends, before any chain is
    built (a message of a few KB must not buy seconds of its receiver's CPU)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size > MAX_RSA_BITS:
        raise CertificateRejected(f"certificate {_name(cert)} has a {key.key_size}-bit key, over {MAX_RSA_BITS} bits")
    if isinstance(key, rsa.RSAPublicKey) and key.public_numbers().e > MAX_RSA_EXPONENT:
        raise CertificateRejected(
            f"certificate {_name(cert)} has an RSA public exponent of {key.public_numbers().e.bit_length()} bits "
            "(real certificates use 65537)"
        )


_E = TypeVar("_E", bound=x509.ExtensionType)


def _extension(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def signer_among(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The signer in an unordered set of certificates: the one that issues none of the others.

    Raises :class:`CertificateRejected` when there is no such certificate or more than one: a set
    with two end entities carries a certificate that is not on the signer's chain.
    """
    unique = list(dict.fromkeys(certs))
    issuers = {c.issuer for c in unique if c.issuer != c.subject}
    leaves = [c for c in unique if c.subject not in issuers]
    if len(leaves) != 1:
        found = "; ".join(_name(c) for c in leaves) or "none (they issue each other)"
        raise CertificateRejected(
            f"the certificates sent do not form one chain: expected one signer certificate, found {found}"
        )
    return leaves[0]


@dataclass(frozen=True)
class CacheInfo:
    """How a :class:`TrustStore`'s verdict cache has served so far."""

    hits: int
    """Validations answered from the cache."""
    misses: int
    """Chains built and validated."""
    size: int
    """Verdicts held now."""


@dataclass(frozen=True)
class _Entry:
    verdict: ChainVerdict
    valid_from: dt.datetime  # the latest notBefore of the chain
    expires: float  # time.monotonic() deadline of the store's TTL


class TrustStore:
    """Trust anchors and CRLs, loaded once; validates signer chains against them and caches verdicts.

    Thread-safe. ``cache_ttl`` bounds how long a verdict is reused, ``cache_size`` how many are held
    (least recently used first out); ``cache_size=0`` turns the cache off.
    """

    def __init__(self, anchors: Iterable[x509.Certificate], crls: Iterable[x509.CertificateRevocationList] = (), *,
                 cache_ttl: dt.timedelta = dt.timedelta(hours=1), cache_size: int = 16_384) -> None:
        self.anchors = list(anchors)
        if not self.anchors:
            raise CertificateRejected("no trust anchors: nothing can be trusted")
        self._crls = tuple(crls)
        self._store = Store(self.anchors)
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: Kept[tuple[bytes, ...], _Entry] = Kept(cache_size)
        self._lock = threading.Lock()
        self._generation = 0  # bumped by update_crls: a validation begun before must not be stored
        self._hits = self._misses = 0

    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        """The CRLs checked (replace them with :meth:`update_crls`)."""
        return self._crls

    def update_crls(self, crls: Iterable[x509.CertificateRevocationList]) -> None:
        """Check ``crls`` from now on (a new download replaces the old) and forget every cached verdict."""
        with self._lock:
            self._crls = tuple(crls)
            self._generation += 1
            self._cache.clear()

    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the verdict cache."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache))

    @classmethod
    def from_pem(cls, path: str | Path, crls: Iterable[x509.CertificateRevocationList] = ()) -> TrustStore:
        """Anchors from a PEM file (one or more certificates)."""
        return cls(_anchors_in(_read_anchors(path), path), crls)

    def validate(
        self, leaf: x509.Certificate, intermediates: Iterable[x509.Certificate] = (), *, at: dt.datetime | None = None
    ) -> ChainVerdict:
        """Validate ``leaf`` as a document signer, with untrusted ``intermediates``, at ``at`` (now).

        A verdict cached for the same leaf and intermediates is reused when ``at`` falls inside it
        (see the module); otherwise the chain is built, validated and the verdict cached.
        """
        when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        intermediates = list(intermediates)
        key = (_fingerprint(leaf), *sorted({_fingerprint(c) for c in intermediates}))
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and time.monotonic() < entry.expires and entry.valid_from <= when <= entry.verdict.valid_until:
                self._hits += 1
                return dataclasses.replace(entry.verdict, at=when)
            self._misses += 1
            generation, crls = self._generation, self._crls
        verdict = self._build(leaf, intermediates, when, crls)
        if self.cache_size > 0:
            entry = _Entry(verdict, max(c.not_valid_before_utc for c in verdict.chain),
                           time.monotonic() + self.cache_ttl.total_seconds())
            with self._lock:
                if generation == self._generation:
                    self._cache.put(key, entry)
        return verdict

    def _build(self, leaf: x509.Certificate, intermediates: list[x509.Certificate], when: dt.datetime,
               crls: tuple[x509.CertificateRevocationList, ...]) -> ChainVerdict:
        """The uncached validation: the signer policy, the chain, revocation."""
        check_signer(leaf)
        # Said plainly: the chain builder would only say that no valid chain was found.
        if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
            raise CertificateRejected(
                f"certificate {_name(leaf)} is not valid at {when:%Y-%m-%d %H:%M} UTC (valid "
                f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}): expired or not yet valid"
            )
        # Client-verifier semantics without its TLS rules for the leaf (check_signer is ours);
        # the CA certificates keep the WebPKI profile (CA=true, keyCertSign, path length).
        policy = PolicyBuilder().store(self._store).time(when).extension_policies(
            ee_policy=x509.verification.ExtensionPolicy.permit_all(),
            ca_policy=x509.verification.ExtensionPolicy.webpki_defaults_ca(),
        )
        try:
            built = policy.build_client_verifier().verify(leaf, intermediates)
        except VerificationError as exc:
            raise CertificateRejected(f"certificate {_name(leaf)} does not chain to a trust anchor: {exc}") from None
        chain = tuple(built.chain)
        crl_deadline = _check_revocation(chain, crls)
        until = min([c.not_valid_after_utc for c in chain] + crl_deadline)
        return ChainVerdict(leaf=chain[0], chain=chain, at=when, valid_until=until)



_FILES: Kept[bytes, TrustStore] = Kept(16)  # SHA-256 of an anchors file's content -> its store


def anchors_file(path: Path) -> TrustStore:
    """The trust store of an anchors file as it is now, one per content, so that every caller
    naming the file shares the store's chain cache.

    The file (a few KB) is read on every call and its store found by its content (6 µs): a file
    replaced in place is a new store at once, whatever its size and times say (a filesystem's
    clock ticks in milliseconds; a rewrite within one tick kept them all), and nothing the old
    anchors validated is served from then on.

    Raises :class:`~vbdt.errors.CertificateRejected` when the file cannot be read.
    """
    data = _read_anchors(path)
    key = hashlib.sha256(data).digest()
    store = _FILES.get(key)
    if store is None:
        store = TrustStore(_anchors_in(data, path))
        _FILES.put(key, store)
    return store


def _read_anchors(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise CertificateRejected(f"cannot read the trust anchors in {path}: {exc}") from None


def _anchors_in(data: bytes, path: str | Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateRejected(f"cannot read the trust anchors in {path}: {exc}") from None


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _check_revocation(chain: tuple[x509.Certificate, ...], crls: Sequence[x509.CertificateRevocationList]) -> list[dt.datetime]:
    """Raise if a CRL of the issuer names a certificate of the chain; the CRLs' next updates."""
    deadlines = []
    for cert, issuer in itertools.pairwise(chain):
        for crl in crls:
            if crl.issuer != cert.issuer:
                continue
            # A CRL that its issuer did not sign is a configuration error: refuse, never skip
            # (skipping would let a broken CRL hide a revocation).
            if not _crl_signed_by(crl, issuer):
                raise CertificateRejected(f"the CRL of {crl.issuer.rfc4514_string()} is not signed by its issuer")
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise CertificateRejected(
                    f"certificate {_name(cert)} is revoked (CRL of {crl.issuer.rfc4514_string()})"
                )
            if crl.next_update_utc is not None:
                deadlines.append(crl.next_update_utc)
    return deadlines


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | dsa.DSAPublicKey
                      | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return False
    try:
        return crl.is_signature_valid(key)
    except (InvalidSignature, ValueError, TypeError):
        return False
