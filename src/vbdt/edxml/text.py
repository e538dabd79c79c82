"""An element's text as the signature sees it.

Canonical XML (C14N, without comments) keeps every text node of an element and drops comments and
processing instructions. ``element.text`` stops at the first comment: ``<DocumentId>A<!---->B``
has ``.text == "A"`` while the signed, canonical text is ``"AB"``. Every value vbdt reads from a tree
goes through :func:`element_text`, so a rule never judges other text than the one that was signed.
"""

from __future__ import annotations

from lxml import etree

__all__ = ["element_text"]


def element_text(element: etree._Element) -> str:
    """The concatenated text nodes of ``element`` and its descendants (comments and PIs excluded)."""
    if len(element) == 0:  # a leaf without comment or PI inside: the common, fast case
        return element.text or ""
    return "".join(element.itertext())
