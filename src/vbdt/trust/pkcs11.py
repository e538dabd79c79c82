"""Keys in hardware: a PKCS#11 token (USB token, HSM) behind :class:`~vbdt.trust.keys.SigningKey`.

Vietnamese signers hold their keys on USB tokens and agencies their seals in HSMs; the private key
never leaves the device. vbdt signs through one interface whatever holds the key: a
``SigningKey`` whose ``private_key`` is a cryptography private-key object. For a token that object
is a :class:`TokenRsaKey` or :class:`TokenEcKey` here, whose ``sign`` is **one** PKCS#11 operation
on the token, so XML-DSig (signxml) and PAdES (pyHanko, through vbdt's signer) use the token
unchanged. Everything else the private-key interface offers (export, decryption, key exchange)
is refused: a token key does not leave the token.

::

    key = token_signing_key("/usr/lib/softhsm/libsofthsm2.so", token="VBDT", pin="1234", label="seal")
    signed = vbdt.sign(package, key)

Needs ``python-pkcs11`` (``pip install vbdt[pkcs11]``). A PKCS#11 session is not thread-safe, so
each key serialises its operations with a lock; ``operations`` counts them (one per signature).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding

from vbdt.errors import KeyFileError, UsageError
from vbdt.trust.keys import SigningKey

__all__ = ["TokenEcKey", "TokenRsaKey", "TokenSession", "token_signing_key"]

_RSA_MECHANISMS = {"sha256": "SHA256_RSA_PKCS", "sha384": "SHA384_RSA_PKCS", "sha512": "SHA512_RSA_PKCS",
                   "sha1": "SHA1_RSA_PKCS"}


@dataclass
class TokenSession:
    """An open, logged-in session on one token, shared by the keys found on it."""

    session: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    operations: int = 0
    """Signatures made on the token through this session."""

    def sign(self, key: Any, data: bytes, mechanism: Any) -> bytes:
        with self.lock:
            self.operations += 1
            try:
                return bytes(key.sign(data, mechanism=mechanism))
            except Exception as exc:  # the token's own errors (removed, PIN locked, ...)
                raise KeyFileError(f"the token refused to sign: {type(exc).__name__}: {exc}") from None


def _refuse(*_: object, **__: object) -> NoReturn:
    raise UsageError("a key on a token cannot be exported or used for anything but signing")


class TokenRsaKey(rsa.RSAPrivateKey):
    """An RSA private key that lives on a token: ``sign`` is one PKCS#11 operation."""

    def __init__(self, session: TokenSession, key: Any, public: rsa.RSAPublicKey) -> None:
        self._session, self._key, self._public = session, key, public

    def sign(self, data: bytes | bytearray | memoryview, padding: AsymmetricPadding, algorithm: Any) -> bytes:
        import pkcs11

        if not isinstance(padding, _PKCS1v15) or isinstance(algorithm, utils.Prehashed):
            raise UsageError("token RSA keys sign with PKCS#1 v1.5 over the data (RSA-SHA256 and friends)")
        name = _RSA_MECHANISMS.get(algorithm.name)
        if name is None:
            raise UsageError(f"no PKCS#11 mechanism for RSA with {algorithm.name}")
        return self._session.sign(self._key, bytes(data), getattr(pkcs11.Mechanism, name))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    decrypt = private_numbers = private_bytes = _refuse

    def __copy__(self) -> TokenRsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenRsaKey:
        return self


class TokenEcKey(ec.EllipticCurvePrivateKey):
    """An EC private key that lives on a token: the digest is made here, the signature on the token."""

    def __init__(self, session: TokenSession, key: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._session, self._key, self._public = session, key, public

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        import pkcs11

        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UsageError("token EC keys sign with ECDSA")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            hasher = hashes.Hash(algorithm)
            hasher.update(data)
            digest = hasher.finalize()
        raw = self._session.sign(self._key, digest, pkcs11.Mechanism.ECDSA)
        half = len(raw) // 2  # PKCS#11 returns r || s; X.509 and XML-DSig callers expect DER
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    exchange = private_numbers = private_bytes = _refuse

    def __copy__(self) -> TokenEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenEcKey:
        return self


_PKCS1v15 = padding.PKCS1v15


# PKCS#11 logs in per application, not per session: a second login to the same token fails, so
# every key on one token shares one logged-in session (and its lock).
_SESSIONS: dict[tuple[str, str], tuple[bytes, TokenSession]] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(pkcs11: Any, library: str, token: str, pin: str) -> TokenSession:
    pin_digest = hashlib.sha256(pin.encode()).digest()
    with _SESSIONS_LOCK:
        known = _SESSIONS.get((library, token))
        if known is not None:
            if not hmac.compare_digest(known[0], pin_digest):
                raise KeyFileError(f"cannot open token {token!r}: wrong PIN")
            return known[1]
        try:
            opened = pkcs11.lib(library).get_token(token_label=token).open(user_pin=pin)
        except Exception as exc:  # python-pkcs11 raises its own tree, and OSError for a missing library
            raise KeyFileError(f"cannot open token {token!r} with {library}: {type(exc).__name__}: {exc}") from None
        shared = TokenSession(opened)
        _SESSIONS[(library, token)] = (pin_digest, shared)
        return shared


def token_signing_key(
    library: str,
    *,
    token: str,
    pin: str,
    label: str,
    certificate: x509.Certificate | None = None,
    chain: list[x509.Certificate] | None = None,
) -> SigningKey:
    """A :class:`SigningKey` for the private key ``label`` on the token ``token``.

    The certificate is read from the token (a certificate object with the same label) unless
    given. Errors (no such library, token, key or certificate; a wrong PIN) are KeyFileError.
    """
    try:
        import pkcs11
        from pkcs11 import Attribute, ObjectClass
    except ImportError:
        raise KeyFileError("PKCS#11 tokens need python-pkcs11: pip install 'vbdt[pkcs11]'") from None
    shared = _session(pkcs11, library, token, pin)
    session = shared.session
    try:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        if certificate is None:
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}))
            if not found:
                raise KeyFileError(f"no certificate labelled {label!r} on token {token!r}; pass certificate=")
            certificate = x509.load_der_x509_certificate(bytes(found[0][Attribute.VALUE]))
    except KeyFileError:
        raise
    except Exception as exc:
        raise KeyFileError(f"no usable key {label!r} on token {token!r}: {type(exc).__name__}: {exc}") from None
    public = certificate.public_key()
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if isinstance(public, rsa.RSAPublicKey):
        private = TokenRsaKey(shared, key, public)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        private = TokenEcKey(shared, key, public)
    else:
        raise KeyFileError(f"the certificate for {label!r} holds neither an RSA nor an EC key")
    return SigningKey(private, certificate, list(chain or []))

