"""Building the model from a repaired edXML tree, one small builder per part.

:func:`build_package` dispatches to the document or the status message; each ``_part`` function
reads one element of the standard into its model object through a shared
:class:`~vbdt.edxml.walker.Walker`. What cannot be represented (a missing sender, a date that is not
a date) becomes a finding, and the package is None when a required part is unusable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from vbdt.edxml import paths
from vbdt.edxml.attachment import Base64Content
from vbdt.edxml.codes import BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.model import (
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    Document,
    DocumentType,
    ManifestReference,
    Organization,
    OtherInfo,
    Package,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from vbdt.edxml.text import element_text
from vbdt.edxml.walker import Unusable, Walker, child
from vbdt.errors import InvalidModel, TooManyAttachments

__all__ = ["Built", "build_package"]

_DATE = "a date yyyy/MM/dd"
_TIME = "a time yyyy/MM/dd HH:mm:ss"


@dataclass
class Built:
    """What :func:`build_package` makes of a tree."""

    package: Package | None
    """The model, or None when a required part is unusable."""
    findings: list[Finding]
    """Problems met while building (not those already known)."""
    lines: dict[str, int]
    """Source line of each element path read."""
    manifest: list[ManifestReference] | None
    """The manifest as written (documents only), to be checked against the attachments."""


def build_package(tree: etree._ElementTree, known: list[Finding], *, limits: Limits = DEFAULT_LIMITS) -> Built:
    """Build the model from a (repaired) tree.

    ``known`` are the findings so far (quirks, schema), so the same problem is not reported twice.
    Raises :class:`~vbdt.errors.TooManyAttachments` past ``limits.max_attachments``.
    """
    w = Walker(known)
    root = tree.getroot()
    package: Package | None = None
    manifest: list[ManifestReference] | None = None
    try:
        envelope, envelope_path = w.need(root, "edXMLEnvelope", paths.ROOT)
        header, header_path = w.need(envelope, "edXMLHeader", envelope_path)
        message, _ = w.need(header, "MessageHeader", header_path)
        if child(message, "StatusCode") is not None:
            package = _status(w, header, message)
        else:
            manifest = _manifest(w, envelope, limits)
            package = _document(w, header, message, root, limits)
    except Unusable:
        package = None
    except InvalidModel as exc:
        w.findings.append(Finding("EDX001", Severity.ERROR, str(exc), paths.MESSAGE, None))
        package = None
    return Built(package, w.findings, w.lines, manifest)


# -- organisations and references


_ORGANIZATION = ("OrganName", "OrganizationInCharge", "OrganAdd", "Email", "Telephone", "Fax", "Website")


def _organization(w: Walker, element: etree._Element, path: str) -> Organization:
    id_element, id_path = w.need(element, "OrganId", path)
    name, in_charge, address, email, telephone, fax, website = w.texts(element, path, _ORGANIZATION)
    return Organization(
        organ_id=w.organ_id(id_element, id_path), organ_name=name, organization_in_charge=in_charge,
        organ_add=address, email=email, telephone=telephone, fax=fax, website=website,
    )  # fmt: skip


def _code(w: Walker, element: etree._Element, path: str) -> Code:
    return Code(number=w.need_text(element, "CodeNumber", path), notation=w.need_text(element, "CodeNotation", path))


def _response_for(w: Walker, element: etree._Element, path: str) -> ResponseFor:
    id_element, id_path = w.need(element, "OrganId", path)
    code_found = w.one(element, "Code", path)
    return ResponseFor(
        organ_id=w.organ_id(id_element, id_path),
        code=_code(w, *code_found) if code_found else None,
        promulgation_date=w.convert(element, "PromulgationDate", path, _date, _DATE, code="EDX201"),
        document_id=w.text(element, "DocumentId", path),
    )


def _staff_info(w: Walker, element: etree._Element, path: str) -> StaffInfo:
    department, staff, email, mobile = w.texts(element, path, ("Department", "Staff", "Email", "Mobile"))
    return StaffInfo(department=department, staff=staff, email=email, mobile=mobile)


# -- trace and business


def _trace_list(w: Walker, header: etree._Element) -> tuple[list[TraceHeader], Business | None]:
    found = w.one(header, "TraceHeaderList", paths.HEADER)
    if found is None:
        return [], None
    element, path = found
    traces = []
    for trace_el, trace_path in w.many(element, "TraceHeader", path):
        id_element, id_path = w.need(trace_el, "OrganId", trace_path)
        stamp = w.convert(trace_el, "Timestamp", trace_path, _timestamp, _TIME, required=True, code="EDX201")
        traces.append(TraceHeader(organ_id=w.organ_id(id_element, id_path), timestamp=stamp))
    business_found = w.many(element, "Bussiness", path)
    return traces, _business(w, *business_found[0]) if business_found else None


def _business_info(w: Walker, element: etree._Element, path: str) -> BusinessDocumentInfo:
    receivers = []
    list_found = w.one(element, "ReceiverList", path)
    if list_found:
        for rec_el, rec_path in w.many(list_found[0], "Receiver", list_found[1]):
            id_element, id_path = w.need(rec_el, "OrganId", rec_path)
            kind = w.convert(rec_el, "ReceiverType", rec_path, int, "an integer")
            receivers.append(Receiver(organ_id=w.organ_id(id_element, id_path), receiver_type=kind or 0))
    return BusinessDocumentInfo(
        document_info=w.convert(element, "DocumentInfo", path, int, "an integer"),
        document_receiver=w.convert(element, "DocumentReceiver", path, int, "an integer"),
        receivers=receivers,
    )


def _replacements(w: Walker, element: etree._Element, path: str) -> list[ReplacementInfo]:
    out = []
    for rep_el, rep_path in w.many(element, "ReplacementInfo", path):
        ids_found = w.one(rep_el, "OrganIdList", rep_path)
        ids = [w.organ_id(e, p) for e, p in w.many(ids_found[0], "OrganId", ids_found[1])] if ids_found else []
        out.append(ReplacementInfo(document_id=w.need_text(rep_el, "DocumentId", rep_path), organ_ids=ids))
    return out


def _business(w: Walker, element: etree._Element, path: str) -> Business:
    doc_type = w.convert(element, "BussinessDocType", path, BusinessDocType.of, "0, 1, 2 or 3", required=True)
    info_found = w.one(element, "BussinessDocumentInfo", path)
    replacements_found = w.one(element, "ReplacementInfoList", path)
    staff = w.one(element, "StaffInfo", path)
    return Business(
        doc_type=doc_type,
        reason=w.text(element, "BussinessDocReason", path),
        document_id=w.text(element, "DocumentId", path),
        paper=w.convert(element, "Paper", path, _boolean, "0, 1, true or false") or False,
        document_info=_business_info(w, *info_found) if info_found else None,
        staff_info=_staff_info(w, *staff) if staff else None,
        replacements=_replacements(w, *replacements_found) if replacements_found else [],
    )


# -- the document header


def _promulgation(w: Walker, element: etree._Element, path: str) -> PromulgationInfo:
    return PromulgationInfo(
        place=w.text(element, "Place", path),
        date=w.convert(element, "PromulgationDate", path, _date, _DATE, required=True, code="EDX201"),
    )


def _document_type(w: Walker, element: etree._Element, path: str) -> DocumentType:
    return DocumentType(
        type=w.convert(element, "Type", path, int, "an integer") or 1,
        type_detail=w.convert(element, "TypeDetail", path, int, "an integer"),
        type_name=w.text(element, "TypeName", path),
    )


def _signer(w: Walker, element: etree._Element, path: str) -> SignerInfo:
    competence, position, full_name = w.texts(element, path, ("Competence", "Position", "FullName"))
    return SignerInfo(competence=competence, position=position, full_name=full_name)


def _other_info(w: Walker, element: etree._Element, path: str) -> OtherInfo:
    appendix_found = w.one(element, "Appendixes", path)
    appendixes = [element_text(e) for e, _ in w.within(appendix_found, "Appendix")] if appendix_found else []
    return OtherInfo(
        priority=w.convert(element, "Priority", path, Priority.of, "a priority 0-4") or Priority.NORMAL,
        sphere_of_promulgation=w.text(element, "SphereOfPromulgation", path),
        typer_notation=w.text(element, "TyperNotation", path),
        promulgation_amount=w.convert(element, "PromulgationAmount", path, int, "an integer"),
        page_amount=w.convert(element, "PageAmount", path, int, "an integer"),
        direction=w.convert(element, "Direction", path, _boolean, "true or false"),
        appendixes=appendixes,
    )


def _document(
    w: Walker, header: etree._Element, message: etree._Element, root: etree._Element, limits: Limits
) -> Document:
    mp = paths.MESSAGE
    type_found = w.one(message, "DocumentType", mp)
    signer_found = w.one(message, "SignerInfo", mp)
    other_found = w.one(message, "OtherInfo", mp)
    places_found = w.one(message, "ToPlaces", mp)
    traces, business = _trace_list(w, header)
    return Document(
        sender=_organization(w, *w.need(message, "From", mp)),
        recipients=[_organization(w, e, p) for e, p in w.many(message, "To", mp)],
        document_id=w.need_text(message, "DocumentId", mp),
        code=_code(w, *w.need(message, "Code", mp)),
        promulgation=_promulgation(w, *w.need(message, "PromulgationInfo", mp)),
        document_type=_document_type(w, *type_found) if type_found else DocumentType(),
        subject=w.need_text(message, "Subject", mp),
        content=w.text(message, "Content", mp),
        signer=_signer(w, *signer_found) if signer_found else None,
        due_date=w.convert(message, "DueDate", mp, _date, _DATE, code="EDX201"),
        other_info=_other_info(w, *other_found) if other_found else OtherInfo(),
        response_for=[_response_for(w, e, p) for e, p in w.many(message, "ResponseFor", mp)],
        steering_type=w.convert(message, "SteeringType", mp, SteeringType.of, "0, 1 or 2"),
        to_places=[element_text(e) for e, _ in w.within(places_found, "Place")] if places_found else [],
        trace=traces,
        business=business or Business(),
        attachments=_attachments(w, root, limits),
    )


# -- manifest and attachments


def _manifest(w: Walker, envelope: etree._Element, limits: Limits) -> list[ManifestReference]:
    body = w.one(envelope, "edXMLBody", paths.ENVELOPE)
    manifest = w.first_within(body, "edXMLManifest") if body else None
    if manifest is None:
        return []
    references = w.within(manifest, "Reference")
    _check_count(len(references), "manifest references", limits)
    return [
        ManifestReference(
            content_id=w.text(element, "ContentId", path) or "",
            content_type=w.text(element, "ContentType", path) or "",
            description=w.text(element, "Description", path),
            attachment_name=w.text(element, "AttachmentName", path) or "",
        )
        for element, path in references
    ]


def _attachments(w: Walker, root: etree._Element, limits: Limits) -> list[Attachment]:
    found = w.one(root, "AttachmentEncoded", paths.ROOT)
    if found is None:
        return []
    elements = w.within(found, "Attachment")
    _check_count(len(elements), "attachments", limits)
    out = []
    for element, path in elements:
        encoded_el, _ = w.need(element, "ContentTransferEncoded", path)
        text = element_text(encoded_el)
        # Free libxml2's copy as soon as Python holds the text: a 10 MB file is not kept twice.
        encoded_el.text = None
        out.append(
            Attachment(
                content_id=w.need_text(element, "ContentId", path),
                name=w.text(element, "AttachmentName", path) or "",
                content_type=w.text(element, "ContentType", path) or "application/octet-stream",
                description=w.text(element, "Description", path),
                content=Base64Content(text),
            )
        )
    return out


def _check_count(count: int, what: str, limits: Limits) -> None:
    if count > limits.max_attachments:
        raise TooManyAttachments(
            f"the package carries {count} {what}, over Limits.max_attachments = {limits.max_attachments}"
        )


# -- the status message


def _status(w: Walker, header: etree._Element, message: etree._Element) -> StatusMessage:
    mp = paths.MESSAGE
    staff = w.one(message, "StaffInfo", mp)
    traces, _ = _trace_list(w, header)
    return StatusMessage(
        sender=_organization(w, *w.need(message, "From", mp)),
        response_for=_response_for(w, *w.need(message, "ResponseFor", mp)),
        staff_info=_staff_info(w, *staff) if staff else None,
        status_code=w.convert(message, "StatusCode", mp, StatusCode.of, "a status code (01-06, 13, 15, 16)", required=True),
        description=w.text(message, "Description", mp),
        timestamp=w.convert(message, "Timestamp", mp, _timestamp, _TIME, required=True, code="EDX201"),
        trace=traces,
    )


# The written form, read without strptime (a tenth of its cost); anything else, an impossible
# date included, goes to strptime, which accepts the same and words the error as before.
_DATE_FORM = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")
_TIME_FORM = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def _date(text: str) -> date:
    match = _DATE_FORM.fullmatch(text)
    if match is not None:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    return datetime.strptime(text, "%Y/%m/%d").date()


def _timestamp(text: str) -> datetime:
    match = _TIME_FORM.fullmatch(text)
    if match is not None:
        try:
            year, month, day, hour, minute, second = map(int, match.groups())
            return datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM_TZ)
        except ValueError:
            pass
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=VIETNAM_TZ)


def _boolean(text: str) -> bool:
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(text)
