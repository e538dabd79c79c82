"""XML-DSig of edXML packages, on signxml: sign as the edXML profile says, verify strictly.

Profile: an enveloped ``ds:Signature`` as the last child of ``edXMLHeader``, one ``Reference``
with ``URI=""``, the enveloped-signature and exclusive C14N transforms, ``KeyInfo/X509Data`` with
the certificate and its chain. RSA-SHA256 by default, ECDSA-P256-SHA256 supported; SHA-1 verifies
only with ``legacy_sha1=True`` and is reported as weak.

Verification refuses anything else before signxml sees it (a second signature, a signature
elsewhere, a second header or envelope, ID-based or extra references, a DTD), lets signxml check
the value, digest, chain to the configured trust anchors (never the system store), validity and
key usage, checks CRLs when given, and then binds the certificate to the ``From`` agency
(:mod:`vbdt.keys`). The package handed back is built from what was signed, not from the input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

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
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration

from vbdt.errors import (
    CertificateRejected,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    TrustError,
)
from vbdt.keys import SigningKey, certificate_organ_id, fingerprint, revocation
from vbdt.model import Package
from vbdt.reader import build_package
from vbdt.writer import serialize, to_tree
from vbdt.xmlparse import DEFAULT_LIMITS, DS_NS, EDXML_NS, Limits, parse_xml

__all__ = [
    "CertificateRejected",
    "SignatureInvalid",
    "SignatureProfileError",
    "SignerMismatch",
    "TrustError",
    "Verified",
    "sign",
    "verify",
]


_ALGORITHMS = {
    "rsa-sha256": SignatureMethod.RSA_SHA256,
    "ecdsa-sha256": SignatureMethod.ECDSA_SHA256,
}
_LEGACY = {SignatureMethod.RSA_SHA1}
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N_ALLOWED = {
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
}
_NS = {"ds": DS_NS, "e": EDXML_NS}
# signxml re-parses what it signs or verifies with its own parser, whose libxml2 defaults cap a
# text node at 10 MB: a 7.5 MB PDF in base64 is over that. The verifier takes a parser argument;
# the signer only has the attribute behind it. Ours keeps entities and the network off (signxml
# also refuses DTDs and entities itself).
# A new one per call: an lxml parser must not be shared between threads.


def _signxml_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)



def sign(package: Package | bytes, key: SigningKey, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The package as signed edXML bytes (a model is written first; bytes are parsed hardened)."""
    if isinstance(package, bytes):
        root = parse_xml(package, limits).getroot()
        for old in root.findall("e:edXMLEnvelope/e:edXMLHeader/ds:Signature", _NS):
            old.getparent().remove(old)
    else:
        root = to_tree(package)
    header = root.find("e:edXMLEnvelope/e:edXMLHeader", _NS)
    if header is None:
        raise SignatureProfileError("no edXMLHeader to put the signature in")
    placeholder = etree.SubElement(header, f"{{{DS_NS}}}Signature", Id="placeholder")
    placeholder.tail = "\n  "
    method = SignatureMethod.ECDSA_SHA256 if isinstance(key.private_key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256
    signer = XMLSigner(
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    certs = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (key.certificate, *key.chain)]
    signer._parser = _signxml_parser()
    signed = signer.sign(root, key=key.private_key, cert=certs, always_add_key_value=False)
    signature = signed.find("e:edXMLEnvelope/e:edXMLHeader/ds:Signature", _NS)
    signature.attrib.pop("Id", None)  # KeyInfo and this attribute are outside SignedInfo
    return serialize(signed)


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
    chain: list[str]
    """Subjects from the signer up to the trust anchor."""
    signature_algorithm: str
    digest_algorithm: str
    binding: str
    """How the certificate was bound to the agency: ``uid`` or ``pinned``."""
    signing_time: dt.datetime | None = None
    """When the sender says it signed: its own TraceHeader (documents) or Timestamp (status
    messages), both inside the signed content; the edXML profile has no signed-time property."""
    warnings: list[str] = field(default_factory=list)

    @property
    def weak(self) -> bool:
        """Signed with SHA-1 (accepted only under legacy verification)."""
        return "sha1" in self.signature_algorithm.lower() or "sha1" in self.digest_algorithm.lower()


def verify(
    data: bytes,
    *,
    trust: str | Path,
    directory: object | None = None,
    legacy_sha1: bool = False,
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Verified:
    """Verify a signed package; raise a :class:`TrustError` subclass with the reason, else return it."""
    tree = parse_xml(data, limits)
    root = tree.getroot()
    _check_profile(root, legacy_sha1=legacy_sha1)
    signature = root.find("e:edXMLEnvelope/e:edXMLHeader/ds:Signature", _NS)
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", _NS).get("Algorithm", "")
    methods = frozenset(_ALGORITHMS.values()) | (_LEGACY if legacy_sha1 else frozenset())
    digests = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}) | (
        {DigestAlgorithm.SHA1} if legacy_sha1 else frozenset()
    )
    # Say plainly when the certificate is out of its validity period (the chain builder would
    # only say "no valid chain").
    certs = _x509_chain(signature)  # parsed once: validity here, revocation and binding below
    digest = signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", _NS).get("Algorithm", "")
    # signxml parses the same bytes again (it copies any tree it is given through a serialization);
    # dropping our tree first keeps one copy of a large package less in memory.
    del tree, root, signature
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    for cert in certs:
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise CertificateRejected(
                f"certificate {cert.subject.rfc4514_string()} is not valid at {when:%Y-%m-%d %H:%M} UTC "
                f"(valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}): expired or not yet valid"
            )
    config = SignatureConfiguration(
        location=f"./{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader/",
        expect_references=1,
        signature_methods=methods,
        digest_algorithms=digests,
        verification_time=at,
    )
    try:
        result = XMLVerifier().verify(data, ca_pem_file=str(trust), expect_config=config, parser=_signxml_parser())
    except InvalidDigest as exc:
        raise SignatureInvalid(f"the package changed after signing: {exc}") from None
    except InvalidCertificate as exc:
        raise CertificateRejected(f"certificate rejected: {exc}") from None
    except InvalidSignature as exc:
        text = str(exc)
        if "SHA1" in text.upper() or "not in the list of expected" in text or ("expected" in text and "sha1" in method):
            raise SignatureProfileError(f"{text}; SHA-1 verifies only with legacy_sha1=True") from None
        raise SignatureInvalid(f"signature does not verify: {text}") from None
    except InvalidInput as exc:
        raise SignatureProfileError(f"signature not in the edXML profile: {exc}") from None
    except (ValueError, FileNotFoundError) as exc:
        raise CertificateRejected(f"cannot check the certificate: {exc}") from None
    if isinstance(result, list) or result.signed_xml is None:  # expect_references=1 gives one result
        raise SignatureProfileError("the signed content is not XML")
    signed_tree = result.signed_xml.getroottree()
    built = build_package(signed_tree, [])
    if built.package is None:
        raise SignatureProfileError("the signed content is not a readable edXML package")
    package = built.package
    cert = certs[0]
    _check_crls(certs, crls or [])
    agency = str(package.sender.organ_id)
    binding = _bind(cert, agency, directory)
    warnings = []
    if "sha1" in method.lower():
        warnings.append("weak: signed with SHA-1, accepted only because legacy verification was asked for")
    return Verified(
        package=package,
        agency=agency,
        signer=cert.subject.rfc4514_string(),
        certificate=cert,
        chain=[c.subject.rfc4514_string() for c in certs],
        signature_algorithm=method,
        digest_algorithm=digest,
        binding=binding,
        signing_time=_stated_time(package),
        warnings=warnings,
    )


def _stated_time(package: Package) -> dt.datetime | None:
    from vbdt.model import Document

    if isinstance(package, Document):
        own = [t.timestamp for t in package.trace if str(t.organ_id) == str(package.sender.organ_id)]
        return own[-1] if own else None
    return package.timestamp


def _check_profile(root: etree._Element, *, legacy_sha1: bool) -> None:
    signatures = root.findall(".//ds:Signature", _NS)
    if not signatures:
        if root.xpath("//*[local-name()='Signature']"):
            raise SignatureProfileError(
                "the package is not signed: its Signature element is outside the XML-DSig namespace "
                "(defect EDX901 of some senders), so no verifier can check it"
            )
        raise SignatureProfileError("the package is not signed (no ds:Signature in the XML-DSig namespace)")
    if len(signatures) > 1:
        raise SignatureProfileError(f"{len(signatures)} signatures; the edXML profile has exactly one")
    envelopes = root.findall(".//e:edXMLEnvelope", _NS)
    headers = root.findall(".//e:edXMLHeader", _NS)
    messages = root.findall(".//e:MessageHeader", _NS)
    if len(envelopes) != 1 or len(headers) != 1 or len(messages) != 1:
        raise SignatureProfileError("more than one envelope, header or MessageHeader: a wrapping attempt")
    signature = signatures[0]
    header = root.find("e:edXMLEnvelope/e:edXMLHeader", _NS)
    if signature.getparent() is not header or header[-1] is not signature:
        raise SignatureProfileError("ds:Signature must be the last child of edXMLHeader")
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", _NS)
    algorithm = "" if method is None else method.get("Algorithm", "")
    if "sha1" in algorithm.lower() and not legacy_sha1:
        raise SignatureProfileError(f"{algorithm} uses SHA-1; it verifies only with legacy_sha1=True")
    references = signature.findall("ds:SignedInfo/ds:Reference", _NS)
    if len(references) != 1 or references[0].get("URI") != "":
        raise SignatureProfileError('exactly one Reference with URI="" is allowed (no ID-based references)')
    transforms = [t.get("Algorithm") for t in references[0].findall("ds:Transforms/ds:Transform", _NS)]
    if not transforms or transforms[0] != _ENVELOPED or not set(transforms[1:]) <= _C14N_ALLOWED or len(transforms) > 2:
        raise SignatureProfileError(f"transforms must be enveloped-signature then C14N, found {transforms}")
    if signature.find("ds:Object", _NS) is not None:
        raise SignatureProfileError("ds:Object inside the signature is not allowed")


def _x509_chain(signature: etree._Element) -> list[x509.Certificate]:
    certs = []
    for element in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS):
        der = "".join((element.text or "").split())
        pem = "-----BEGIN CERTIFICATE-----\n" + der + "\n-----END CERTIFICATE-----\n"
        certs.append(x509.load_pem_x509_certificate(pem.encode()))
    if not certs:
        raise CertificateRejected("no X509Certificate in KeyInfo")
    return certs


def _check_crls(certs: list[x509.Certificate], crls: list[x509.CertificateRevocationList]) -> None:
    for cert in certs:
        reason = revocation(cert, crls)
        if reason:
            raise CertificateRejected(reason)


def _bind(cert: x509.Certificate, agency: str, directory: object | None) -> str:
    from vbdt.directory import Directory

    pins: list[str] = []
    if isinstance(directory, Directory) and agency in directory:
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
