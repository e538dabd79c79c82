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
the reference is canonicalised once, streamed into the digest, and a big attachment's text is
hashed apart from it (:func:`canonical_digest`, "marker substitution"), since libxml2's
canonicaliser would first make an escaped copy of it. On python-xmlsec, a signature is made and
checked in two parts: libxmlsec1 signs or verifies the value over the canonical SignedInfo, and
vbdt's one canonicalisation gives the reference's digest (on checking, compared with the digest
those verified bytes state). libxmlsec1's transform chain would copy the document again; should
the two-part check not hold, libxmlsec1 checks the whole signature and its verdict stands.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import warnings
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
from vbdt.kept import Kept, KeptFor
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

BIG_TEXT = 1 << 20
"""An attachment's text longer than this (in characters) is hashed from the text itself, around
the canonical form of the rest of the document, not passed through libxml2's canonicaliser (which
makes a second, escaped copy of a text node before writing it)."""

_ATTACHMENT_CONTENT = f"{{{EDXML_NS}}}AttachmentEncoded/{{{EDXML_NS}}}Attachment/{{{EDXML_NS}}}ContentTransferEncoded"
_INCLUSIVE_NAMESPACES = "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces"
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_MARKER_DIGITS = 8
_CHUNK = 1 << 20
_ESCAPES = ((b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;"), (b"\r", b"&#xD;"))  # C14N text, '&' first


class _HashSink:
    """A file-like object that hashes what lxml's canonicaliser writes, so no copy is kept."""

    def __init__(self, name: str) -> None:
        self.hash = hashlib.new(name)

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def big_texts(root: etree._Element, threshold: int | None = None) -> list[etree._Element]:
    """The attachment contents (``AttachmentEncoded/Attachment/ContentTransferEncoded``) whose text
    is over ``threshold`` characters: where edXML carries megabytes. Looking there costs a few
    microseconds; looking at every text node of an ordinary package costs a tenth of a millisecond,
    so a big text anywhere else is canonicalised the ordinary way (the same digest, more memory).
    ``threshold`` is :data:`BIG_TEXT` when None."""
    limit = BIG_TEXT if threshold is None else threshold
    return [element for element in root.iterfind(_ATTACHMENT_CONTENT) if len(element.text or "") > limit]


def inclusive_prefixes(transform: etree._Element | None) -> list[str] | None:
    """The ``InclusiveNamespaces PrefixList`` of an exclusive C14N transform or method, if it has one."""
    found = None if transform is None else transform.find(_INCLUSIVE_NAMESPACES)
    return None if found is None else (found.get("PrefixList") or "").split()


def signed_info_c14n(info: etree._Element, c14n_uri: str, prefixes: list[str] | None = None,
                     inherited: dict[str, str] | None = None) -> bytes:
    """The canonical ``SignedInfo``, a document subset: exclusive C14N (with ``prefixes``), or
    inclusive C14N 1.0, where the subset's apex also carries the ``xml:*`` attributes it inherits
    (``inherited``; those of its ancestors when None), as libxml2 renders them for libxmlsec1.
    lxml canonicalises an element as the root of a document of its own: the attributes are set
    on it for that moment and taken off again."""
    canonical: bytes
    if c14n_uri == EXC_C14N:
        canonical = etree.tostring(info, method="c14n", exclusive=True, with_comments=False,
                                   inclusive_ns_prefixes=prefixes)
        return canonical
    parent = info.getparent()
    found = inherited if inherited is not None else ({} if parent is None else inherited_xml_attributes(parent))
    added = [name for name in found if name not in info.attrib]
    for name in added:
        info.set(name, found[name])
    try:
        canonical = etree.tostring(info, method="c14n", exclusive=False, with_comments=False)
        return canonical
    finally:
        for name in added:
            del info.attrib[name]


def inherited_xml_attributes(element: etree._Element) -> dict[str, str]:
    """The ``xml:*`` attributes in scope at ``element`` (its own and its ancestors', the nearest first)."""
    found: dict[str, str] = {}
    node: etree._Element | None = element
    while node is not None:
        for name, value in node.attrib.items():
            if name.startswith(_XML_NS) and name not in found:
                found[name] = value
        node = node.getparent()
    return found


def reference_digest(signature: etree._Element, transforms: list[str], digest_uri: str, *,
                     prefixes: list[str] | None = None, big: list[etree._Element] | None = None) -> bytes:
    """The digest of ``Reference URI=""`` with the profile's transforms: the whole document without
    the enveloped ``signature``, canonicalised once and streamed into the hash.

    ``prefixes`` is the exclusive C14N transform's ``InclusiveNamespaces`` list. ``big`` are the
    elements whose text is hashed apart (:func:`big_texts` of the document when None; see
    :func:`canonical_digest`). The signature is detached while the canonicaliser runs (its
    following text stays, as the enveloped-signature transform says) and put back exactly where it was.
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
    if big is None:
        big = big_texts(tree.getroot())
    index, tail = parent.index(signature), signature.tail
    before = signature.getprevious()
    kept = before.tail if before is not None else parent.text
    parent.remove(signature)  # lxml takes the tail along; the transform removes the element only
    if tail:
        if before is not None:
            before.tail = (kept or "") + tail
        else:
            parent.text = (kept or "") + tail
    try:
        return canonical_digest(tree, name, exclusive=exclusive, prefixes=prefixes if exclusive else None, big=big)
    finally:
        if before is not None:
            before.tail = kept
        else:
            parent.text = kept
        parent.insert(index, signature)
        signature.tail = tail


def canonical_digest(tree: etree._ElementTree, name: str, *, exclusive: bool, prefixes: list[str] | None = None,
                     big: list[etree._Element] | None = None) -> bytes:
    """The ``name`` hash (hashlib) of the tree's C14N 1.0 or exclusive C14N form without comments.

    The text of each element of ``big`` is hashed apart ("marker substitution"): it is swapped
    for a marker, a random token no part of the document contains, the now small tree is
    canonicalised into the hash, and where the marker comes out the real text goes in, escaped as
    C14N escapes text (``&`` ``<`` ``>`` and carriage return), in chunks. Byte for byte the same
    digest as the whole canonical form, without libxml2's escaped copy of the text. Each marker
    must come out exactly once and the token nowhere else, or the digest is taken the ordinary way.
    The tree is left as it was given; while it is swapped out, an ASCII text (base64) is held as
    bytes, so the text is never held three times.
    """
    if big:
        digest = _spliced_digest(tree, name, exclusive, prefixes, big)
        if digest is not None:
            return digest
    sink = _HashSink(name)
    tree.write_c14n(sink, exclusive=exclusive, with_comments=False, inclusive_ns_prefixes=prefixes)
    return sink.hash.digest()


def _spliced_digest(tree: etree._ElementTree, name: str, exclusive: bool, prefixes: list[str] | None,
                    elements: list[etree._Element]) -> bytes | None:
    token = f"vbdt{secrets.token_hex(16)}x"
    texts: list[bytes | str | None] = []
    try:
        for index, element in enumerate(elements):
            texts.append(element.text)  # put back from here on, whatever happens
            if texts[index] is None or any(element is other for other in elements[:index]):
                texts[index] = None
                continue
            element.text = f"{token}{index:0{_MARKER_DIGITS}d}"  # frees libxml2's copy before the next
            held = texts[index]
            if isinstance(held, str) and held.isascii():
                texts[index] = held.encode("ascii")  # lxml takes ASCII bytes back without a copy
            del held
        sink = _SplicingSink(name, token.encode("ascii"), texts)
        tree.write_c14n(sink, exclusive=exclusive, with_comments=False, inclusive_ns_prefixes=prefixes)
        return sink.digest()
    finally:
        for index in reversed(range(len(texts))):
            text = texts[index]
            if text is not None:
                elements[index].text = text
                texts[index] = None
            del text


class _SplicingSink:
    """Hashes what the canonicaliser writes, with each marker replaced by its escaped text.

    lxml writes in pieces, so a marker may be cut between two: the bytes that could begin one are
    held back until the next piece. ``digest`` is None when the token came out anywhere but once
    at each marker.
    """

    def __init__(self, name: str, token: bytes, texts: list[bytes | str | None]) -> None:
        self._hash = hashlib.new(name)
        self._token = token
        self._width = len(token) + _MARKER_DIGITS
        self._texts = texts
        self._seen = [text is None for text in texts]
        self._carry = b""
        self._sound = True

    def write(self, data: bytes) -> int:
        buffer = self._carry + data if self._carry else data
        view = memoryview(buffer)
        start = 0
        while (found := buffer.find(self._token, start)) >= 0:
            if found + self._width > len(buffer):
                break  # the marker's digits are in the next piece
            self._hash.update(view[start:found])
            self._splice(buffer[found + len(self._token):found + self._width])
            start = found + self._width
        else:
            found = max(start, len(buffer) - len(self._token) + 1)  # a token may begin in these bytes
        self._hash.update(view[start:found])
        self._carry = buffer[found:]
        return len(data)

    def _splice(self, digits: bytes) -> None:
        index = int(digits) if digits.isdigit() else -1
        if not 0 <= index < len(self._texts) or self._seen[index]:
            self._sound = False
            return
        self._seen[index] = True
        text = self._texts[index]
        if text is not None:
            _hash_text(self._hash, text)

    def digest(self) -> bytes | None:
        self._hash.update(self._carry)
        return self._hash.digest() if self._sound and all(self._seen) else None


def _hash_text(hash: Any, text: bytes | str) -> None:
    """Hash ``text`` as C14N writes a text node: UTF-8, ``&`` ``<`` ``>`` and CR escaped."""
    if isinstance(text, bytes) and not any(char in text for char, _ in _ESCAPES):
        hash.update(text)  # base64: nothing to escape, no copy
        return
    for start in range(0, len(text), _CHUNK):
        piece = text[start:start + _CHUNK]
        chunk = piece if isinstance(piece, bytes) else piece.encode("utf-8")
        for char, escaped in _ESCAPES:
            chunk = chunk.replace(char, escaped)
        hash.update(chunk)


# -- signxml ------------------------------------------------------------------------------------


class _InPlaceSigner(XMLSigner):  # type: ignore[misc,unused-ignore]
    """signxml's signer on vbdt's own tree, for the profile's one enveloped ``Reference URI=""``.

    Its own ``_unpack`` copies the document twice through a serialisation and digests the copy
    that still holds the placeholder when the placeholder is found by ``Id``; here the signature
    is built outside the tree, the tree digested as it is (with a big attachment, streamed and the
    attachment hashed apart: :func:`canonical_digest`, where signxml would hold the canonical form
    as bytes), and the caller appends the signature.
    """

    def _unpack(self, data: Any, references: Any) -> tuple[Any, Any, list[Any], list[SignatureReference]]:
        self.made = etree.Element(f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
        self.document = data
        return self.made, data, [data], [SignatureReference(URI="")]

    def _c14n(self, nodes: Any, algorithm: Any, inclusive_ns_prefixes: Any = None) -> Any:
        if nodes is self.document and algorithm.value in C14N:
            big = big_texts(nodes)
            if big:
                return _Streamed(algorithm.value == EXC_C14N, inclusive_ns_prefixes, big)
        return super()._c14n(nodes, algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes)

    def _get_digest(self, data: Any, algorithm: Any) -> Any:
        if isinstance(data, _Streamed):
            name = {**DIGESTS, **LEGACY_DIGESTS}[algorithm.value]
            return canonical_digest(self.document.getroottree(), name, exclusive=data.exclusive,
                                    prefixes=data.prefixes if data.exclusive else None, big=data.big)
        return super()._get_digest(data, algorithm)


class _Streamed:
    """The document's canonical form, not made: :meth:`_InPlaceSigner._get_digest` streams it."""

    def __init__(self, exclusive: bool, prefixes: list[str] | None, big: list[etree._Element]) -> None:
        self.exclusive = exclusive
        self.prefixes = list(prefixes) if prefixes else None
        self.big = big


class _InPlaceVerifier(XMLVerifier):  # type: ignore[misc,unused-ignore]
    """signxml's verifier on vbdt's own tree, its one reference digested by :func:`reference_digest`.

    signxml checks the SignedInfo (schema, algorithms, value with the given certificate's key);
    its own reference check serialises and re-parses the whole document three times and returns
    a re-parsed copy that vbdt does not need: the model is built from the checked tree.
    """

    def __init__(self, inherited: dict[str, str]) -> None:
        super().__init__()
        self.inherited = inherited

    def get_root(self, data: Any) -> Any:
        return data

    def _c14n(self, nodes: Any, algorithm: Any, inclusive_ns_prefixes: Any = None) -> Any:
        # signxml canonicalises the SignedInfo of a copy of the signature, which lost its
        # ancestors: under inclusive C14N their xml:* attributes are the SignedInfo's too
        if getattr(nodes, "tag", None) == f"{{{DS_NS}}}SignedInfo" and algorithm.value == C14N_10:
            return signed_info_c14n(nodes, C14N_10, inherited=self.inherited)
        return super()._c14n(nodes, algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes)

    def _verify_reference(self, reference: Any, index: int, root: Any, uri_resolver: Any, c14n_algorithm: Any,
                          signature: Any, signature_key_used: Any) -> VerifyResult:
        # ``reference`` comes from the SignedInfo whose value just verified; ``signature`` is a
        # copy of ours, so the digest is taken over the original, in ``root``'s tree.
        digest_method = self._find(reference, "DigestMethod").get("Algorithm")  # type: ignore[no-untyped-call,unused-ignore]
        self.check_digest_alg_expected(DigestAlgorithm(digest_method))  # type: ignore[no-untyped-call,unused-ignore]
        if reference.get("URI") != "":
            raise InvalidInput("only the profile's Reference URI=\"\" is accepted")
        elements = reference.findall("ds:Transforms/ds:Transform", _NS)
        transforms = [t.get("Algorithm", "") for t in elements]
        original = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader/{{{DS_NS}}}Signature")
        expected = reference_digest(original, transforms, digest_method,
                                    prefixes=inclusive_prefixes(elements[-1] if elements else None))
        digest_value = self._find(reference, "DigestValue")  # type: ignore[no-untyped-call,unused-ignore]
        if not hmac.compare_digest(_b64decode(digest_value.text or ""), expected):
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        # signxml's own result carries re-parsed copies; vbdt reads the checked tree instead
        return VerifyResult(None, None, signature, signature_key=None)  # type: ignore[arg-type,unused-ignore]


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


def _wrapped(data: bytes) -> str:
    """Base64 in lines of 64 characters, as libxmlsec1 writes it."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + 64] for i in range(0, len(text), 64))


def _profile_reference(info: etree._Element, c14n_uri: str, method_uri: str,
                       digests: frozenset[str]) -> etree._Element | None:
    """The one ``Reference`` of a verified SignedInfo laid out as the profile and the XML-DSig schema
    say (CanonicalizationMethod, SignatureMethod, Reference; Transforms, DigestMethod, DigestValue;
    the algorithms :func:`vbdt.trust.xmldsig.check_profile` allows), else None."""
    ds = f"{{{DS_NS}}}"
    if info.tag != ds + "SignedInfo" or [child.tag for child in info] != [
            ds + "CanonicalizationMethod", ds + "SignatureMethod", ds + "Reference"]:
        return None
    c14n, method, reference = info
    if c14n.get("Algorithm") != c14n_uri or method.get("Algorithm") != method_uri or len(method):
        return None
    if reference.get("URI") != "" or set(reference.attrib) - {"URI", "Id", "Type"}:
        return None
    if [child.tag for child in reference] != [ds + "Transforms", ds + "DigestMethod", ds + "DigestValue"]:
        return None
    transforms, digest_method, digest_value = reference
    algorithms = [t.get("Algorithm") for t in transforms]
    if any(t.tag != ds + "Transform" for t in transforms) or not 1 <= len(algorithms) <= 2:
        return None
    if algorithms[0] != ENVELOPED or not set(algorithms[1:]) <= C14N or digest_method.get("Algorithm") not in digests:
        return None
    if len(digest_value) or len(digest_method):
        return None
    return reference


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
            _InPlaceVerifier(inherited_xml_attributes(signature)).verify(
                signature.getroottree().getroot(), x509_cert=leaf, expect_config=config, parser=_parser())
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


# Keys kept loaded in libxmlsec1 (a few KB each): a host signs for thousands of agencies and a
# province verifies receipts from thousands of signers; a smaller cache reloaded a key per message.
_KEYS_KEPT = 16_384


class XmlsecBackend:
    """python-xmlsec (libxmlsec1 on OpenSSL): signs and checks in C, on the tree lxml built."""

    name = "xmlsec"

    def __init__(self, module: Any) -> None:
        self._xmlsec = module
        self._keys: KeptFor[Any] = KeptFor(_KEYS_KEPT)
        self._public: Kept[bytes, Any] = Kept(_KEYS_KEPT)

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
        x509_data = xs.template.add_x509_data(xs.template.ensure_key_info(signature))
        context = xs.SignatureContext()
        context.key = loaded
        big = big_texts(header.getroottree().getroot())
        try:
            self._sign_apart(signature, x509_data, context, method, key, big)
        except xs.Error as exc:
            header.remove(signature)
            raise SignatureInvalid(f"libxmlsec1 could not sign: {exc}") from None
        except BaseException:
            header.remove(signature)
            raise
        return signature

    def _sign_apart(self, signature: etree._Element, x509_data: etree._Element, context: Any, method: Any,
                    key: SigningKey, big: list[etree._Element]) -> None:
        """Fill the template as libxmlsec1 would: the digest by :func:`reference_digest` (the one
        canonical form streamed into hashlib, big texts hashed apart), the value by libxmlsec1 over
        the canonical SignedInfo, the certificates written as libxmlsec1 writes them.

        libxmlsec1's own ``sign`` runs the reference through its transform chain, which copies the
        canonical form and every text again: at 18 KB it cost 0.84 ms where this costs 0.70 ms
        (raw python-xmlsec 0.76 ms; benchmarks/bench_sign_verify.py)."""
        info = signature.find("ds:SignedInfo", _NS)
        if info is None:
            raise SignatureInvalid("libxmlsec1 made a signature template without SignedInfo")
        digest = reference_digest(signature, [ENVELOPED, EXC_C14N], SHA256, big=big)
        info.findall("ds:Reference/ds:DigestValue", _NS)[0].text = base64.b64encode(digest).decode("ascii")
        value = context.sign_binary(signed_info_c14n(info, EXC_C14N), method)
        signature.findall("ds:SignatureValue", _NS)[0].text = _wrapped(value)
        x509_data.text = "\n"
        for cert in (key.certificate, *key.chain):
            element = etree.SubElement(x509_data, f"{{{DS_NS}}}X509Certificate")
            element.text = _wrapped(cert.public_bytes(serialization.Encoding.DER)) + "\n"
            element.tail = "\n"

    def check(self, signature: etree._Element, leaf: x509.Certificate, *, legacy_sha1: bool) -> None:
        """See :meth:`DsigBackend.check`: the leaf's public key is the context's key, so libxmlsec1
        reads no certificate from ``KeyInfo``, has no keys manager and no X.509 store to consult.

        libxmlsec1 checks the value over the canonical SignedInfo and vbdt the one digest inside
        those verified bytes (:meth:`_check_apart`; big attachments, :func:`big_texts`, hashed
        apart); should that not hold, libxmlsec1 checks the whole signature and its verdict
        stands (and words the reason). The first way canonicalises the document once, straight
        into the hash: at 18 KB 0.79 ms against libxmlsec1's whole check 0.93 ms.
        """
        big = big_texts(signature.getroottree().getroot())
        if self._check_apart(signature, leaf, legacy_sha1, big):
            return
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

    def _check_apart(self, signature: etree._Element, leaf: x509.Certificate, legacy_sha1: bool,
                     big: list[etree._Element]) -> bool:
        """True when libxmlsec1 verified ``SignatureValue`` with ``leaf``'s key over the canonical
        ``SignedInfo`` and the one ``Reference`` read back from those very bytes (never from the
        tree) has the digest of the document, computed by :func:`reference_digest`.

        libxmlsec1 verifies a SignedInfo only together with its references, and its canonicaliser
        copies every text node escaped: a 10 MB attachment costs a second 10 MB. So libxml2
        canonicalises the SignedInfo (as signxml does), libxmlsec1 checks the value over those
        bytes, and what they say (one ``Reference URI=""``, the profile's transforms, an allowed
        digest, its value) is what the document's digest is compared with. Anything unexpected
        is False: the caller then has libxmlsec1 verify the whole signature.
        """
        xs = self._xmlsec
        info = signature.find("ds:SignedInfo", _NS)
        value = signature.find("ds:SignatureValue", _NS)
        if info is None or value is None or len(value):
            return False
        c14n = info.find("ds:CanonicalizationMethod", _NS)
        method = info.find("ds:SignatureMethod", _NS)
        if c14n is None or method is None:
            return False
        c14n_uri, method_uri = c14n.get("Algorithm", ""), method.get("Algorithm", "")
        transform = self._signature_transforms(legacy_sha1).get(method_uri)
        if transform is None or c14n_uri not in C14N:
            return False
        try:
            signed = signed_info_c14n(info, c14n_uri, inclusive_prefixes(c14n))
            raw = _b64decode(value.text or "")
            context = xs.SignatureContext()
            context.key = self._public_key(leaf)
            context.verify_binary(signed, transform, raw)
        except (xs.Error, ValueError, etree.LxmlError):
            return False
        # From here on only what was verified: the SignedInfo as those bytes say it.
        try:
            seen = etree.fromstring(signed, _parser())
        except etree.LxmlError:
            return False
        reference = _profile_reference(seen, c14n_uri, method_uri, _digests(legacy_sha1))
        if reference is None:
            return False
        elements = reference.findall("ds:Transforms/ds:Transform", _NS)
        transforms = [t.get("Algorithm", "") for t in elements]
        digest_uri = reference.findall("ds:DigestMethod", _NS)[0].get("Algorithm", "")
        try:
            stated = _b64decode(reference.findall("ds:DigestValue", _NS)[0].text or "")
            actual = reference_digest(signature, transforms, digest_uri,
                                      prefixes=inclusive_prefixes(elements[-1] if elements else None), big=big)
        except (ValueError, SignatureProfileError, etree.LxmlError):  # e.g. a namespace C14N refuses
            return False
        return hmac.compare_digest(stated, actual)

    def _signature_transforms(self, legacy_sha1: bool) -> dict[str, Any]:
        c = self._xmlsec.constants
        allowed = {RSA_SHA256: c.TransformRsaSha256, ECDSA_SHA256: c.TransformEcdsaSha256}
        return {**allowed, RSA_SHA1: c.TransformRsaSha1} if legacy_sha1 else allowed

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
        loaded = self._public.get(public)
        if loaded is None:
            loaded = self._xmlsec.Key.from_memory(public, self._xmlsec.constants.KeyDataFormatPem)
            self._public.put(public, loaded)
        return loaded

    def _private_key(self, key: SigningKey) -> Any:
        """The key loaded into libxmlsec1 once (it parses PEM each time), or None for a token key."""
        found = self._keys.get(key.private_key)
        if found is not None:
            return found
        xs = self._xmlsec
        try:
            pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
        except Exception:  # a hardware key refuses to leave its token: signxml calls its sign()
            return None
        # The key alone: _sign_apart writes the certificates itself, and a context takes a copy of
        # its key for every signature (with two certificates attached, 56 µs a copy; bare, 0.3 µs).
        loaded = xs.Key.from_memory(pem, xs.constants.KeyDataFormatPem)
        self._keys.put(key.private_key, loaded)
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
