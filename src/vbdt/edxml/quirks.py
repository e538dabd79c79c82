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
from typing import Any

from lxml import etree

from vbdt.edxml import paths
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.order import ATTACHMENT_ORDER, MESSAGE_HEADER_ORDER, STATUS_HEADER_ORDER, TRACE_LIST_ORDER
from vbdt.edxml.signature_quirks import signature_findings
from vbdt.edxml.text import element_text
from vbdt.edxml.walker import Seen, q
from vbdt.edxml.xmlparse import DS_NS, EDXML_NS

__all__ = ["repair_quirks", "repair_tree"]

_DATE_TAGS = tuple(f"{{{EDXML_NS}}}{name}" for name in ("PromulgationDate", "DueDate", "Timestamp"))
_TIMESTAMP_TAG = f"{{{EDXML_NS}}}Timestamp"
_ORGAN_ID_TAG = f"{{{EDXML_NS}}}OrganId"

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
# What the one pass over the tree looks at closer, by tag (0: another edXML or XML-DSig element,
# nothing to look at; a tag not listed is looked at to see whether it is in no namespace).
_OPTIONAL_KIND, _DATE_KIND, _ORGAN_ID_KIND, _CONTENT_ID_KIND = 1, 2, 4, 8
_OTHER_EDXML = (
    "edXML", "edXMLEnvelope", "edXMLHeader", "edXMLBody", "edXMLManifest", "MessageHeader", "From", "To",
    "DocumentId", "Code", "CodeNumber", "CodeNotation", "PromulgationInfo", "Place", "DocumentType", "Type",
    "Subject", "SignerInfo", "OtherInfo", "Appendix", "StatusCode", "StaffInfo", "TraceHeaderList",
    "TraceHeader", "Bussiness", "BussinessDocType", "BussinessDocumentInfo", "Receiver", "ReplacementInfo",
    "OrganIdList", "Reference", "ContentType", "AttachmentName", "AttachmentEncoded", "Attachment",
    "ContentTransferEncoded", "DigitalSignature",
)  # fmt: skip
_DSIG = (
    "Signature", "SignedInfo", "CanonicalizationMethod", "SignatureMethod", "Reference", "Transforms", "Transform",
    "DigestMethod", "DigestValue", "SignatureValue", "KeyInfo", "X509Data", "X509Certificate", "X509IssuerSerial",
    "X509IssuerName", "X509SerialNumber", "X509SubjectName", "KeyValue", "RSAKeyValue", "Modulus", "Exponent",
    "Object", "SignatureProperties", "SignatureProperty", "XPath",
)  # fmt: skip
_KIND: dict[object, int] = {
    **{f"{{{EDXML_NS}}}{name}": 0 for name in _OTHER_EDXML},
    **{f"{{{DS_NS}}}{name}": 0 for name in _DSIG},
    **{tag: _OPTIONAL_KIND for tag in _OPTIONAL_TAGS},
    **{tag: _DATE_KIND for tag in _DATE_TAGS},
    _ORGAN_ID_TAG: _ORGAN_ID_KIND,
    f"{{{EDXML_NS}}}ContentId": _CONTENT_ID_KIND,
}
_KIND[f"{{{EDXML_NS}}}DueDate"] = _DATE_KIND | _OPTIONAL_KIND
# SOAP header attributes some systems copy onto TraceHeaderList.
_SOAP_ATTRIBUTES = frozenset({"id", "version", "mustUnderstand", "actor"})
# Entries that a literal "null" OrganId empties: the entry is dropped, not the package.
_DROPPABLE = frozenset({"To", "TraceHeader", "Receiver", "OrganIdList"})
_SIGNATURE_NAMES = ("Signature", "DigitalSignature")
_SIGNATURE_ENDINGS = ("}Signature", "}DigitalSignature")
_BARE_LEVEL_1 = re.compile(r"[A-Z][0-9A-Z]{2}")
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})((?: \d{1,2}:\d{2}:\d{2})?)")
_DATE_ONLY = re.compile(r"\d{4}/\d{2}/\d{2}")
_DOCUMENT_ID_DATE = re.compile(r"[^,]+,(\d{4}/\d{2}/\d{2}),.+")


@dataclass
class _Report:
    """The findings of one repair run, all with the run's severity."""

    severity: Severity
    findings: list[Finding] = field(default_factory=list)
    changed: set[etree._Element] = field(default_factory=set)
    """The elements whose children a repair changed (removed, added, moved)."""

    def note(self, code: str, message: str, element: etree._Element, path: str | None = None) -> None:
        self.findings.append(
            Finding(code, self.severity, message, path or paths.element_path(element), element.sourceline)
        )


def repair_quirks(tree: etree._ElementTree, *, lenient: bool) -> list[Finding]:
    """Repair known real-world deviations in place; one finding per deviation."""
    return repair_tree(tree, lenient=lenient)[0]


def repair_tree(tree: etree._ElementTree, *, lenient: bool) -> tuple[list[Finding], bool, Seen]:
    """:func:`repair_quirks`; whether the repaired tree is a status message
    (:func:`vbdt.edxml.reader.is_status_message` of it, known on the way); and what the pass read
    that no repair changed (:class:`~vbdt.edxml.walker.Seen`, good while the tree is not changed
    again).

    One pass over the tree (:class:`_Scan`) finds what each repair would act on; a repair with
    nothing to act on is skipped, and one with something runs as it always did, on the tree as it
    is then. Every repair that changes the tree says so with a finding.
    """
    report = _Report(Severity.WARNING if lenient else Severity.ERROR)
    root = tree.getroot()
    scan = _Scan(root)
    if scan.foreign:
        _foreign_namespace(report, list(root.iter("{}*")))
        scan = _Scan(root)  # the tags changed
    header = scan.header(root)
    if header is None:
        return report.findings, False, scan.unchanged(report)
    if scan.signature_under(header):
        children = len(header)
        report.findings += signature_findings(header, report.severity)
        if len(header) != children:
            # A signature left the tree with what it held. The scan's flags may count some of it:
            # a repair then looks the slow way and finds nothing more there.
            report.changed.add(header)
    message = scan.child(header, _MESSAGE_TAG)
    if message is None:
        return report.findings, False, scan.unchanged(report)
    is_status = scan.child(message, _STATUS_CODE_TAG) is not None
    if scan.empty:
        # no text, no child (a comment is one), no attribute: what //*[not(node()) and not(@*)] finds,
        # among the optional edXML elements only (the tag is tested first, so the text of an
        # attachment, megabytes, is never made a Python string just to see that it is there)
        _empty_elements(report, [e for e in root.iter(_EDXML_ANY) if e.tag in _OPTIONAL_TAGS and e.text is None and not len(e) and not e.attrib])
    if scan.organ_ids:
        _organ_ids(report, list(root.iter(_ORGAN_ID_TAG)))
    _trace_list(report, header, is_status, scan)
    _response_for_code(report, message, scan)
    if scan.dates:
        _dates(report, list(root.iter(*_DATE_TAGS)))
    if is_status:
        _status_code(report, message, scan)
    else:
        if scan.content_ids:
            _content_ids(report, root)
        _attachment_order(report, root, scan)
    _reorder(report, message, STATUS_HEADER_ORDER if is_status else MESSAGE_HEADER_ORDER)
    if not is_status:
        _missing_parts(report, message, scan)
    return report.findings, is_status, scan.unchanged(report)


_MESSAGE_TAG = q("MessageHeader")
_STATUS_CODE_TAG = q("StatusCode")


class _Scan:
    """One pass over a tree: the children of each element by tag, the text of the leaves it looks
    at (what a :class:`~vbdt.edxml.walker.Walker` reads too), and whether a repair has anything to
    act on.

    The flags err on the safe side: each is what the repair would find now, and nothing the
    repairs before it do can make it find more (they change no value it reads, and a value with
    children, whose text such a change could reach, sets the flag of its repair).
    Lookups among children check the parent, so an element a repair removed is left out.
    """

    __slots__ = ("content_ids", "dates", "empty", "foreign", "kids", "organ_ids", "texts")

    def __init__(self, root: etree._Element) -> None:
        # One loop over each element's children: grouped by tag, and each looked at by kind as it
        # comes (no second pass over the groups, no set of tags per parent).
        kids: dict[etree._Element, dict[Any, list[etree._Element]]] = {}
        texts: dict[etree._Element, str] = {}
        kind_of = _KIND.get
        foreign = _no_namespace(root.tag)
        empty = organ_ids = dates = content_ids = False
        todo = [root]
        pop, push = todo.pop, todo.append
        while todo:
            parent = pop()
            by_tag: dict[Any, list[etree._Element]] = {}
            for node in parent:
                tag = node.tag
                same = by_tag.get(tag)
                if same is None:
                    by_tag[tag] = [node]
                else:
                    same.append(node)
                kind = kind_of(tag)
                if len(node):
                    push(node)
                    if kind:
                        # not empty; but a value whose text is made of its descendants' is looked
                        # at the slow way (a repair before could change a descendant's text)
                        dates = dates or bool(kind & _DATE_KIND)
                        organ_ids = organ_ids or bool(kind & _ORGAN_ID_KIND)
                        content_ids = content_ids or bool(kind & _CONTENT_ID_KIND)
                    elif kind is None and not foreign:
                        foreign = _no_namespace(tag)  # what root.iter("{}*") finds
                    continue
                if not kind:
                    if kind is None and not foreign:
                        foreign = _no_namespace(tag)
                    continue
                text = node.text
                texts[node] = text or ""  # what element_text() gives of a leaf
                if kind == _OPTIONAL_KIND:  # most leaves looked at: only whether empty
                    if text is None and not empty and not node.attrib:
                        empty = True
                    continue
                if kind & _OPTIONAL_KIND and text is None and not node.attrib:
                    empty = True
                if kind & _DATE_KIND and not dates and _date_repaired(text, tag):
                    dates = True
                if kind & _ORGAN_ID_KIND and "." not in (text or ""):
                    organ_ids = True  # a bare level-1 code or "null": no dot in either
                if kind & _CONTENT_ID_KIND and not content_ids and _lacks_cid(text):
                    content_ids = True
            kids[parent] = by_tag
        self.kids = kids
        self.texts = texts
        self.foreign, self.empty, self.organ_ids, self.dates, self.content_ids = (
            foreign, empty, organ_ids, dates, content_ids,
        )

    def unchanged(self, report: _Report) -> Seen:
        """What the pass read of the elements no repair changed."""
        for element in report.changed:
            self.kids.pop(element, None)
            self.texts.pop(element, None)
        return Seen(self.kids, self.texts)

    def children(self, parent: etree._Element, tag: str) -> list[etree._Element]:
        """``list(parent.iterchildren(tag))`` now (a child a repair removed is left out)."""
        found = self.kids.get(parent, {}).get(tag, [])
        return [e for e in found if e.getparent() is parent]

    def child(self, parent: etree._Element, tag: str) -> etree._Element | None:
        """``next(parent.iterchildren(tag), None)`` now."""
        for element in self.kids.get(parent, {}).get(tag, ()):
            if element.getparent() is parent:
                return element
        return None

    def header(self, root: etree._Element) -> etree._Element | None:
        """:func:`~vbdt.edxml.walker.header_of` ``root``."""
        for envelope in self.children(root, q("edXMLEnvelope")):
            header = self.child(envelope, q("edXMLHeader"))
            if header is not None:
                return header
        return None

    def signature_under(self, header: etree._Element) -> bool:
        """Whether ``header`` has a child named Signature or DigitalSignature (in any namespace or none)."""
        return any(
            isinstance(tag, str) and (tag in _SIGNATURE_NAMES or tag.endswith(_SIGNATURE_ENDINGS))
            for tag in self.kids.get(header, {})
        )


def _no_namespace(tag: object) -> bool:
    """An element's tag in no namespace (a comment's or a processing instruction's is a function)."""
    return isinstance(tag, str) and tag[:1] != "{"


def _lacks_cid(text: str | None) -> bool:
    text = (text or "").strip()
    return bool(text) and not text.startswith("cid:")


def _date_repaired(text: str | None, tag: str) -> bool:
    written = (text or "").strip()
    return _date_text(written, tag)[0] != written


_EDXML_ANY = f"{{{EDXML_NS}}}*"


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
            report.changed.add(parent)


def _organ_ids(report: _Report, elements: list[etree._Element]) -> None:
    """EDX107: a bare level-1 code (``G12``) is read as ``000.00.00.G12``;
    EDX108: the literal text ``null`` as an OrganId drops the entry it names."""
    for element in elements:
        text = element_text(element).strip()
        if _BARE_LEVEL_1.fullmatch(text):
            report.note("EDX107", f"OrganId {text!r} is a bare level-1 code; read as '000.00.00.{text}'", element)
            _set_text(report, element, f"000.00.00.{text}")
            continue
        if text.lower() != "null":
            continue
        parent = element.getparent()
        assert parent is not None  # an OrganId is never the root
        name = etree.QName(parent).localname
        if name not in _DROPPABLE:
            continue  # From or ResponseFor: nothing to drop; the reader refuses the identifier
        entry = element if name == "OrganIdList" else parent
        holder = entry.getparent()
        if holder is None:
            continue  # a second null OrganId of an entry already ignored
        report.note("EDX108", f"OrganId is the text 'null'; this {etree.QName(entry).localname} is ignored", element)
        holder.remove(entry)
        report.changed.add(holder)


# -- trace list


def _trace_list(report: _Report, header: etree._Element, is_status: bool, scan: _Scan) -> None:
    """EDX510-512 and the order of TraceHeaderList."""
    trace_list = scan.child(header, q("TraceHeaderList"))
    if trace_list is None:
        if not is_status:
            report.note("EDX512", "no TraceHeaderList: read as a new document (BussinessDocType 0)", header, paths.TRACE)
        return
    for name in list(trace_list.attrib):
        if etree.QName(name).localname in _SOAP_ATTRIBUTES:
            report.note("EDX510", f"SOAP attribute {etree.QName(name).localname}={trace_list.get(name)!r} on TraceHeaderList ignored", trace_list)
            del trace_list.attrib[name]
    for trace in scan.children(trace_list, q("TraceHeader")):  # those not ignored (EDX108)
        if scan.child(trace, _ORGAN_ID_TAG) is None:
            stamp = scan.child(trace, _TIMESTAMP_TAG)
            when = element_text(stamp).strip() if stamp is not None else "no time"
            report.note("EDX511", f"TraceHeader ({when}) names no OrganId, as the axis writes per hop; ignored", trace)
            trace_list.remove(trace)
            report.changed.add(trace_list)
    if not is_status and scan.child(trace_list, q("Bussiness")) is None:
        report.note("EDX512", "no Bussiness in TraceHeaderList: read as a new document (BussinessDocType 0)", trace_list)
    _reorder(report, trace_list, TRACE_LIST_ORDER)


# -- values


def _response_for_code(report: _Report, message: etree._Element, scan: _Scan) -> None:
    """EDX903: ResponseFor/Code written as "7816/VPCP-TTĐT" instead of CodeNumber + CodeNotation."""
    for response in scan.children(message, q("ResponseFor")):  # those not dropped empty (EDX910)
        code = scan.child(response, q("Code"))
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
        _set_text(report, code, "")
        etree.SubElement(code, q("CodeNumber")).text = number
        etree.SubElement(code, q("CodeNotation")).text = notation


def _dates(report: _Report, elements: list[etree._Element]) -> None:
    """EDX206 (dd/MM/yyyy) and EDX207 (a Timestamp that is a date alone)."""
    for element in elements:
        written = element_text(element).strip()
        text, day_first, date_alone = _date_text(written, element.tag)
        if day_first:
            report.note("EDX206", f"{written!r} is written dd/MM/yyyy; read as {day_first!r}", element)
        if date_alone:
            report.note("EDX207", f"Timestamp {date_alone!r} is a date alone; read as midnight", element)
        if text != written:
            _set_text(report, element, text)


def _date_text(written: str, tag: str) -> tuple[str, str | None, str | None]:
    """The text a date is read as; the date reordered from dd/MM/yyyy (EDX206) and the date a
    Timestamp is alone (EDX207), when so."""
    text = written
    day_first = _DAY_FIRST.fullmatch(text)
    reordered = None
    if day_first:
        day, month, year, time = day_first.groups()
        text = reordered = f"{year}/{int(month):02d}/{int(day):02d}{time}"
    alone = None
    if tag == _TIMESTAMP_TAG and _DATE_ONLY.fullmatch(text):
        alone = text
        text = f"{text} 00:00:00"
    return text, reordered, alone


def _status_code(report: _Report, message: etree._Element, scan: _Scan) -> None:
    """EDX403: a status code without its leading zero ("1" for "01")."""
    element = scan.child(message, _STATUS_CODE_TAG)
    text = element_text(element).strip() if element is not None else ""
    if element is not None and len(text) == 1 and text.isdigit():
        report.note("EDX403", f"StatusCode {text!r} lacks its leading zero; read as '0{text}'", element)
        _set_text(report, element, f"0{text}")


def _set_text(report: _Report, element: etree._Element, text: str) -> None:
    """Replace a leaf's whole text (comments inside included) by ``text``."""
    report.changed.add(element)
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
            _set_text(report, element, f"cid:{text}")


# -- order and missing parts


def _reorder(report: _Report, parent: etree._Element, order: Sequence[str]) -> None:
    """EDX902: children out of the standard order are put back in it (when all are known)."""
    rank = _ranks(order)
    children = list(parent.iterchildren(etree.Element))  # elements only (no comment, no PI), in C
    ranks = [rank[tag] if tag in rank else _rank(rank, tag) for tag in [c.tag for c in children]]
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
    report.changed.add(parent)


@functools.cache
def _ranks(order: Sequence[str]) -> dict[str, int]:
    """The rank of each name of ``order``, by local name and by edXML tag (the tags met are added)."""
    return {name: i for i, name in enumerate(order)} | {q(name): i for i, name in enumerate(order)}


def _rank(rank: dict[str, int], tag: str) -> int:
    """The rank of a tag not yet met: by its local name, whatever its namespace (-1: unknown)."""
    found = rank.get(_local(tag), -1)
    if len(rank) < 256:  # a hostile document's made-up tags do not grow it without bound
        rank[tag] = found
    return found


def _local(tag: str) -> str:
    """The local name of a Clark-notation tag (what ``etree.QName(tag).localname`` says, without the object)."""
    return tag[tag.find("}") + 1 :]


def _attachment_order(report: _Report, root: etree._Element, scan: _Scan) -> None:
    # root.iterfind("AttachmentEncoded/Attachment")
    for encoded in scan.children(root, q("AttachmentEncoded")):
        for attachment in scan.children(encoded, q("Attachment")):
            _reorder(report, attachment, ATTACHMENT_ORDER)


def _missing_parts(report: _Report, message: etree._Element, scan: _Scan) -> None:
    """EDX911: a minimal header without PromulgationInfo or DocumentType, filled in from what it has."""
    if scan.child(message, q("DocumentType")) is None:
        report.note("EDX911", "DocumentType is missing; read as Type 1", message, f"{paths.MESSAGE}/DocumentType")
        _insert(report, message, _leaf_tree("DocumentType", "Type", "1"))
    if scan.child(message, q("PromulgationInfo")) is None:
        document_id = scan.child(message, q("DocumentId"))
        match = _DOCUMENT_ID_DATE.fullmatch(element_text(document_id).strip()) if document_id is not None else None
        if match is None or not _is_date(match[1]):
            return  # nothing to derive it from: the schema reports it missing
        report.note(
            "EDX911", f"PromulgationInfo is missing; PromulgationDate {match[1]} taken from DocumentId",
            message, f"{paths.MESSAGE}/PromulgationInfo",
        )  # fmt: skip
        _insert(report, message, _leaf_tree("PromulgationInfo", "PromulgationDate", match[1]))


def _leaf_tree(name: str, leaf: str, value: str) -> etree._Element:
    element = etree.Element(q(name))
    etree.SubElement(element, q(leaf)).text = value
    return element


_HEADER_RANK = {name: i for i, name in enumerate(MESSAGE_HEADER_ORDER)}


def _insert(report: _Report, message: etree._Element, element: etree._Element) -> None:
    """Insert at the standard position (before the first child that comes after it)."""
    report.changed.add(message)
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

