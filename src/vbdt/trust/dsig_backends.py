"""The XML-DSig engines behind one interface: signxml (always there) and python-xmlsec (libxmlsec1).

A backend does only the cryptography of the edXML profile on a tree vbdt already parsed and
checked: :meth:`DsigBackend.sign` fills the one enveloped signature at the end of ``edXMLHeader``,
:meth:`DsigBackend.check` checks its value and its one digest with exactly the public key of the
leaf vbdt chose and validated. Everything else (the profile, which certificate signed, its chain,
the signer policy, the binding to the sender) is :mod:`vbdt.trust.xmldsig` and
:mod:`vbdt.trust.chain`, the same for both backends.

python-xmlsec is chosen when it is installed (``pip install vbdt[xmlsec]``) and linked against the
same libxml2 as lxml: the two exchange libxml2 trees in memory, so a mismatch is detected on first
use and falls back to signxml with a warning, never a crash. ``VBDT_DSIG_BACKEND=signxml`` (or
``xmlsec``) forces one; ``sign`` and ``verify`` also take ``backend=``. Neither backend copies the document:
the reference is canonicalised once, streamed into the digest.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import threading
import warnings
from collections import OrderedDict
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import InvalidDigest, InvalidInput
from signxml.signer import SignatureReference
from signxml.verifier import SignatureConfiguration, VerifyResult

from vbdt.edxml.xmlparse import DS_NS, EDXML_NS
from vbdt.errors import SignatureInvalid, SignatureProfileError
from vbdt.trust.keys import SigningKey

__all__ = ["DsigBackend", "available_backends", "default_backend", "get_backend", "reference_digest"]

RSA_SHA256 = SignatureMethod.RSA_SHA256.value
ECDSA_SHA256 = SignatureMethod.ECDSA_SHA256.value
RSA_SHA1 = SignatureMethod.RSA_SHA1.value
SHA256 = DigestAlgorithm.SHA256.value
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNATURE_METHODS = frozenset({RSA_SHA256, ECDSA_SHA256})
LEGACY_SIGNATURE_METHODS = frozenset({RSA_SHA1})
DIGESTS = {SHA256: "sha256", DigestAlgorithm.SHA384.value: "sha384", DigestAlgorithm.SHA512.value: "sha512"}
LEGACY_DIGESTS = {DigestAlgorithm.SHA1.value: "sha1"}
C14N = frozenset({EXC_C14N, C14N_10})
_NS = {"ds": DS_NS}


class DsigBackend(Protocol):
    """What vbdt asks of an XML-DSig engine, on trees it parsed and checked itself."""

    name: str
    """``signxml`` or ``xmlsec``."""

    def sign(self, header: etree._Element, key: SigningKey) -> etree._Element:
        """Append the profile's enveloped signature to ``header`` (RSA- or ECDSA-SHA256, exclusive
        C14N, one ``Reference URI=""``, the certificate and chain in ``KeyInfo``); return it."""
        ...

    def check(self, signature: etree._Element, leaf: x509.Certificate, *, legacy_sha1: bool) -> None:
        """Raise :class:`~vbdt.errors.SignatureInvalid` unless the digest matches the document and
        the value verifies with ``leaf``'s public key (and no other key, whatever ``KeyInfo`` says).
        The tree is left as it was given."""
        ...


# -- the one canonicalisation of the signed content ----------------------------------------------


class _HashSink:
    """A file-like object that hashes what lxml's canonicaliser writes, so no copy is kept."""

    def __init__(self, name: str) -> None:
        self.hash = hashlib.new(name)

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def reference_digest(signature: etree._Element, transforms: list[str], digest_uri: str) -> bytes:
    """The digest of ``Reference URI=""`` with the profile's transforms: the whole document without
    the enveloped ``signature``, canonicalised once and streamed into the hash.

    The signature is detached while the canonicaliser runs (its following text stays, as the
    enveloped-signature transform says) and put back exactly where it was.
    """
    name = {**DIGESTS, **LEGACY_DIGESTS}.get(digest_uri)
    if name is None or not transforms or transforms[0] != ENVELOPED or not set(transforms[1:]) <= C14N:
        raise SignatureProfileError(f"not the profile's reference: transforms {transforms}, digest {digest_uri}")
    # Without a C14N transform the node-set becomes octets by inclusive C14N 1.0 (XML-DSig 4.3.3.2).
    exclusive = transforms[-1] == EXC_C14N
    parent = signature.getparent()
    if parent is None:
        raise SignatureProfileError("the signature is not inside the document")
    tree = signature.getroottree()
    index, tail = parent.index(signature), signature.tail
    before = signature.getprevious()
    kept = before.tail if before is not None else parent.text
    parent.remove(signature)  # lxml takes the tail along; the transform removes the element only
    if tail:
        if before is not None:
            before.tail = (kept or "") + tail
        else:
            parent.text = (kept or "") + tail
    sink = _HashSink(name)
    try:
        tree.write_c14n(sink, exclusive=exclusive, with_comments=False)
    finally:
        if before is not None:
            before.tail = kept
        else:
            parent.text = kept
        parent.insert(index, signature)
        signature.tail = tail
    return sink.hash.digest()


# -- signxml ------------------------------------------------------------------------------------


class _InPlaceSigner(XMLSigner):  # type: ignore[misc,unused-ignore]
    """signxml's signer on vbdt's own tree, for the profile's one enveloped ``Reference URI=""``.

    Its own ``_unpack`` copies the document twice through a serialisation and digests the copy
    that still holds the placeholder when the placeholder is found by ``Id``; here the signature
    is built outside the tree, the tree digested as it is, and the caller appends the signature.
    """

    def _unpack(self, data: Any, references: Any) -> tuple[Any, Any, list[Any], list[SignatureReference]]:
        self.made = etree.Element(f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
        return self.made, data, [data], [SignatureReference(URI="")]


class _InPlaceVerifier(XMLVerifier):  # type: ignore[misc,unused-ignore]
    """signxml's verifier on vbdt's own tree, its one reference digested by :func:`reference_digest`.

    signxml checks the SignedInfo (schema, algorithms, value with the given certificate's key);
    its own reference check serialises and re-parses the whole document three times and returns
    a re-parsed copy that vbdt does not need: the model is built from the checked tree.
    """

    def get_root(self, data: Any) -> Any:
        return data

    def _verify_reference(self, reference: Any, index: int, root: Any, uri_resolver: Any, c14n_algorithm: Any,
                          signature: Any, signature_key_used: Any) -> VerifyResult:
        # ``reference`` comes from the SignedInfo whose value just verified; ``signature`` is a
        # copy of ours, so the digest is taken over the original, in ``root``'s tree.
        digest_method = self._find(reference, "DigestMethod").get("Algorithm")  # type: ignore[no-untyped-call,unused-ignore]
        self.check_digest_alg_expected(DigestAlgorithm(digest_method))  # type: ignore[no-untyped-call,unused-ignore]
        if reference.get("URI") != "":
            raise InvalidInput("only the profile's Reference URI=\"\" is accepted")
        transforms = [t.get("Algorithm", "") for t in reference.findall("ds:Transforms/ds:Transform", _NS)]
        original = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader/{{{DS_NS}}}Signature")
        expected = reference_digest(original, transforms, digest_method)
        digest_value = self._find(reference, "DigestValue")  # type: ignore[no-untyped-call,unused-ignore]
        if not hmac.compare_digest(_b64decode(digest_value.text or ""), expected):
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        # signxml's own result carries re-parsed copies; vbdt reads the checked tree instead
        return VerifyResult(None, None, signature, signature_key=None)  # type: ignore[arg-type,unused-ignore]


def _b64decode(text: str) -> bytes:
    import base64

    return base64.b64decode("".join(text.split()), validate=True)


class SignxmlBackend:
    """signxml (pure Python over lxml and cryptography): always available."""

    name = "signxml"

    def sign(self, header: etree._Element, key: SigningKey) -> etree._Element:
        """See :meth:`DsigBackend.sign`."""
        method = SignatureMethod.ECDSA_SHA256 if isinstance(key.private_key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256
        signer = _InPlaceSigner(
            signature_algorithm=method,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        certs = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (key.certificate, *key.chain)]
        signer.sign(header.getroottree().getroot(), key=key.private_key, cert=certs, always_add_key_value=False)
        signature: etree._Element = signer.made
        header.append(signature)  # only now: the digest was taken over the document without it
        return signature

    def check(self, signature: etree._Element, leaf: x509.Certificate, *, legacy_sha1: bool) -> None:
        """See :meth:`DsigBackend.check`."""
        from signxml.exceptions import InvalidCertificate
        from signxml.exceptions import InvalidSignature as SignxmlInvalid

        config = SignatureConfiguration(
            location=f"./{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader/",
            expect_references=1,
            signature_methods=frozenset(SignatureMethod(m) for m in _methods(legacy_sha1)),
            digest_algorithms=frozenset(DigestAlgorithm(d) for d in _digests(legacy_sha1)),
            # the certificate's validity was judged by vbdt's chain, at the caller's moment
            verification_time=leaf.not_valid_before_utc,
        )
        try:
            _InPlaceVerifier().verify(signature.getroottree().getroot(), x509_cert=leaf, expect_config=config,
                                      parser=_parser())
        except InvalidDigest as exc:
            raise SignatureInvalid(f"the package changed after signing: {exc}") from None
        except (SignxmlInvalid, InvalidCertificate) as exc:
            raise SignatureInvalid(f"signature does not verify: {exc}") from None
        except InvalidInput as exc:
            raise SignatureProfileError(f"signature not in the edXML profile: {exc}") from None
        except etree.DocumentInvalid as exc:
            raise SignatureProfileError(f"the signature breaks the XML-DSig schema: {exc}") from None
        except (ValueError, TypeError, KeyError, etree.LxmlError) as exc:
            # signxml decodes base64 and builds enums from what it reads, unguarded; on hostile
            # values those raise plain Python errors
            raise SignatureInvalid(f"the signature cannot be read: {type(exc).__name__}: {exc}") from None


def _parser() -> etree.XMLParser:
    # signxml re-parses the small Signature element with it; a new one per call (lxml parsers
    # are not shared between threads)
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _methods(legacy_sha1: bool) -> frozenset[str]:
    return SIGNATURE_METHODS | (LEGACY_SIGNATURE_METHODS if legacy_sha1 else frozenset())


def _digests(legacy_sha1: bool) -> frozenset[str]:
    return frozenset(DIGESTS) | (frozenset(LEGACY_DIGESTS) if legacy_sha1 else frozenset())


# -- python-xmlsec --------------------------------------------------------------------------------


class XmlsecBackend:
    """python-xmlsec (libxmlsec1 on OpenSSL): signs and checks in C, on the tree lxml built."""

    name = "xmlsec"

    def __init__(self, module: Any) -> None:
        self._xmlsec = module
        self._keys: OrderedDict[int, tuple[object, Any]] = OrderedDict()
        self._public: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def sign(self, header: etree._Element, key: SigningKey) -> etree._Element:
        """See :meth:`DsigBackend.sign`. A key that cannot leave its token signs through signxml."""
        xs = self._xmlsec
        loaded = self._private_key(key)
        if loaded is None:
            return SignxmlBackend().sign(header, key)
        ec_key = isinstance(key.private_key, ec.EllipticCurvePrivateKey)
        method = xs.constants.TransformEcdsaSha256 if ec_key else xs.constants.TransformRsaSha256
        signature = xs.template.create(header, xs.constants.TransformExclC14N, method, ns="ds")
        header.append(signature)
        reference = xs.template.add_reference(signature, xs.constants.TransformSha256, uri="")
        xs.template.add_transform(reference, xs.constants.TransformEnveloped)
        xs.template.add_transform(reference, xs.constants.TransformExclC14N)
        xs.template.add_x509_data(xs.template.ensure_key_info(signature))
        context = xs.SignatureContext()
        context.key = loaded
        try:
            context.sign(signature)
        except xs.Error as exc:
            header.remove(signature)
            raise SignatureInvalid(f"libxmlsec1 could not sign: {exc}") from None
        return signature

    def check(self, signature: etree._Element, leaf: x509.Certificate, *, legacy_sha1: bool) -> None:
        """See :meth:`DsigBackend.check`: the leaf's public key is the context's key, so libxmlsec1
        reads no certificate from ``KeyInfo``, has no keys manager and no X.509 store to consult."""
        xs = self._xmlsec
        context = xs.SignatureContext()
        try:
            context.key = self._public_key(leaf)
            for transform in self._allowed(legacy_sha1):
                context.enable_reference_transform(transform)
            context.verify(signature)
        except xs.VerificationError as exc:
            raise SignatureInvalid(f"signature does not verify (libxmlsec1): {exc}") from None
        except xs.Error as exc:
            raise SignatureInvalid(f"the signature cannot be checked (libxmlsec1): {exc}") from None

    def _allowed(self, legacy_sha1: bool) -> list[Any]:
        c = self._xmlsec.constants
        allowed = [c.TransformEnveloped, c.TransformExclC14N, c.TransformInclC14N, c.TransformSha256,
                   c.TransformSha384, c.TransformSha512]
        return [*allowed, c.TransformSha1] if legacy_sha1 else allowed

    def _public_key(self, leaf: x509.Certificate) -> Any:
        """The leaf's public key loaded into libxmlsec1, once per key (parsing it cost as much as the
        check itself); the context takes a copy, so one loaded key serves every thread."""
        public = leaf.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        with self._lock:
            found = self._public.get(public)
            if found is not None:
                self._public.move_to_end(public)
                return found
        loaded = self._xmlsec.Key.from_memory(public, self._xmlsec.constants.KeyDataFormatPem)
        with self._lock:
            self._public[public] = loaded
            while len(self._public) > 256:
                self._public.popitem(last=False)
        return loaded

    def _private_key(self, key: SigningKey) -> Any:
        """The key loaded into libxmlsec1 once (it parses PEM each time), or None for a token key."""
        with self._lock:
            found = self._keys.get(id(key.private_key))
            if found is not None and found[0] is key.private_key:
                self._keys.move_to_end(id(key.private_key))
                return found[1]
        xs = self._xmlsec
        try:
            pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
        except Exception:  # a hardware key refuses to leave its token: signxml calls its sign()
            return None
        loaded = xs.Key.from_memory(pem, xs.constants.KeyDataFormatPem)
        for cert in (key.certificate, *key.chain):
            loaded.load_cert_from_memory(cert.public_bytes(serialization.Encoding.PEM), xs.constants.KeyDataFormatPem)
        with self._lock:
            # the entry keeps the key object alive, so its id is not reused while cached
            self._keys[id(key.private_key)] = (key.private_key, loaded)
            while len(self._keys) > 32:
                self._keys.popitem(last=False)
        return loaded


# -- choosing --------------------------------------------------------------------------------------


@functools.cache
def _xmlsec_backend() -> XmlsecBackend | None:
    """python-xmlsec when it imports and shares lxml's libxml2; else None, with a warning if broken."""
    try:
        import xmlsec

        ours = (etree.LIBXML_VERSION, etree.LIBXML_COMPILED_VERSION)
        theirs = (tuple(xmlsec.get_libxml_version()), tuple(xmlsec.get_libxml_compiled_version()))
    except ImportError:
        return None
    except Exception as exc:  # python-xmlsec refuses to import on some mismatches (xmlsec.Error)
        warnings.warn(f"python-xmlsec cannot be used ({exc}); XML-DSig falls back to signxml", RuntimeWarning,
                      stacklevel=3)
        return None
    if ours != theirs:
        warnings.warn(
            f"python-xmlsec is linked against libxml2 {theirs[0]}, lxml against {ours[0]}: they would exchange "
            "trees across two libxml2 builds, so XML-DSig falls back to signxml (install both from source "
            "against one libxml2, or lxml's matching wheel)", RuntimeWarning, stacklevel=3)
        return None
    return XmlsecBackend(xmlsec)


def available_backends() -> list[str]:
    """The names of the backends usable here, the preferred first."""
    return ["xmlsec", "signxml"] if _xmlsec_backend() is not None else ["signxml"]


def get_backend(name: str) -> DsigBackend:
    """The backend called ``name``; :class:`~vbdt.errors.SignatureProfileError` if it cannot be used."""
    if name == "signxml":
        return _SIGNXML
    if name == "xmlsec":
        backend = _xmlsec_backend()
        if backend is None:
            raise SignatureProfileError("the xmlsec backend is not available: pip install vbdt[xmlsec]")
        return backend
    raise SignatureProfileError(f"no XML-DSig backend called {name!r} (signxml, xmlsec)")


def default_backend() -> DsigBackend:
    """The backend named by ``VBDT_DSIG_BACKEND`` when set (``signxml`` or ``xmlsec``), else
    python-xmlsec when installed and compatible, else signxml."""
    forced = os.environ.get("VBDT_DSIG_BACKEND")
    if forced:
        return get_backend(forced)
    return _xmlsec_backend() or _SIGNXML


_SIGNXML = SignxmlBackend()
