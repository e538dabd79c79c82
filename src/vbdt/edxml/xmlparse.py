"""Hardened XML parsing: the only place vbdt turns untrusted bytes into an lxml tree.

No DTD is accepted (so no entity can be declared, expanded or fetched), nothing is loaded from the
network or the disk, and size and nesting depth are bounded before any work is done on the content.
Everything that goes wrong is an :class:`~vbdt.errors.XmlError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

from vbdt.errors import (
    DocumentTooDeep,
    DocumentTooLarge,
    MalformedXml,
    NotEdxml,
    UnsafeXml,
    UsageError,
    XmlError,
)

__all__ = ["DEFAULT_LIMITS", "DS_NS", "EDXML_NS", "Limits", "load_bytes", "parse_xml"]

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""The edXML namespace."""
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""The XML-DSig namespace."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the parser accepts."""

    max_bytes: int = 256 * 1024 * 1024
    """Largest document accepted, in bytes (base64 makes a 190 MB file about 256 MB)."""
    max_depth: int = 32
    """Deepest element nesting accepted (edXML needs about 8)."""


DEFAULT_LIMITS = Limits()
_PROLOG_SCAN = 64 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        # libxml2 caps a text node at 10 MB unless XML_PARSE_HUGE, and a 10 MB PDF is 13.3 MB of
        # base64. The caps it lifts are ours to enforce: no DTD reaches the parser (so nothing can
        # expand), and size and depth are bounded by Limits.
        huge_tree=True,
        remove_blank_text=False,
        collect_ids=False,
    )


def load_bytes(source: bytes | bytearray | memoryview | str | Path | IO[bytes], limits: Limits) -> bytes:
    """Bytes of a document given as bytes, a path or a binary file, refused past the size limit."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise DocumentTooLarge(f"{path}: {size} bytes is over the limit of {limits.max_bytes}")
            data = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory, not a file") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    elif hasattr(source, "read"):
        data = source.read(limits.max_bytes + 1)
        if not isinstance(data, bytes):
            raise UsageError("a file given to vbdt must be opened in binary mode")
    else:
        raise UsageError(f"cannot read a document from {type(source).__name__}")
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(f"document is over the limit of {limits.max_bytes} bytes")
    return data


def parse_xml(data: bytes, limits: Limits = DEFAULT_LIMITS) -> etree._ElementTree:
    """Parse untrusted bytes into a tree whose root is ``{edXML}edXML``.

    Raises :class:`MalformedXml`, :class:`UnsafeXml`, :class:`DocumentTooLarge`,
    :class:`DocumentTooDeep` or :class:`NotEdxml`.
    """
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(f"document is over the limit of {limits.max_bytes} bytes")
    if not data or data.isspace():  # isspace() stops at the first other byte; strip() would copy
        raise MalformedXml("document is empty")
    # A DTD can only come before the root element, so the head of the document is enough; refuse
    # it before libxml2 reads a single declaration.
    if b"<!DOCTYPE" in data[:_PROLOG_SCAN]:
        raise UnsafeXml("a DOCTYPE is not allowed in edXML (entities and DTDs are refused)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg or exc).split(", line ")[0]
        line, column = (exc.position if exc.position else (None, None))
        if "Excessive depth" in message:
            raise DocumentTooDeep(f"elements nest deeper than {limits.max_depth}", line=line) from None
        if "Detected an entity reference loop" in message or "entity" in message.lower():
            raise UnsafeXml(f"entity use refused: {message}", line=line, column=column) from None
        raise MalformedXml(f"not well-formed XML: {message}", line=line, column=column) from None
    except (ValueError, TypeError) as exc:  # e.g. a str with an encoding declaration
        raise MalformedXml(f"not XML: {exc}") from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml("a DOCTYPE is not allowed in edXML (entities and DTDs are refused)")
    # The root may be a comment or PI sibling chain; only the element matters.
    if not isinstance(root.tag, str):
        raise NotEdxml("no root element")
    if root.tag != f"{{{EDXML_NS}}}edXML":
        qname = etree.QName(root)
        if qname.localname == "edXML":
            raise NotEdxml(
                f"root element edXML is in namespace {qname.namespace or '(none)'!r}, "
                f"expected {EDXML_NS!r}",
                line=root.sourceline,
            )
        raise NotEdxml(
            f"root element is {qname.localname!r}, expected edXML in namespace {EDXML_NS!r}",
            line=root.sourceline,
        )
    _check_depth(root, limits.max_depth)
    return tree


def _check_depth(root: etree._Element, max_depth: int) -> None:
    # One XPath in C instead of walking the tree in Python.
    probe = "count(/*" + "/*" * max_depth + ")"
    try:
        too_deep = root.xpath(probe)
    except etree.XPathError as exc:  # pragma: no cover - defensive
        raise XmlError(f"cannot inspect document depth: {exc}") from None
    if too_deep:
        raise DocumentTooDeep(f"elements nest deeper than {max_depth}")
