"""Element paths as findings show them: ``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[3]``.

Local names only; an element is indexed (from 1) among its same-name siblings when there are
several. The reader records the line of every path it reads, the rules name paths the same way,
so a rule's finding about ``To[3]/OrganId`` lands on the right line of the source.
"""

from __future__ import annotations

from lxml import etree

__all__ = ["ATTACHMENTS", "BODY", "HEADER", "MESSAGE", "TRACE", "element_path", "indexed"]

ROOT = "/edXML"
ENVELOPE = ROOT + "/edXMLEnvelope"
HEADER = ENVELOPE + "/edXMLHeader"
MESSAGE = HEADER + "/MessageHeader"
TRACE = HEADER + "/TraceHeaderList"
BODY = ENVELOPE + "/edXMLBody"
MANIFEST = BODY + "/edXMLManifest"
ATTACHMENTS = ROOT + "/AttachmentEncoded"


def indexed(name: str, index: int, count: int) -> str:
    """``name[index+1]`` when ``count`` siblings share the name, else ``name``."""
    return f"{name}[{index + 1}]" if count > 1 else name


def element_path(element: etree._Element) -> str:
    """The readable path of an element of a parsed tree."""
    parts = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname if isinstance(node.tag, str) else "?"
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))
