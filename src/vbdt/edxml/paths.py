"""Element paths as findings show them: ``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[3]``.

Local names only; an element is indexed (from 1) among its same-name siblings when there are
several. The reader records the line of every path it reads, the rules name paths the same way,
so a rule's finding about ``To[3]/OrganId`` lands on the right line of the source.
"""

from __future__ import annotations

import re

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
    try:
        # lxml writes the path in C, indexing an element among same-tag siblings exactly as below
        # (a fifth of the cost, paid on every finding of the reader)
        tree = element.getroottree()
        relative = tree.getelementpath(element)
    except ValueError:  # not an element, or detached from its document's tree
        return _walked_path(element)
    root = "/" + _local(tree.getroot().tag)
    return root if relative == "." else f"{root}/{_CLARK_NAMESPACE.sub('', relative)}"


_CLARK_NAMESPACE = re.compile(r"\{[^}]*\}")


def _local(tag: str) -> str:
    return tag[tag.find("}") + 1 :]


def _walked_path(element: etree._Element) -> str:
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
