"""Hardened XML parsing: the only place vbdt turns untrusted bytes into an lxml tree.

Three guarantees, each from the parser itself rather than from a look at the bytes:

- **Nothing is ever loaded.** A resolver that refuses every URL sits in front of libxml2's entity
  loader, and no option that makes libxml2 read a DTD is set, so no external subset, parameter
  entity or general entity is opened, wherever the DOCTYPE stands (``file:``, ``/dev/zero``, a
  FIFO: never touched). A DOCTYPE before the root is refused as soon as the parser reaches it,
  before its internal subset is read, and any DTD left in the tree is refused after.
- **Nothing is expanded.** Entities are never substituted (no DTD can declare one anyway), and
  XInclude is never processed: an ``xi:include`` stays an element.
- **The tree is bounded while it is built.** The bytes are fed to a pull parser in chunks; nodes
  and attributes are counted as they come and the parse stops past ``Limits.max_elements`` or
  ``Limits.max_attributes`` (:class:`~vbdt.errors.DocumentTooComplex`), so a bomb of ``<a/>``
  costs what the limits allow, not 30 times its size. Size and depth are bounded too. A document
  shorter (in bytes) than both node limits, with no DOCTYPE, cannot pass them: it is parsed in
  one call, with no event per node.

Documents are read as UTF-8 (edXML's encoding); UTF-16, UTF-32 and the single-byte Latin and
Windows code pages are transcoded to UTF-8 first, so every byte check here sees ``<`` and ``=``
as they are. Everything that goes wrong is an :class:`~vbdt.errors.XmlError`.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lxml import etree

from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.errors import (
    DocumentTooComplex,
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

# Small enough that one chunk of hostile markup costs little past a limit, large enough that a
# 14 MB package parses as fast as with one fromstring() call.
_CHUNK = 64 * 1024
_DOCTYPE = b"<!DOCTYPE"
_NO_DTD = "a DOCTYPE is not allowed in edXML (DTDs and entities are refused, never loaded)"

# Encodings in which '<' or '=' is not always the one byte 0x3C or 0x3D: recognised by their
# first bytes (XML 1.0, appendix F) and transcoded to UTF-8 before anything else.
_WIDE = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\0\0\0", "utf-32-le"),
    (b"\0\0\0<", "utf-32-be"),
    (b"<\0", "utf-16-le"),
    (b"\0<", "utf-16-be"),
)
_DECLARED = re.compile(rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,39})["']""")


class _ExternalRefused(Exception):
    """Raised by the resolver inside libxml2's entity loader; mapped to UnsafeXml."""


class _RefuseAll(etree.Resolver):  # type: ignore[misc]
    """Refuses every external resource before libxml2 opens it: the same answer for every URL,
    so the error tells nothing about which files exist."""

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> None:
        raise _ExternalRefused


def _parser() -> etree.XMLPullParser:
    # A new parser per document: an lxml parser must not be shared between threads.
    parser = etree.XMLPullParser(
        events=("start", "start-ns", "comment", "pi"),
        encoding="UTF-8",  # _as_utf8 made it so; a declaration saying otherwise is ignored
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        # Never collect_ids=False: lxml implements it with libxml2's loadsubset flag, which makes
        # libxml2 load external subsets and parameter entities (the hole of issue 9, point 6).
        # libxml2 caps a text node at 10 MB unless XML_PARSE_HUGE, and a 10 MB PDF is 13.3 MB of
        # base64. The caps it lifts are ours to enforce: nothing can expand, and size, depth,
        # nodes and attributes are bounded by Limits (libxml2 keeps its entity amplification cap).
        huge_tree=True,
        remove_blank_text=False,
    )
    parser.resolvers.add(_RefuseAll())
    return parser


def load_bytes(source: bytes | bytearray | memoryview | str | Path | IO[bytes], limits: Limits) -> bytes:
    """Bytes of a document given as bytes, a path or a binary file, refused past the size limit."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            # read at most one byte past the limit: stat says 0 for devices and FIFOs
            with path.open("rb") as file:
                data = file.read(limits.max_bytes + 1)
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
    :class:`DocumentTooDeep`, :class:`DocumentTooComplex` or :class:`NotEdxml`.
    """
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(f"document is over the limit of {limits.max_bytes} bytes")
    if not data or data.isspace():  # isspace() stops at the first other byte; strip() would copy
        raise MalformedXml("document is empty")
    data = _as_utf8(data)
    root = _build(data, limits)
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml(_NO_DTD)  # defence in depth: _build refuses a DOCTYPE before this
    _check_root(root)
    if not _too_few_tags_to_nest(data, limits.max_depth):
        _check_depth(root, limits.max_depth)
    return tree


# The declarations vbdt and most systems write: UTF-8 said outright, nothing to look up.
_UTF8_DECLARATIONS = tuple(
    f"<?xml version={q}1.0{q} encoding={q}{name}{q}".encode() for q in "\"'" for name in ("UTF-8", "utf-8")
)


def _as_utf8(data: bytes) -> bytes:
    """The document as UTF-8 bytes: as given when it is UTF-8 (or ASCII), else transcoded."""
    if data.startswith(_UTF8_DECLARATIONS):
        return data  # what the declaration's lookup below concludes, without it
    for prefix, codec in _WIDE:
        if data.startswith(prefix):
            return _transcode(data, codec)
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    declared = _DECLARED.match(data, start, start + 512)
    if declared is None:
        return data
    name = declared.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise MalformedXml(f"unknown encoding {name!r}", line=1) from None
    if codec in ("utf-8", "ascii"):
        return data
    if codec.startswith(("iso8859-", "cp125")):  # one byte per character, ASCII kept as is
        return _transcode(data, codec)
    raise MalformedXml(f"encoding {name!r} is not supported: edXML is UTF-8", line=1)


def _transcode(data: bytes, codec: str) -> bytes:
    try:
        return data.decode(codec).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedXml(f"not valid {codec}: {exc.reason} at byte {exc.start}") from None
    except UnicodeEncodeError as exc:  # a lone surrogate that the decoder let through
        raise MalformedXml(f"not valid {codec}: {exc.reason}") from None


_local = threading.local()


def _whole_parser() -> etree.XMLParser:
    """The parser of the fast path: the options of :func:`_parser` without events, one per thread
    (an lxml parser must not be shared between threads; a new one per call costs more than a
    status message's whole parse)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            encoding="UTF-8", resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            attribute_defaults=False, huge_tree=True, remove_blank_text=False,
        )  # fmt: skip
        parser.resolvers.add(_RefuseAll())
    return parser


def _build(data: bytes, limits: Limits) -> etree._Element:
    """The tree of ``data``: in one call when the bytes alone prove it within the limits, else
    fed in chunks, refusing a DOCTYPE and counting nodes as the tree grows.

    Every element, comment and processing instruction starts with a ``<`` and every attribute
    and namespace declaration has a ``=``, so a document with fewer of them than the limits
    cannot exceed either (:func:`_within_limits`): without a DOCTYPE anywhere it is parsed whole,
    with no event per node (most of the cost of a status message's parse). A document that fails
    there is parsed again the counted way, so that every refusal is the one (and says what) the
    counted parse says.
    """
    if _within_limits(data, limits) and not _has_doctype(data):
        try:
            return etree.fromstring(data, _whole_parser())
        except (etree.XMLSyntaxError, _ExternalRefused):
            pass
    return _build_counted(data, limits)


def _within_limits(data: bytes, limits: Limits) -> bool:
    """Whether the bytes alone prove the document within the node and attribute limits: fewer
    bytes than either limit, or else fewer ``<`` than nodes allowed and fewer ``=`` than
    attributes allowed (a 300 KB To list of 1,000 agencies is then parsed whole, not fed in
    chunks with a Python event per node)."""
    if len(data) <= min(limits.max_elements, limits.max_attributes):
        return True
    return (
        _count_upto(data, b"<", limits.max_elements) <= limits.max_elements
        and _count_upto(data, b"=", limits.max_attributes) <= limits.max_attributes
    )


# The span counted (or searched) after each byte memchr found: markup is counted span by span, and
# what lies between spans holds none of the byte, skipped at memchr speed (bytes.count and a
# 9-byte find go at a fifth of it: 30 ms of a 14 MB package, most of it base64 text with neither).
_SPAN = 64 * 1024


def _count_upto(data: bytes, byte: bytes, limit: int) -> int:
    """``data.count(byte)``, or some count past ``limit`` once it is sure to be."""
    count = 0
    found = data.find(byte)
    while found >= 0 and count <= limit:
        end = found + _SPAN
        count += data.count(byte, found, end)
        found = data.find(byte, end)
    return count


def _has_doctype(data: bytes) -> bool:
    """``data.find(b"<!DOCTYPE") >= 0``: searched only in the spans that start at a ``<`` (each
    span searched to the end of a match starting in it, so no match across two is missed)."""
    found = data.find(b"<")
    while found >= 0:
        end = found + _SPAN
        if data.find(_DOCTYPE, found, end + len(_DOCTYPE) - 1) >= 0:
            return True
        found = data.find(b"<", end)
    return False


def _build_counted(data: bytes, limits: Limits) -> etree._Element:
    """Feed the bytes in chunks, refusing a DOCTYPE and counting nodes as the tree grows."""
    parser = _parser()
    budget = _Budget(limits)
    try:
        for start in range(0, len(data), _CHUNK):
            end = min(start + _CHUNK, len(data))
            if not budget.root_seen:
                start = _feed_prolog(parser, budget, data, start, end)
            budget.before_feed(data, start, end)
            parser.feed(data[start:end])
            budget.count(parser.read_events())
        root: etree._Element = parser.close()
        budget.count(parser.read_events())
    except _ExternalRefused:
        raise UnsafeXml(_NO_DTD) from None
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, limits) from None
    return root


def _feed_prolog(parser: etree.XMLPullParser, budget: _Budget, data: bytes, start: int, end: int) -> int:
    """Refuse a DOCTYPE before the root element; return where the caller feeds on from.

    The bytes up to a ``<!DOCTYPE`` are fed first: if the root has not begun by then, it is the
    document type declaration (or text in a comment of the prolog, refused alike) and libxml2 has
    not read a byte of it. After the root, ``<!DOCTYPE`` is only text (a CDATA section, a comment).
    """
    found = data.find(_DOCTYPE, max(0, start - len(_DOCTYPE) + 1), end)
    if found < 0:
        return start
    if found > start:
        budget.before_feed(data, start, found)
        parser.feed(data[start:found])
        budget.count(parser.read_events())
    if not budget.root_seen:
        raise UnsafeXml(_NO_DTD)
    return max(start, found)


class _Budget:
    """Nodes and attributes seen so far, against the limits, and the one start tag in progress."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.nodes = 0
        self.attributes = 0
        self.root_seen = False
        self._in_start_tag = False
        self._pending = 0

    def before_feed(self, data: bytes, start: int, end: int) -> None:
        """Bound the start tag that this chunk may leave unfinished, before libxml2 builds it.

        libxml2 reports an element only once its start tag is complete, and one start tag can
        be megabytes of attributes. Each attribute has a '=' and a start tag has no '<' inside,
        so the '=' after the last '<' (if it opens a start tag) bound what that tag can bring.
        Text after a finished start tag counts too: the bound errs only on the safe side.
        """
        last = data.rfind(b"<", start, end)
        if last >= 0:
            self._in_start_tag = data[last + 1 : last + 2] not in (b"/", b"!", b"?")
            self._pending = 0
            start = last + 1
        if not self._in_start_tag or data.find(b"=", start, end) < 0:  # memchr: base64 has none
            return
        self._pending += data.count(b"=", start, end)
        if self.attributes + self._pending > self.limits.max_attributes:
            raise DocumentTooComplex(
                f"more than {self.limits.max_attributes} attributes (Limits.max_attributes): "
                f"a start tag carries up to {self._pending}"
            )

    def count(self, events: Iterable[tuple[str, Any]]) -> None:
        """Count what the parser reported; refuse past a limit, before the next chunk is read."""
        for event, item in events:
            if event == "start":
                self.root_seen = True
                self.nodes += 1
                self.attributes += len(item.attrib)
            elif event == "start-ns":
                self.attributes += 1  # a namespace declaration is an attribute in the source
            else:  # a comment or a processing instruction: a node of the tree too
                self.nodes += 1
        if self.nodes > self.limits.max_elements:
            raise DocumentTooComplex(
                f"more than {self.limits.max_elements} elements, comments and processing "
                f"instructions (Limits.max_elements)"
            )
        if self.attributes > self.limits.max_attributes:
            raise DocumentTooComplex(
                f"more than {self.limits.max_attributes} attributes and namespace declarations "
                f"(Limits.max_attributes)"
            )


def _syntax_error(exc: etree.XMLSyntaxError, limits: Limits) -> XmlError:
    message = str(exc.msg or exc).split(", line ")[0]
    line, column = exc.position if exc.position else (None, None)
    errors = exc.error_log.filter_from_errors()
    if not line and errors:  # the push parser stopped earlier and close() says only "no element found"
        message, line, column = errors[-1].message, errors[-1].line, errors[-1].column
    if "Excessive depth" in message:
        return DocumentTooDeep(f"elements nest deeper than {limits.max_depth}", line=line)
    if "entity" in message.lower():  # an undefined &name; (none can be defined) or a loop
        return UnsafeXml(f"entity use refused: {message}", line=line, column=column)
    return MalformedXml(f"not well-formed XML: {message}", line=line, column=column)


def _check_root(root: etree._Element) -> None:
    if not isinstance(root.tag, str):
        raise NotEdxml("no root element")
    if root.tag == f"{{{EDXML_NS}}}edXML":
        return
    qname = etree.QName(root)
    if qname.localname == "edXML":
        raise NotEdxml(
            f"root element edXML is in namespace {qname.namespace or '(none)'!r}, expected {EDXML_NS!r}",
            line=root.sourceline,
        )
    raise NotEdxml(
        f"root element is {qname.localname!r}, expected edXML in namespace {EDXML_NS!r}",
        line=root.sourceline,
    )


# Up to this size the bytes are counted for the depth bound below (a status message's 1.7 KB in
# well under a microsecond, where the probe costs a few).
_SMALL = 16 * 1024


def _too_few_tags_to_nest(data: bytes, max_depth: int) -> bool:
    """Whether the UTF-8 bytes alone prove no element deeper than ``max_depth``: one at depth
    ``max_depth + 1`` has ``max_depth`` ancestors, each with a start and an end tag, and its own
    start tag, so its document has at least ``2 * max_depth + 1`` bytes ``<``."""
    return len(data) <= _SMALL and data.count(b"<") <= 2 * max_depth


def _depth_probe(max_depth: int) -> etree.XPath:
    """The compiled probe for elements deeper than ``max_depth``, one per thread and depth."""
    probes: dict[int, etree.XPath] | None = getattr(_local, "probes", None)
    if probes is None:
        probes = _local.probes = {}
    probe = probes.get(max_depth)
    if probe is None:
        probe = probes[max_depth] = etree.XPath("count(/*" + "/*" * max_depth + ")")
    return probe


def _check_depth(root: etree._Element, max_depth: int) -> None:
    # One XPath in C instead of walking the tree in Python, compiled once.
    try:
        too_deep = _depth_probe(max_depth)(root)
    except etree.XPathError as exc:  # pragma: no cover - defensive
        raise XmlError(f"cannot inspect document depth: {exc}") from None
    if too_deep:
        raise DocumentTooDeep(f"elements nest deeper than {max_depth}")
