"""XML-DSig of edXML packages: sign as the edXML profile says, verify strictly, on signxml or python-xmlsec.

Profile: an enveloped ``ds:Signature`` as the last child of ``edXMLHeader``, one ``Reference``
with ``URI=""``, the enveloped-signature and exclusive C14N transforms, ``KeyInfo/X509Data`` with
the certificate and its chain. RSA-SHA256 by default, ECDSA-P256-SHA256 supported; SHA-1 verifies
only with ``legacy_sha1=True`` and is reported as weak.

Verification refuses anything else before a backend sees it (a second signature, a signature
elsewhere, a second header or envelope, ID-based or extra references, algorithms outside the
profile, a DTD). It then picks the signer among the unordered, unsigned ``KeyInfo`` certificates
(the one that issues none of the others), validates its chain once against the configured trust
anchors, never the system store, with the signer policy and the CRLs (:mod:`vbdt.trust.chain`),
refuses any ``KeyInfo`` certificate off that chain, has the XML-DSig backend check value and digest
with that leaf's key only, and binds that same leaf to the ``From`` agency (:mod:`vbdt.trust.keys`).

One parse per message: :func:`verify_tree` takes the tree the caller already parsed (and
validated) with :func:`vbdt.edxml.xmlparse.parse_xml`; the profile is checked on it, its one
reference is canonicalised once by the backend (:mod:`vbdt.trust.dsig_backends`: python-xmlsec
when installed, else signxml; a big attachment's text hashed apart, not copied by the
canonicaliser), and the model is built from it. That tree is what was signed: the
profile leaves one ``Reference URI=""`` with the enveloped-signature and C14N transforms, so the
signed content is the whole tree minus the signature, and the model reads text without comments
or processing instructions, as C14N renders it. :func:`verify` is the same on bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from vbdt.directory.agencies import Directory
from vbdt.edxml.model import Document, Package
from vbdt.edxml.reader import build_package
from vbdt.edxml.writer import to_tree
from vbdt.edxml.xmlparse import DEFAULT_LIMITS, DS_NS, EDXML_NS, Limits, parse_xml
from vbdt.errors import (
    CertificateRejected,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    TrustError,
    UnsafeXml,
    UsageError,
)
from vbdt.kept import Kept, KeptFor
from vbdt.trust.chain import ChainVerdict, TrustStore, anchors_file, check_key_cost, signer_among
from vbdt.trust.dsig_backends import (
    C14N,
    DIGESTS,
    ENVELOPED,
    LEGACY_DIGESTS,
    LEGACY_SIGNATURE_METHODS,
    SIGNATURE_METHODS,
    DsigBackend,
    big_texts,
    default_backend,
    get_backend,
)
from vbdt.trust.keys import SigningKey, bind_certificate

__all__ = [
    "CertificateRejected",
    "SignatureCheck",
    "SignatureInvalid",
    "SignatureProfileError",
    "SignerMismatch",
    "TrustError",
    "TrustStore",
    "Verified",
    "bind_package",
    "check_profile",
    "check_signature",
    "sign",
    "sign_per_group",
    "verify",
    "verify_tree",
]


_NS = {"ds": DS_NS, "e": EDXML_NS}
_SIGNATURE, _ENVELOPE = f"{{{DS_NS}}}Signature", f"{{{EDXML_NS}}}edXMLEnvelope"
_HEADER, _MESSAGE = f"{{{EDXML_NS}}}edXMLHeader", f"{{{EDXML_NS}}}MessageHeader"


def _backend(backend: DsigBackend | str | None) -> DsigBackend:
    if backend is None:
        return default_backend()
    return get_backend(backend) if isinstance(backend, str) else backend


def sign(package: Package | bytes, key: SigningKey, *, limits: Limits = DEFAULT_LIMITS,
         backend: DsigBackend | str | None = None) -> bytes:
    """The package as signed edXML bytes (a model is written first; bytes are parsed hardened).

    ``backend`` is ``"xmlsec"``, ``"signxml"`` or None for the default (:mod:`vbdt.trust.dsig_backends`).
    """
    if isinstance(package, bytes):
        root = parse_xml(package, limits).getroot()
        for old in root.findall("e:edXMLEnvelope/e:edXMLHeader/ds:Signature", _NS):
            old.getparent().remove(old)
        if root.getprevious() is not None or root.getnext() is not None:
            # A comment or PI beside the root is not edXML: the document's C14N would sign it and
            # the serialisation drop it. Our own serialisation of a hardened tree, parsed again.
            root = etree.fromstring(etree.tostring(root), etree.XMLParser(resolve_entities=False, huge_tree=True))
    else:
        root = to_tree(package)
    _sign_root(root, key, backend)
    return _serialize(root)


def sign_tree(tree: etree._ElementTree, key: SigningKey, *, backend: DsigBackend | str | None = None) -> bytes:
    """An unsigned package's tree from :func:`vbdt.edxml.xmlparse.parse_xml`, signed in place: the
    bytes :func:`sign` gives for the same bytes. Unlike :func:`sign`, the tree is left whole (its
    signature in it) to be read on: the sender checks, signs and reads one tree
    (:func:`vbdt.exchange.workers.prepare_job`), not two parses of it.

    Sign before reading the model from the tree, never after: :func:`vbdt.edxml.validation.report_tree`
    moves the attachments' text out of the tree, and what is left would be signed. (Not in
    ``__all__``: the sender's pipeline is its one caller.)"""
    root = tree.getroot()
    if root.find("e:edXMLEnvelope/e:edXMLHeader/ds:Signature", _NS) is not None:
        raise SignatureProfileError("the package is signed already")
    if root.getprevious() is not None or root.getnext() is not None:
        raise SignatureProfileError("a comment or processing instruction beside the root is not edXML")
    _sign_root(root, key, backend)
    return _serialize(root, keep=True)


def _sign_root(root: etree._Element, key: SigningKey, backend: DsigBackend | str | None) -> None:
    header = root.find("e:edXMLEnvelope/e:edXMLHeader", _NS)
    if header is None:
        raise SignatureProfileError("no edXMLHeader to put the signature in")
    # No whitespace after the signature: text there is signed content, fixed before the digest.
    _backend(backend).sign(header, key)


def sign_per_group(document: Document, key: SigningKey, groups: Sequence[Sequence[int]], *,
                   written: etree._Element | None = None, backend: DsigBackend | str | None = None) -> Iterator[bytes]:
    """``document`` signed once per group of its recipients, each envelope's ``To`` listing only
    the group (indexes into ``document.recipients``, in the order given): the bytes
    :func:`sign` gives for ``document`` with those recipients, without building the tree again.

    A directive to thousands of agencies lists a few hundred in each envelope instead of all in
    one: every receiver then reads and verifies a small envelope, not one that grows with the
    number of recipients (ten thousand ``To`` are 2.5 MB, read by each of the ten thousand). The
    tree is written once; each group's ``To`` elements are put in, the header signed, the tree
    serialised (big attachment texts put back), and the signature and ``To`` taken out again.
    ``written``: a tree :func:`~vbdt.edxml.writer.to_tree` made of a document with the same
    recipients (e.g. before its PDFs were signed), whose ``To`` elements are taken (it is spent)
    instead of being written a second time."""
    if written is None:
        root = written = to_tree(document)
    else:
        root = to_tree(document.model_copy(update={"recipients": []}))
    header = root.find("e:edXMLEnvelope/e:edXMLHeader", _NS)
    message = None if header is None else header.find("e:MessageHeader", _NS)
    source = written.find("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader", _NS)
    if header is None or message is None or source is None:
        raise SignatureProfileError("no edXMLHeader/MessageHeader to put the signature in")
    recipients = source.findall("e:To", _NS)
    if len(recipients) != len(document.recipients) or not recipients:
        raise SignatureProfileError("the written MessageHeader does not carry one To per recipient")
    for element in recipients:
        source.remove(element)
    sender = message.find("e:From", _NS)
    at = 0 if sender is None else message.index(sender) + 1
    signer = _backend(backend)
    for group in groups:
        if not group or any(not 0 <= i < len(recipients) for i in group) or len(set(group)) != len(group):
            raise UsageError(f"a group of recipients must name some of the {len(recipients)} recipients, each once")
        chosen = [recipients[i] for i in group]
        message[at:at] = chosen
        signature = signer.sign(header, key)
        try:
            data = _serialize(root, keep=True)
        finally:
            header.remove(signature)
            for element in chosen:
                message.remove(element)
        yield data


def _serialize(root: etree._Element, *, keep: bool = False) -> bytes:
    """UTF-8 with the declaration and a final newline, as the writer does, without its second copy
    (lxml writes to a file in pieces, and the buffer is handed over, not copied). The tree is
    spent: big attachment texts are moved out of it (:func:`_serialize_apart`), unless ``keep``
    puts them back."""
    big = big_texts(root)
    if big:
        data = _serialize_apart(root, big, keep=keep)
        if data is not None:
            return data
    out = io.BytesIO()
    root.getroottree().write(out, xml_declaration=True, encoding="UTF-8")
    out.write(b"\n")
    return out.getvalue()


def _serialize_apart(root: etree._Element, elements: list[etree._Element], *, keep: bool = False) -> bytes | None:
    """The serialisation with each big text moved out of the tree and written where its marker
    comes out (libxml2's serialiser escapes a text node into a copy of its own first: a 10 MB
    attachment cost 10 MB more). Only an ASCII text with nothing to escape (base64) moves, so its
    bytes are what the serialiser would write; None, with the texts put back, when a marker does
    not come out once or a random token shows up anywhere else."""
    token = f"vbdt{secrets.token_hex(16)}x"
    moved: list[tuple[etree._Element, bytes, bytes]] = []
    for index, element in enumerate(elements):
        text = element.text
        if text is None or not text.isascii() or any(char in text for char in "&<>\r"):
            continue
        marker = f"{token}{index:08d}"
        element.text = marker  # frees libxml2's copy before the bytes copy is made
        moved.append((element, marker.encode("ascii"), text.encode("ascii")))
        del text
    if not moved:
        return None
    out = io.BytesIO()
    root.getroottree().write(out, xml_declaration=True, encoding="UTF-8")
    small = out.getvalue()
    places = sorted((small.find(marker), marker, data) for _, marker, data in moved)
    if small.count(token.encode("ascii")) != len(moved) or places[0][0] < 0:
        for element, _, data in moved:
            element.text = data.decode("ascii")
        return None
    pieces: list[bytes] = []
    start = 0
    for place, found, text_bytes in places:
        pieces += [small[start:place], text_bytes]
        start = place + len(found)
    pieces += [small[start:], b"\n"]
    if keep:
        for element, _, data in moved:
            element.text = data.decode("ascii")
    del moved, places
    return b"".join(pieces)


@dataclass(frozen=True)
class Verified:
    """What a verified package says: what was signed, by whom, how."""

    package: Package
    """Built from the signed bytes only."""
    agency: str
    """The ``From`` OrganId the certificate was bound to."""
    signer: str
    """The certificate subject (RFC 4514)."""
    certificate: x509.Certificate
    """The leaf: the certificate whose key verified the signature, bound to the agency."""
    chain: list[str]
    """Subjects from the signer up to the trust anchor."""
    signature_algorithm: str
    digest_algorithm: str
    binding: str
    """How the certificate was bound to the agency: ``uid`` or ``pinned``."""
    verdict: ChainVerdict
    """The validated chain (leaf first, anchor last) and until when that verdict holds."""
    signing_time: dt.datetime | None = None
    """When the sender says it signed: its own TraceHeader (documents) or Timestamp (status
    messages), both inside the signed content; the edXML profile has no signed-time property."""
    warnings: list[str] = field(default_factory=list)

    @property
    def weak(self) -> bool:
        """Signed or digested with SHA-1 (accepted only under legacy verification)."""
        return _is_sha1(self.signature_algorithm) or _is_sha1(self.digest_algorithm)


def verify(
    data: bytes,
    *,
    trust: str | Path | TrustStore,
    directory: Directory | None = None,
    legacy_sha1: bool = False,
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    backend: DsigBackend | str | None = None,
) -> Verified:
    """Verify a signed package; raise a :class:`TrustError` subclass with the reason, else return it.

    ``trust`` is a :class:`~vbdt.trust.chain.TrustStore` (built once, the fast way: it caches
    chain verdicts) or a PEM file of trust anchors; ``crls`` are added to the store's. The signer
    is the one certificate of ``KeyInfo`` that issues none of the others; its chain is validated
    (or its verdict taken from the store's cache), every other ``KeyInfo`` certificate must be on
    that chain, and the backend verifies with that leaf's key only. The bytes are parsed once,
    hardened, then as :func:`verify_tree`.
    """
    return verify_tree(parse_xml(data, limits), trust=trust, directory=directory, legacy_sha1=legacy_sha1, at=at,
                       crls=crls, limits=limits, backend=backend)


def verify_tree(
    tree: etree._ElementTree,
    *,
    trust: str | Path | TrustStore,
    directory: Directory | None = None,
    legacy_sha1: bool = False,
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    backend: DsigBackend | str | None = None,
) -> Verified:
    """:func:`verify` on a tree already parsed by :func:`vbdt.edxml.xmlparse.parse_xml` (and
    validated): the receiving pipeline's one parse. Its signature is checked and its model built
    on that tree. The tree is consumed: building the model moves each attachment's base64 text
    out of it (so a 10 MB file is held once); the signature check itself leaves it as it was. A
    tree with a DTD or an entity is refused: it did not come from the hardened parser.
    """
    check = check_signature(tree, trust=trust, legacy_sha1=legacy_sha1, at=at, crls=crls, limits=limits,
                            backend=backend)
    built = build_package(tree, [], limits=limits)
    if built.package is None:
        raise SignatureProfileError("the signed content is not a readable edXML package")
    return bind_package(check, built.package, directory=directory)


@dataclass(frozen=True)
class SignatureCheck:
    """A signature checked on a tree (:func:`check_signature`), before the model is built from it."""

    verdict: ChainVerdict
    """The signer's validated chain; its leaf's key verified the value."""
    signature_algorithm: str
    digest_algorithm: str


def check_signature(
    tree: etree._ElementTree,
    *,
    trust: str | Path | TrustStore,
    legacy_sha1: bool = False,
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    backend: DsigBackend | str | None = None,
) -> SignatureCheck:
    """The first half of :func:`verify_tree`: the profile, the signer's chain and the signature's
    value and digest, on a tree parsed by :func:`vbdt.edxml.xmlparse.parse_xml`, which it leaves as
    it was. Raises what :func:`verify` raises, except :class:`SignerMismatch` (the binding needs the
    model: :func:`bind_package`). A receiver that also validates the tree checks it with this before
    the model is built (building moves the attachments' text out of the tree), then binds.
    """
    _check_hardened(tree)
    signature = check_profile(tree.getroot(), legacy_sha1=legacy_sha1)
    method = _algorithm(signature, "ds:SignedInfo/ds:SignatureMethod")
    digest = _algorithm(signature, "ds:SignedInfo/ds:Reference/ds:DigestMethod")
    certs = _keyinfo_certificates(signature, limits)
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    verdict = _validate_chain(certs, _store(trust, crls), when)
    _check_key_matches(verdict.leaf, method)
    _backend(backend).check(signature, verdict.leaf, legacy_sha1=legacy_sha1)
    return SignatureCheck(verdict, method, digest)


def bind_package(check: SignatureCheck, package: Package, *, directory: Directory | None = None) -> Verified:
    """The second half of :func:`verify_tree`: ``package``, which the caller built from the very tree
    :func:`check_signature` checked, bound to the signer; :class:`SignerMismatch` when the
    certificate is not the ``From`` agency's (see :func:`vbdt.trust.keys.bind_certificate`)."""
    verdict, method, digest = check.verdict, check.signature_algorithm, check.digest_algorithm
    agency = str(package.sender.organ_id)
    # Never cached: it depends on the package's From and on the directory, both per message.
    binding = bind_certificate(verdict.leaf, agency, directory)
    weak = [name for name, uri in (("signature method", method), ("digest", digest)) if _is_sha1(uri)]
    warnings = [f"weak: the {', '.join(weak)} uses SHA-1, accepted only because legacy verification was asked for"] if weak else []
    return Verified(
        package=package,
        agency=agency,
        signer=_subject(verdict.leaf),
        certificate=verdict.leaf,
        chain=[_subject(cert) for cert in verdict.chain],
        signature_algorithm=method,
        digest_algorithm=digest,
        binding=binding,
        verdict=verdict,
        signing_time=_stated_time(package),
        warnings=warnings,
    )


def _check_hardened(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml("a DOCTYPE is not allowed in edXML: parse with vbdt.edxml.xmlparse.parse_xml")
    if next(tree.getroot().iter(etree.Entity), None) is not None:
        raise UnsafeXml("an entity reference in the tree: parse with vbdt.edxml.xmlparse.parse_xml")


def _is_sha1(uri: str) -> bool:
    return "sha1" in uri.lower()


def _store(trust: str | Path | TrustStore, crls: list[x509.CertificateRevocationList] | None) -> TrustStore:
    if not isinstance(trust, TrustStore):
        return TrustStore.from_pem(trust, crls or []) if crls else anchors_file(Path(trust))
    return TrustStore(trust.anchors, [*trust.crls, *crls]) if crls else trust


def _validate_chain(certs: list[x509.Certificate], store: TrustStore, when: dt.datetime) -> ChainVerdict:
    """The signer among the KeyInfo certificates, validated; refuse any certificate off its chain.

    KeyInfo is outside the signature and unordered: whichever certificate came first proves
    nothing. What is bound to the sender must be the certificate the chain was validated for.
    """
    leaf = signer_among(certs)
    verdict = store.validate(leaf, [c for c in certs if c != leaf], at=when)
    strangers = [c for c in certs if c not in verdict.chain]
    if strangers:
        names = "; ".join(c.subject.rfc4514_string() for c in strangers)
        raise CertificateRejected(f"KeyInfo carries certificates that are not on the signer's chain: {names}")
    return verdict


def _check_key_matches(leaf: x509.Certificate, method: str) -> None:
    key = leaf.public_key()
    wanted = ec.EllipticCurvePublicKey if "ecdsa" in method else rsa.RSAPublicKey
    if not isinstance(key, wanted):
        raise SignatureProfileError(f"the signature method {method} does not fit the signer's {type(key).__name__} key")


def _stated_time(package: Package) -> dt.datetime | None:
    from vbdt.edxml.model import Document

    if isinstance(package, Document):
        own = [t.timestamp for t in package.trace if str(t.organ_id) == str(package.sender.organ_id)]
        return own[-1] if own else None
    return package.timestamp


def check_profile(root: etree._Element, *, legacy_sha1: bool = False) -> etree._Element:
    """The package's one ``ds:Signature``, checked against the edXML profile before any backend or
    certificate is consulted; :class:`SignatureProfileError` otherwise.

    Refused: no signature or more than one, one outside the XML-DSig namespace, a second envelope,
    header or MessageHeader (signature wrapping), a signature that is not the last child of
    ``edXMLHeader``, algorithms outside the profile (SHA-1 only with ``legacy_sha1``), anything but
    one ``Reference URI=""`` with the enveloped-signature and C14N transforms, a ``ds:Object``.
    """
    # one walk in C over the descendants for the four names (four findall(".//") walked four times)
    signatures: list[etree._Element] = []
    others = {_ENVELOPE: 0, _HEADER: 0, _MESSAGE: 0}
    for element in root.iterdescendants(_SIGNATURE, _ENVELOPE, _HEADER, _MESSAGE):
        if element.tag == _SIGNATURE:
            signatures.append(element)
        else:
            others[element.tag] += 1
    if not signatures:
        if root.xpath("//*[local-name()='Signature']"):
            raise SignatureProfileError(
                "the package is not signed: its Signature element is outside the XML-DSig namespace "
                "(defect EDX901 of some senders), so no verifier can check it"
            )
        raise SignatureProfileError("the package is not signed (no ds:Signature in the XML-DSig namespace)")
    if len(signatures) > 1:
        raise SignatureProfileError(f"{len(signatures)} signatures; the edXML profile has exactly one")
    if set(others.values()) != {1}:
        raise SignatureProfileError("more than one envelope, header or MessageHeader: a wrapping attempt")
    signature = signatures[0]
    header = root.find("e:edXMLEnvelope/e:edXMLHeader", _NS)
    if signature.getparent() is not header or header[-1] is not signature:
        raise SignatureProfileError("ds:Signature must be the last child of edXMLHeader")
    _check_algorithms(signature, legacy_sha1=legacy_sha1)
    references = signature.findall("ds:SignedInfo/ds:Reference", _NS)
    if len(references) != 1 or references[0].get("URI") != "":
        raise SignatureProfileError('exactly one Reference with URI="" is allowed (no ID-based references)')
    transforms = [t.get("Algorithm") for t in references[0].findall("ds:Transforms/ds:Transform", _NS)]
    if not transforms or transforms[0] != ENVELOPED or not set(transforms[1:]) <= C14N or len(transforms) > 2:
        raise SignatureProfileError(f"transforms must be enveloped-signature then C14N, found {transforms}")
    if signature.find("ds:Object", _NS) is not None:
        raise SignatureProfileError("ds:Object inside the signature is not allowed")
    return signature


def _algorithm(signature: etree._Element, path: str) -> str:
    element = signature.find(path, _NS)
    return "" if element is None else element.get("Algorithm", "")


def _check_algorithms(signature: etree._Element, *, legacy_sha1: bool) -> None:
    """Only the profile's algorithms, each named once; SHA-1 anywhere only under legacy_sha1."""
    methods = SIGNATURE_METHODS | (LEGACY_SIGNATURE_METHODS if legacy_sha1 else frozenset())
    digests = set(DIGESTS) | (set(LEGACY_DIGESTS) if legacy_sha1 else set())
    for path, allowed in (
        ("ds:SignedInfo/ds:CanonicalizationMethod", C14N),
        ("ds:SignedInfo/ds:SignatureMethod", methods),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", digests),
    ):
        found = signature.findall(path, _NS)
        algorithm = found[0].get("Algorithm", "") if len(found) == 1 else ""
        if algorithm in allowed:
            continue
        if _is_sha1(algorithm):
            raise SignatureProfileError(f"{algorithm} uses SHA-1; it verifies only with legacy_sha1=True")
        name = path.rsplit(":", 1)[-1]
        raise SignatureProfileError(f"{name} must be one of the profile's algorithms, found {algorithm or len(found)}")


def _keyinfo_certificates(signature: etree._Element, limits: Limits) -> list[x509.Certificate]:
    """The KeyInfo certificates, decoded strictly; malformed ones are a CertificateRejected."""
    elements = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if not elements:
        raise CertificateRejected("no X509Certificate in KeyInfo")
    if len(elements) > limits.max_keyinfo_certificates:
        raise CertificateRejected(
            f"{len(elements)} certificates in KeyInfo, over the limit of {limits.max_keyinfo_certificates} "
            "(Limits.max_keyinfo_certificates)"
        )
    certs = []
    for index, element in enumerate(elements):
        text = "".join((element.text or "").split())
        cert = _CERTS.get(text)
        if cert is None:
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
                cert.subject.rfc4514_string()  # parsed lazily: fail here, not deep in the chain builder
                cert.issuer.rfc4514_string()
                cert.public_key()
            except (ValueError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
                raise CertificateRejected(f"KeyInfo certificate {index + 1} cannot be read: {exc}") from None
            check_key_cost(cert)  # before it is kept: a kept certificate passed
            _keep_certificate(text, cert)
        certs.append(cert)
    return certs


# A sender's certificates come with each of its packages: decoded and checked readable once (a
# certificate is immutable; a refused one is never kept). Nothing here is a trust decision.
# Filled before the chain is validated, so bounded against a peer sending certificates of its own
# making: by count (a province verifies receipts from thousands of communes, a few KB each), by
# total size, and no certificate larger than a real one is kept.
_CERTS_KEPT = 16_384
_CERTS_BYTES = 48 * 1024 * 1024  # of base64 text; the parsed objects take about as much again
_CERT_TEXT_KEPT = 16 * 1024  # a 4096-bit RSA certificate with long names is under 3 KB of base64
_CERTS: Kept[str, x509.Certificate] = Kept(_CERTS_KEPT, max_bytes=_CERTS_BYTES, size=lambda text, _: len(text))


def _keep_certificate(text: str, cert: x509.Certificate) -> None:
    """Remember a readable certificate by its base64 text, within the bounds above."""
    if len(text) <= _CERT_TEXT_KEPT:
        _CERTS.put(text, cert)


def _subject(cert: x509.Certificate) -> str:
    """``cert.subject.rfc4514_string()``, kept per certificate object: the signer's and its chain's
    objects come back from the caches above and the store's, and formatting the names of a
    three-certificate chain cost more than the profile check."""
    subject = _SUBJECTS.get(cert)
    if subject is None:
        subject = cert.subject.rfc4514_string()
        _SUBJECTS.put(cert, subject)
    return subject


_SUBJECTS: KeptFor[str] = KeptFor(_CERTS_KEPT)
