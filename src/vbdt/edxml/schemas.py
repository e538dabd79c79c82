"""The XSD schemas of edXML: found, compiled once, and turned into findings.

The schemas live in ``schemas/`` at the top of the source tree and are shipped inside the wheel as
``vbdt/schemas``; :func:`schema_dir` finds whichever is there.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path

from lxml import etree

from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.paths import element_path
from vbdt.edxml.resources import shipped_dir
from vbdt.edxml.xmlparse import EDXML_NS

__all__ = ["SchemaKind", "schema", "schema_dir", "schema_findings"]


class SchemaKind(StrEnum):
    """Which of the two edXML schemas."""

    DOCUMENT = "edxml-document.xsd"
    STATUS = "edxml-status.xsd"


def schema_dir() -> Path:
    """The folder holding the XSD files (installed package first, then the source tree)."""
    return shipped_dir("schemas")


_compiling = threading.Lock()
_per_thread = threading.local()


def schema(kind: SchemaKind) -> etree.XMLSchema:
    """The compiled schema, compiled once per thread.

    A validator keeps its error log on itself, so one object validating in two threads at once
    mixes their errors; and compiling the same schema in two threads at once failed ("Document is
    not valid XML Schema") when the receiving pipeline ran on several worker threads.
    """
    cache: dict[SchemaKind, etree.XMLSchema] | None = getattr(_per_thread, "schemas", None)
    if cache is None:
        cache = _per_thread.schemas = {}
    if kind not in cache:
        path = schema_dir() / kind.value
        # The schema files are ours, but parse them with the same refusal of network access.
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        with _compiling:
            cache[kind] = etree.XMLSchema(etree.parse(str(path), parser))
    return cache[kind]


def schema_findings(tree: etree._ElementTree, kind: SchemaKind) -> list[Finding]:
    """Validate ``tree`` against the schema; one finding per schema error."""
    xsd = schema(kind)
    if xsd.validate(tree):
        return []
    findings = []
    for error in xsd.error_log:
        path = _readable_path(tree, error.path)
        code = "EDX303" if path.endswith("/ContentTransferEncoded") else "EDX001"
        findings.append(
            Finding(
                code=code,
                severity=Severity.ERROR,
                message=_readable_message(error.message),
                path=path,
                line=error.line or None,
            )
        )
    return findings


def _readable_message(message: str) -> str:
    # libxml2 writes names in Clark notation; the edXML namespace is noise to a reader.
    return message.replace(f"{{{EDXML_NS}}}", "").replace("{http://www.w3.org/2000/09/xmldsig#}", "ds:")


def _readable_path(tree: etree._ElementTree, lxml_path: str | None) -> str:
    if not lxml_path:
        return ""
    try:
        found = tree.xpath(lxml_path, namespaces={"edXML": EDXML_NS})
    except etree.XPathError:
        return lxml_path
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return element_path(found[0])
    return lxml_path
