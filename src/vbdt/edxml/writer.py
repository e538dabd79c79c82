"""Model → edXML tree → bytes.

Deterministic (the same model gives the same bytes), UTF-8, in the form the most widespread readers
(the national axis' .NET and Java SDKs) accept: every element carries the ``edXML:`` prefix (some
readers look elements up by their prefixed name, ``edXML:StatusCode``), declared once on the root;
dates ``yyyy/MM/dd`` and times ``yyyy/MM/dd HH:mm:ss`` in Vietnam time; two-digit status codes; the
element order of the SDK samples (:mod:`vbdt.edxml.order`); no empty optional element. Every value goes through lxml, which escapes it; nothing is
built by string concatenation. :func:`to_tree` is public for the signing layer, which adds the
``ds:Signature`` to the tree before it is serialised once.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from vbdt.edxml.model import (
    VIETNAM_TZ,
    Business,
    Code,
    Document,
    Organization,
    Package,
    ResponseFor,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from vbdt.edxml.xmlparse import EDXML_NS
from vbdt.errors import UsageError

__all__ = ["add_trace", "serialize", "to_tree", "write"]

_NSMAP = {"edXML": EDXML_NS}


def _q(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


def _leaf(parent: etree._Element, name: str, value: object, *, required: bool = False) -> None:
    """Append ``<name>value</name>`` unless value is None, or empty for an optional element
    (an empty optional element is a variant strict readers refuse, EDX910)."""
    if value is None or (value == "" and not required):
        return
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.astimezone(VIETNAM_TZ).strftime("%Y/%m/%d %H:%M:%S")
    elif isinstance(value, date):
        text = value.strftime("%Y/%m/%d")
    elif isinstance(value, int):
        text = str(int(value))  # IntEnum members write their number
    else:
        text = str(value)
    etree.SubElement(parent, _q(name)).text = text


def _organization(parent: etree._Element, name: str, org: Organization) -> None:
    el = etree.SubElement(parent, _q(name))
    _leaf(el, "OrganId", str(org.organ_id), required=True)
    _leaf(el, "OrganizationInCharge", org.organization_in_charge)
    _leaf(el, "OrganName", org.organ_name)
    _leaf(el, "OrganAdd", org.organ_add)
    _leaf(el, "Email", org.email)
    _leaf(el, "Telephone", org.telephone)
    _leaf(el, "Fax", org.fax)
    _leaf(el, "Website", org.website)


def _code(parent: etree._Element, code: Code) -> None:
    el = etree.SubElement(parent, _q("Code"))
    _leaf(el, "CodeNumber", code.number, required=True)
    _leaf(el, "CodeNotation", code.notation, required=True)


def _response_for(parent: etree._Element, response: ResponseFor) -> None:
    el = etree.SubElement(parent, _q("ResponseFor"))
    _leaf(el, "OrganId", str(response.organ_id), required=True)
    if response.code is not None:
        _code(el, response.code)
    _leaf(el, "PromulgationDate", response.promulgation_date)
    _leaf(el, "DocumentId", response.document_id)


def _staff(parent: etree._Element, staff: StaffInfo | None) -> None:
    if staff is None:
        return
    el = etree.SubElement(parent, _q("StaffInfo"))
    _leaf(el, "Department", staff.department)
    _leaf(el, "Staff", staff.staff)
    _leaf(el, "Email", staff.email)
    _leaf(el, "Mobile", staff.mobile)


def _trace_list(header: etree._Element, traces: list[TraceHeader], business: Business | None) -> None:
    if not traces and business is None:
        return
    el = etree.SubElement(header, _q("TraceHeaderList"))
    for trace in traces:
        _trace(el, trace)
    if business is None:
        return
    b = etree.SubElement(el, _q("Bussiness"))
    _leaf(b, "DocumentId", business.document_id)
    _leaf(b, "BussinessDocType", business.doc_type)
    _leaf(b, "BussinessDocReason", business.reason)
    _leaf(b, "Paper", 1 if business.paper else 0)
    if business.document_info is not None:
        info = business.document_info
        i = etree.SubElement(b, _q("BussinessDocumentInfo"))
        _leaf(i, "DocumentInfo", info.document_info)
        _leaf(i, "DocumentReceiver", info.document_receiver)
        if info.receivers:
            receivers = etree.SubElement(i, _q("ReceiverList"))
            for receiver in info.receivers:
                r = etree.SubElement(receivers, _q("Receiver"))
                _leaf(r, "OrganId", str(receiver.organ_id))
                _leaf(r, "ReceiverType", receiver.receiver_type)
    _staff(b, business.staff_info)
    if business.replacements:
        replacements = etree.SubElement(b, _q("ReplacementInfoList"))
        for replacement in business.replacements:
            r = etree.SubElement(replacements, _q("ReplacementInfo"))
            _leaf(r, "DocumentId", replacement.document_id, required=True)
            if replacement.organ_ids:
                ids = etree.SubElement(r, _q("OrganIdList"))
                for organ_id in replacement.organ_ids:
                    _leaf(ids, "OrganId", str(organ_id))


def _trace(parent: etree._Element, trace: TraceHeader) -> etree._Element:
    t = etree.SubElement(parent, _q("TraceHeader"))
    _leaf(t, "OrganId", str(trace.organ_id))
    _leaf(t, "Timestamp", trace.timestamp)
    return t


def add_trace(root: etree._Element, trace: TraceHeader) -> None:
    """Append ``trace`` to the trace of a package's tree from :func:`to_tree`, in place: the tree
    :func:`to_tree` makes of the package with ``trace`` appended to its own (the sender adds its
    hop to the document it was given without writing the document twice)."""
    header = root.find(f"{_q('edXMLEnvelope')}/{_q('edXMLHeader')}")
    if header is None or len(header) == 0 or header[0].tag != _q("MessageHeader"):
        raise UsageError("add_trace takes a tree written by to_tree (edXMLEnvelope/edXMLHeader/MessageHeader)")
    traces = header.find(_q("TraceHeaderList"))
    if traces is None:
        traces = etree.Element(_q("TraceHeaderList"))
        header.insert(1, traces)  # where to_tree writes it: right after MessageHeader
    business = traces.find(_q("Bussiness"))
    added = _trace(traces, trace)
    if business is not None:
        business.addprevious(added)  # every TraceHeader comes before Bussiness
    etree.indent(root, space="  ")


def _document_header(message: etree._Element, doc: Document) -> None:
    _organization(message, "From", doc.sender)
    for recipient in doc.recipients:
        _organization(message, "To", recipient)
    _leaf(message, "DocumentId", doc.document_id, required=True)
    _code(message, doc.code)
    p = etree.SubElement(message, _q("PromulgationInfo"))
    _leaf(p, "Place", doc.promulgation.place)
    _leaf(p, "PromulgationDate", doc.promulgation.date)
    t = etree.SubElement(message, _q("DocumentType"))
    _leaf(t, "Type", doc.document_type.type)
    _leaf(t, "TypeDetail", doc.document_type.type_detail)
    _leaf(t, "TypeName", doc.document_type.type_name)
    _leaf(message, "Subject", doc.subject, required=True)
    _leaf(message, "Content", doc.content)
    if doc.signer is not None:
        s = etree.SubElement(message, _q("SignerInfo"))
        _leaf(s, "Competence", doc.signer.competence)
        _leaf(s, "Position", doc.signer.position)
        _leaf(s, "FullName", doc.signer.full_name)
    _leaf(message, "DueDate", doc.due_date)
    o = etree.SubElement(message, _q("OtherInfo"))
    info = doc.other_info
    _leaf(o, "Priority", info.priority)
    _leaf(o, "SphereOfPromulgation", info.sphere_of_promulgation)
    _leaf(o, "TyperNotation", info.typer_notation)
    _leaf(o, "PromulgationAmount", info.promulgation_amount)
    _leaf(o, "PageAmount", info.page_amount)
    _leaf(o, "Direction", info.direction)
    if info.appendixes:
        a = etree.SubElement(o, _q("Appendixes"))
        for appendix in info.appendixes:
            _leaf(a, "Appendix", appendix, required=True)
    for response in doc.response_for:
        _response_for(message, response)
    _leaf(message, "SteeringType", doc.steering_type)
    if doc.to_places:
        places = etree.SubElement(message, _q("ToPlaces"))
        for place in doc.to_places:
            _leaf(places, "Place", place, required=True)


def to_tree(package: Package) -> etree._Element:
    """The edXML tree of a package (no signature), indented like the real samples."""
    root = etree.Element(_q("edXML"), nsmap=_NSMAP)
    envelope = etree.SubElement(root, _q("edXMLEnvelope"))
    header = etree.SubElement(envelope, _q("edXMLHeader"))
    message = etree.SubElement(header, _q("MessageHeader"))
    if isinstance(package, Document):
        _document_header(message, package)
        _trace_list(header, package.trace, package.business)
        body = etree.SubElement(envelope, _q("edXMLBody"))
        manifest = etree.SubElement(body, _q("edXMLManifest"), version="1.0")
        for ref in package.manifest:
            r = etree.SubElement(manifest, _q("Reference"))
            _leaf(r, "ContentId", ref.content_id, required=True)
            _leaf(r, "ContentType", ref.content_type, required=True)
            _leaf(r, "Description", ref.description)
            _leaf(r, "AttachmentName", ref.attachment_name, required=True)
        if package.attachments:
            encoded = etree.SubElement(root, _q("AttachmentEncoded"))
            for attachment in package.attachments:
                a = etree.SubElement(encoded, _q("Attachment"))
                _leaf(a, "ContentId", attachment.content_id, required=True)
                _leaf(a, "AttachmentName", attachment.name, required=True)
                _leaf(a, "Description", attachment.description)
                _leaf(a, "ContentType", attachment.content_type, required=True)
                _leaf(a, "ContentTransferEncoded", attachment.content.base64(), required=True)
    elif isinstance(package, StatusMessage):
        _organization(message, "From", package.sender)
        _response_for(message, package.response_for)
        _staff(message, package.staff_info)
        _leaf(message, "StatusCode", package.status_code.value)
        _leaf(message, "Description", package.description)
        _leaf(message, "Timestamp", package.timestamp)
        _trace_list(header, package.trace, None)
    else:
        raise UsageError(f"cannot write a {type(package).__name__}; expected a Document or StatusMessage")
    etree.indent(root, space="  ")
    return root


def serialize(root: etree._Element) -> bytes:
    """UTF-8 bytes of a tree, with the XML declaration."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8")) + b"\n"


def write(package: Package) -> bytes:
    """The edXML bytes of a package (unsigned; see :mod:`vbdt.trust.xmldsig` to sign)."""
    return serialize(to_tree(package))
