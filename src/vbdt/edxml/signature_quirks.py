"""What the reader can tell about a signature in the envelope before any verification.

Real packages carry signatures that cannot verify for reasons a clerk should read in plain words,
not as "digest mismatch": a ``Signature`` outside the XML-DSig namespace, SHA-1, a misnamed
canonicalisation URI, a truncated certificate, an empty ``DigitalSignature`` placeholder element, and
the placeholder that the national axis' SDK samples ship (the same SignatureValue and DigestValue in
every file). Each is reported; a signature that cannot be a real XML-DSig one is removed from the
reader's tree (the trust layer verifies its own parse of the bytes).
"""

from __future__ import annotations

from lxml import etree

from vbdt.edxml import paths
from vbdt.edxml.attachment import Base64Content
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.text import element_text
from vbdt.edxml.xmlparse import DS_NS

__all__ = ["SDK_PLACEHOLDER_DIGESTS", "signature_findings"]

SDK_PLACEHOLDER_DIGESTS = frozenset({"FwgIqsSYJshUS2+wlOM61L+q7Aw="})
"""DigestValues of the placeholder signature copied from the SDK samples into real packages."""
_PLACEHOLDER_SIGNATURE_PREFIX = "GbVb8n9+qFxz466Ag0sbpVdLPs2R0+9JBekp12Uy"

# Seen in real packages: the W3C recommendation's page address used in place of the algorithm URI.
_MISNAMED_C14N = frozenset({"http://www.w3.org/TR/xml-exc-c14n#", "http://www.w3.org/TR/xml-exc-c14n/"})


_LEGACY_NAMES = tuple(f"{{*}}{name}" for name in (
    "SignatureMethod", "DigestMethod", "CanonicalizationMethod", "Transform", "X509Certificate"))


def signature_findings(header: etree._Element, severity: Severity) -> list[Finding]:
    """EDX901, EDX904-EDX908 for the signatures in ``edXMLHeader``; unusable ones are removed."""
    findings: list[Finding] = []
    # only these two names concern us (lxml filters in C); a list: removing ends a live iteration
    for child in list(header.iterchildren("{*}DigitalSignature", "{*}Signature")):
        name, namespace = etree.QName(child).localname, etree.QName(child).namespace
        if name == "DigitalSignature" and len(child) == 0 and not element_text(child).strip():
            findings.append(_finding("EDX908", severity, "empty DigitalSignature element ignored (no signature)", child))
            header.remove(child)
            continue
        if name != "Signature":
            continue
        placeholder = _is_placeholder(child)
        if namespace != DS_NS:
            findings.append(_finding(
                "EDX901", severity,
                f"Signature is in namespace {namespace or '(none)'!r}, not XML-DSig ({DS_NS}); "
                "it cannot be verified and is ignored",
                child,
            ))  # fmt: skip
            findings += _legacy_details(child, severity)
        if placeholder:
            findings.append(_finding(
                "EDX907", severity,
                "this is the placeholder signature of the national axis' SDK samples (the same "
                "SignatureValue and DigestValue in every file), not a signature of this package",
                child,
            ))  # fmt: skip
        if placeholder or namespace != DS_NS:
            header.remove(child)
    return findings


def _finding(code: str, severity: Severity, message: str, element: etree._Element) -> Finding:
    return Finding(code, severity, message, paths.element_path(element), element.sourceline)


def _is_placeholder(signature: etree._Element) -> bool:
    # lxml filters the two names in C, whatever their namespace: the certificates' long texts
    # are never read
    for element in signature.iter("{*}DigestValue", "{*}SignatureValue"):
        name = etree.QName(element).localname
        text = "".join(element_text(element).split())
        if name == "DigestValue" and text in SDK_PLACEHOLDER_DIGESTS:
            return True
        if name == "SignatureValue" and text.startswith(_PLACEHOLDER_SIGNATURE_PREFIX):
            return True
    return False


def _legacy_details(signature: etree._Element, severity: Severity) -> list[Finding]:
    """What else is wrong with a misplaced signature: weak algorithms, a broken certificate."""
    out = []
    for element in signature.iter(*_LEGACY_NAMES):  # filtered in C, in document order
        name = etree.QName(element).localname
        algorithm = element.get("Algorithm", "")
        if name in ("SignatureMethod", "DigestMethod") and algorithm.endswith(("sha1", "#rsa-sha1", "#dsa-sha1")):
            message = f"{name} {algorithm} uses SHA-1, which vbdt verifies only on an explicit legacy opt-in"
            out.append(_finding("EDX904", severity, message, element))
        elif name in ("CanonicalizationMethod", "Transform") and algorithm in _MISNAMED_C14N:
            message = (
                f"{name} {algorithm} is not an algorithm identifier; exclusive C14N is "
                "http://www.w3.org/2001/10/xml-exc-c14n#"
            )
            out.append(_finding("EDX906", severity, message, element))
        elif name == "X509Certificate":
            problem = _certificate_problem("".join(element_text(element).split()))
            if problem:
                out.append(_finding("EDX905", severity, problem, element))
    return out


def _certificate_problem(text: str) -> str | None:
    problem = Base64Content(text).problem()
    if problem is None:
        from cryptography import x509  # only for the rare misplaced signature: keep import time low

        try:
            x509.load_der_x509_certificate(Base64Content(text).read())
        except ValueError as exc:
            problem = f"not a DER certificate ({exc})"
    if problem is None:
        return None
    shown = f"{text[:16]!r}{'...' if len(text) > 16 else ''}"
    return f"X509Certificate {shown} is not a certificate: {problem}"
