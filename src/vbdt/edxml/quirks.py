"""Real-world deviations of edXML trees: each found, reported, and repaired to the standard shape.

Every deviation here was seen in packages really delivered through the national document axis or
shipped in vendors' SDK samples. :func:`repair_quirks` runs each repair in turn; a repair changes the
tree only in the way its finding states, so the schema and the model then see the standard shape.
The finding is a warning when reading leniently and an error when reading strictly.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from vbdt.edxml import paths
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.order import ATTACHMENT_ORDER, MESSAGE_HEADER_ORDER, STATUS_HEADER_ORDER, TRACE_LIST_ORDER
from vbdt.edxml.signature_quirks import signature_findings
from vbdt.edxml.text import element_text
from vbdt.edxml.walker import child, header_of, q
from vbdt.edxml.xmlparse import EDXML_NS

__all__ = ["repair_quirks"]

_DATE_TAGS = tuple(f"{{{EDXML_NS}}}{name}" for name in ("PromulgationDate", "DueDate", "Timestamp"))
_TIMESTAMP_TAG = f"{{{EDXML_NS}}}Timestamp"
_ORGAN_ID_TAG = f"{{{EDXML_NS}}}OrganId"
_EDXML_ANY = f"{{{EDXML_NS}}}*"

# Optional elements that some senders write empty; an empty one says nothing and is dropped. (An
# empty SignerInfo, StaffInfo, OtherInfo or BussinessDocumentInfo is valid as it is and kept, and
# so is a Place, which may be an empty line of ToPlaces.)
_OPTIONAL = frozenset({
    "OrganizationInCharge", "OrganName", "OrganAdd", "Email", "Telephone", "Fax", "Website",
    "TypeDetail", "TypeName", "Content", "Competence", "Position", "FullName", "DueDate", "Priority",
    "SphereOfPromulgation", "TyperNotation", "PromulgationAmount", "PageAmount", "Direction",
    "Appendixes", "ResponseFor", "SteeringType", "ToPlaces", "Department", "Staff", "Mobile",
    "Description", "BussinessDocReason", "Paper", "DocumentInfo", "DocumentReceiver", "ReceiverList",
    "ReceiverType", "ReplacementInfoList",
})  # fmt: skip
_OPTIONAL_TAGS = frozenset(f"{{{EDXML_NS}}}{name}" for name in _OPTIONAL)
# SOAP header attributes some systems copy onto TraceHeaderList.
_SOAP_ATTRIBUTES = frozenset({"id", "version", "mustUnderstand", "actor"})
# Entries that a literal "null" OrganId empties: the entry is dropped, not the package.
_DROPPABLE = frozenset({"To", "TraceHeader", "Receiver", "OrganIdList"})

_BARE_LEVEL_1 = re.compile(r"[A-Z][0-9A-Z]{2}")
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})((?: \d{1,2}:\d{2}:\d{2})?)")
_DATE_ONLY = re.compile(r"\d{4}/\d{2}/\d{2}")
_DOCUMENT_ID_DATE = re.compile(r"[^,]+,(\d{4}/\d{2}/\d{2}),.+")


@dataclass
class _Report:
    """The findings of one repair run, all with the run's severity."""

    severity: Severity
    findings: list[Finding] = field(default_factory=list)

    def note(self, code: str, message: str, element: etree._Element, path: str | None = None) -> None:
        self.findings.append(
            Finding(code, self.severity, message, path or paths.element_path(element), element.sourceline)
        )


def repair_quirks(tree: etree._ElementTree, *, lenient: bool) -> list[Finding]:
    """Repair known real-world deviations in place; one finding per deviation."""
    report = _Report(Severity.WARNING if lenient else Severity.ERROR)
    root = tree.getroot()
    # lxml's tag filters run in C: only the elements a repair may touch become Python objects
    _foreign_namespace(report, list(root.iter("{}*")))
    header = header_of(root)
    if header is None:
        return report.findings
    report.findings += signature_findings(header, report.severity)
    message = child(header, "MessageHeader")
    if message is None:
        return report.findings
    is_status = child(message, "StatusCode") is not None
    # no text, no child (a comment is one), no attribute: what //*[not(node()) and not(@*)] finds,
    # among the optional edXML elements only (the tag is tested first, so the text of an
    # attachment, megabytes, is never made a Python string just to see that it is there)
    _empty_elements(report, [e for e in root.iter(_EDXML_ANY) if e.tag in _OPTIONAL_TAGS and e.text is None and not len(e) and not e.attrib])
    _organ_ids(report, list(root.iter(_ORGAN_ID_TAG)))
    _trace_list(report, header, is_status)
    _response_for_code(report, message)
    _dates(report, list(root.iter(*_DATE_TAGS)))
    if is_status:
        _status_code(report, message)
    else:
        _content_ids(report, root)
        _attachment_order(report, root)
    _reorder(report, message, STATUS_HEADER_ORDER if is_status else MESSAGE_HEADER_ORDER)
    if not is_status:
        _missing_parts(report, message)
    return report.findings


# -- namespaces and empty elements


def _foreign_namespace(report: _Report, elements: list[etree._Element]) -> None:
    """EDX909: elements in no namespace inside edXML (a prefix declared on one element only)."""
    for element in elements:
        if any(etree.QName(a).localname == "Signature" for a in element.iterancestors()) or element.tag == "Signature":
            continue  # a namespace-less Signature is EDX901's, whole
        report.note("EDX909", f"{element.tag} is in no namespace; read as edXML:{element.tag}", element)
        element.tag = q(element.tag)


def _empty_elements(report: _Report, elements: list[etree._Element]) -> None:
    """EDX910: an optional element written empty (``<ResponseFor/>``, ``<DueDate></DueDate>``)."""
    for element in elements:
        parent = element.getparent()
        if parent is not None:
            report.note("EDX910", f"empty {_local(element.tag)} ignored", element)
            parent.remove(element)


def _organ_ids(report: _Report, elements: list[etree._Element]) -> None:
    """EDX107: a bare level-1 code (``G12``) is read as ``000.00.00.G12``;
    EDX108: the literal text ``null`` as an OrganId drops the entry it names."""
    for element in elements:
        text = element_text(element).strip()
        if _BARE_LEVEL_1.fullmatch(text):
            report.note("EDX107", f"OrganId {text!r} is a bare level-1 code; read as '000.00.00.{text}'", element)
            _set_text(element, f"000.00.00.{text}")
            continue
        if text.lower() != "null":
            continue
        parent = element.getparent()
        assert parent is not None  # an OrganId is never the root
        name = etree.QName(parent).localname
        if name not in _DROPPABLE:
            continue  # From or ResponseFor: nothing to drop; the reader refuses the identifier
        entry = element if name == "OrganIdList" else parent
        report.note("EDX108", f"OrganId is the text 'null'; this {etree.QName(entry).localname} is ignored", element)
        holder = entry.getparent()
        assert holder is not None
        holder.remove(entry)


# -- trace list


def _trace_list(report: _Report, header: etree._Element, is_status: bool) -> None:
    """EDX510-512 and the order of TraceHeaderList."""
    trace_list = child(header, "TraceHeaderList")
    if trace_list is None:
        if not is_status:
            report.note("EDX512", "no TraceHeaderList: read as a new document (BussinessDocType 0)", header, paths.TRACE)
        return
    for name in list(trace_list.attrib):
        if etree.QName(name).localname in _SOAP_ATTRIBUTES:
            report.note("EDX510", f"SOAP attribute {etree.QName(name).localname}={trace_list.get(name)!r} on TraceHeaderList ignored", trace_list)
            del trace_list.attrib[name]
    for trace in trace_list.findall(q("TraceHeader")):
        if child(trace, "OrganId") is None:
            stamp = child(trace, "Timestamp")
            when = element_text(stamp).strip() if stamp is not None else "no time"
            report.note("EDX511", f"TraceHeader ({when}) names no OrganId, as the axis writes per hop; ignored", trace)
            trace_list.remove(trace)
    if not is_status and child(trace_list, "Bussiness") is None:
        report.note("EDX512", "no Bussiness in TraceHeaderList: read as a new document (BussinessDocType 0)", trace_list)
    _reorder(report, trace_list, TRACE_LIST_ORDER)


# -- values


def _response_for_code(report: _Report, message: etree._Element) -> None:
    """EDX903: ResponseFor/Code written as "7816/VPCP-TTĐT" instead of CodeNumber + CodeNotation."""
    for response in message.iterchildren(q("ResponseFor")):
        code = child(response, "Code")
        if code is None or any(isinstance(child.tag, str) for child in code):
            continue  # CodeNumber and CodeNotation already, or something the schema reports
        text = element_text(code).strip()
        number, sep, notation = text.partition("/")
        if not (sep and number and notation):
            continue  # leave it for the schema to report
        report.note(
            "EDX903",
            f"ResponseFor/Code is the single text {text!r}; the standard form is CodeNumber and CodeNotation elements",
            code,
        )
        _set_text(code, "")
        etree.SubElement(code, q("CodeNumber")).text = number
        etree.SubElement(code, q("CodeNotation")).text = notation


def _dates(report: _Report, elements: list[etree._Element]) -> None:
    """EDX206 (dd/MM/yyyy) and EDX207 (a Timestamp that is a date alone)."""
    for element in elements:
        written = text = element_text(element).strip()
        day_first = _DAY_FIRST.fullmatch(text)
        if day_first:
            day, month, year, time = day_first.groups()
            text = f"{year}/{int(month):02d}/{int(day):02d}{time}"
            report.note("EDX206", f"{written!r} is written dd/MM/yyyy; read as {text!r}", element)
        if element.tag == _TIMESTAMP_TAG and _DATE_ONLY.fullmatch(text):
            report.note("EDX207", f"Timestamp {text!r} is a date alone; read as midnight", element)
            text = f"{text} 00:00:00"
        if text != written:
            _set_text(element, text)


def _status_code(report: _Report, message: etree._Element) -> None:
    """EDX403: a status code without its leading zero ("1" for "01")."""
    element = child(message, "StatusCode")
    text = element_text(element).strip() if element is not None else ""
    if element is not None and len(text) == 1 and text.isdigit():
        report.note("EDX403", f"StatusCode {text!r} lacks its leading zero; read as '0{text}'", element)
        _set_text(element, f"0{text}")


def _set_text(element: etree._Element, text: str) -> None:
    """Replace a leaf's whole text (comments inside included) by ``text``."""
    for node in list(element):
        element.remove(node)
    element.text = text


def _content_ids(report: _Report, root: etree._Element) -> None:
    """EDX305: a ContentId without the ``cid:`` scheme (a bare name or number)."""
    manifest = f"{q('edXMLEnvelope')}/{q('edXMLBody')}/{q('edXMLManifest')}/{q('Reference')}/{q('ContentId')}"
    attachments = f"{q('AttachmentEncoded')}/{q('Attachment')}/{q('ContentId')}"
    for element in [*root.iterfind(manifest), *root.iterfind(attachments)]:
        text = element_text(element).strip()
        if text and not text.startswith("cid:"):
            report.note("EDX305", f"ContentId {text!r} lacks the cid: scheme; read as 'cid:{text}'", element)
            _set_text(element, f"cid:{text}")


# -- order and missing parts


def _reorder(report: _Report, parent: etree._Element, order: Sequence[str]) -> None:
    """EDX902: children out of the standard order are put back in it (when all are known)."""
    rank = _ranks(order)
    children = list(parent.iterchildren(etree.Element))  # elements only (no comment, no PI), in C
    ranks = [rank.get(_local(c.tag), -1) for c in children]
    if -1 in ranks:
        return  # an unknown element: the schema says what it is
    if all(a <= b for a, b in itertools.pairwise(ranks)):
        return
    first = next(i for i in range(1, len(ranks)) if ranks[i] < ranks[i - 1])
    report.note(
        "EDX902",
        f"{_local(children[first].tag)} comes after {_local(children[first - 1].tag)} in "
        f"{etree.QName(parent).localname}; the standard order is {', '.join(order)}",
        children[first],
    )
    for index in sorted(range(len(children)), key=ranks.__getitem__):  # stable, as the order found
        parent.append(children[index])  # moves the element, keeping its sourceline


@functools.cache
def _ranks(order: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(order)}


def _local(tag: str) -> str:
    """The local name of a Clark-notation tag (what ``etree.QName(tag).localname`` says, without the object)."""
    return tag[tag.find("}") + 1 :]


def _attachment_order(report: _Report, root: etree._Element) -> None:
    for attachment in root.iterfind(f"{q('AttachmentEncoded')}/{q('Attachment')}"):
        _reorder(report, attachment, ATTACHMENT_ORDER)


def _missing_parts(report: _Report, message: etree._Element) -> None:
    """EDX911: a minimal header without PromulgationInfo or DocumentType, filled in from what it has."""
    if child(message, "DocumentType") is None:
        report.note("EDX911", "DocumentType is missing; read as Type 1", message, f"{paths.MESSAGE}/DocumentType")
        _insert(message, _leaf_tree("DocumentType", "Type", "1"))
    if child(message, "PromulgationInfo") is None:
        document_id = child(message, "DocumentId")
        match = _DOCUMENT_ID_DATE.fullmatch(element_text(document_id).strip()) if document_id is not None else None
        if match is None or not _is_date(match[1]):
            return  # nothing to derive it from: the schema reports it missing
        report.note(
            "EDX911", f"PromulgationInfo is missing; PromulgationDate {match[1]} taken from DocumentId",
            message, f"{paths.MESSAGE}/PromulgationInfo",
        )  # fmt: skip
        _insert(message, _leaf_tree("PromulgationInfo", "PromulgationDate", match[1]))


def _leaf_tree(name: str, leaf: str, value: str) -> etree._Element:
    element = etree.Element(q(name))
    etree.SubElement(element, q(leaf)).text = value
    return element


_HEADER_RANK = {name: i for i, name in enumerate(MESSAGE_HEADER_ORDER)}


def _insert(message: etree._Element, element: etree._Element) -> None:
    """Insert at the standard position (before the first child that comes after it)."""
    rank = _HEADER_RANK[etree.QName(element).localname]
    for index, node in enumerate(message):
        if isinstance(node.tag, str) and _HEADER_RANK.get(etree.QName(node).localname, -1) > rank:
            message.insert(index, element)
            return
    message.append(element)


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y/%m/%d")
    except ValueError:
        return False
    return True

