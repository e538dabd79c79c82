"""Bytes → repaired edXML tree → model, with the real-world deviations repaired and reported.

The steps, in the order a document goes through them:

* :func:`parse_tree` parses the bytes with the hardened parser. Two byte-level deviations make a
  file not well-formed, so they are handled here, before the tree exists: bytes before the XML
  declaration (EDX912) and ``xlink:`` used without its namespace declaration (EDX913). Lenient
  reading repairs exactly these and says so; strict reading refuses them with the code in the error.
* :func:`repair_quirks` (:mod:`vbdt.edxml.quirks`) repairs the tree's known deviations so the schema
  and the model see the standard shape; each is a warning when lenient, an error when strict.
* the schema (:mod:`vbdt.edxml.schemas`) runs on the repaired tree;
* :func:`build_package` (:mod:`vbdt.edxml.building`) turns the tree into a
  :class:`~vbdt.edxml.model.Document` or :class:`~vbdt.edxml.model.StatusMessage`.
"""

from __future__ import annotations

import re

from lxml import etree

from vbdt.edxml.building import Built, build_package
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.order import MESSAGE_HEADER_ORDER
from vbdt.edxml.quirks import repair_quirks
from vbdt.edxml.walker import child, header_of
from vbdt.edxml.xmlparse import parse_xml
from vbdt.errors import MalformedXml, NotEdxml

__all__ = ["MESSAGE_HEADER_ORDER", "Built", "build_package", "is_status_message", "parse_tree", "repair_quirks"]

XLINK_NS = "http://www.w3.org/1999/xlink"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_PROLOG_WINDOW = 4096  # how far junk before the declaration is looked for
_UNDECLARED_XLINK = re.compile(r"Namespace prefix xlink\b.* is not defined")
_ROOT_START = re.compile(rb"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)")


def is_status_message(tree: etree._ElementTree) -> bool:
    """True when the ``MessageHeader`` carries a ``StatusCode`` (a delivery receipt)."""
    header = header_of(tree.getroot())
    message = child(header, "MessageHeader") if header is not None else None
    return message is not None and child(message, "StatusCode") is not None


def parse_tree(data: bytes, limits: Limits = DEFAULT_LIMITS, *, lenient: bool) -> tuple[etree._ElementTree, list[Finding]]:
    """Parse untrusted bytes; when lenient, repair the two byte-level deviations first.

    Raises :class:`~vbdt.errors.NotEdxml` for a body that is not XML at all, and
    :class:`~vbdt.errors.MalformedXml` (naming EDX912 or EDX913 when strict) for the rest.
    """
    try:
        return parse_xml(data, limits), []
    except MalformedXml as exc:
        failure = exc  # only a failed parse pays for the byte-level checks
    findings: list[Finding] = []
    severity = Severity.WARNING if lenient else Severity.ERROR
    repaired = _strip_before_declaration(data)
    if repaired is not None:
        skipped = len(data) - len(repaired)
        message = f"{skipped} bytes before the XML declaration"
        if not lenient:
            raise MalformedXml(f"EDX912: {message}; the declaration must come first") from None
        findings.append(Finding("EDX912", severity, f"{message} ignored", "", 1))
        data = repaired
        try:
            return parse_xml(data, limits), findings
        except MalformedXml as exc:
            failure = exc
    if _UNDECLARED_XLINK.search(str(failure)):
        message = "the xlink: prefix is used without its namespace declaration (not namespace-well-formed)"
        if not lenient:
            raise MalformedXml(f"EDX913: {message}") from None
        findings.append(Finding("EDX913", severity, f"{message}; declared as {XLINK_NS}", "", 1))
        return parse_xml(_declare_xlink(data), limits), findings
    raise failure


def _strip_before_declaration(data: bytes) -> bytes | None:
    """The bytes from the XML declaration on, when something precedes it; None otherwise."""
    head = data[:_PROLOG_WINDOW]
    for bom in _BOMS:
        if head.startswith(bom):
            return None  # an encoding mark is allowed before the declaration
    start = head.find(b"<?xml")
    if start > 0:
        return data[start:]
    if start < 0 and head.strip() and not head.lstrip().startswith(b"<"):
        shown = head.lstrip()[:24]
        raise NotEdxml(f"the body is not XML: it starts with {shown!r}, not '<'") from None
    return None


def _declare_xlink(data: bytes) -> bytes:
    """Add the xlink declaration to the root start tag (the one repair of namespace well-formedness)."""
    position = data.find(b"<")
    while position >= 0:
        closer = b"?>" if data.startswith(b"<?", position) else b"-->" if data.startswith(b"<!--", position) else None
        if closer is not None:  # the declaration, a PI or a comment before the root
            end = data.find(closer, position)
            if end < 0:
                break
            position = data.find(b"<", end)
        else:
            match = _ROOT_START.match(data, position)
            if match is None:
                break
            return data[: match.end()] + f' xmlns:xlink="{XLINK_NS}"'.encode() + data[match.end() :]
    raise MalformedXml("EDX913: no root element to declare the xlink prefix on")
