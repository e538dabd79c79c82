"""Building the model from a repaired edXML tree, one small builder per part.

:func:`build_package` dispatches to the document or the status message; each ``_part`` function
reads one element of the standard into its model object through a shared
:class:`~vbdt.edxml.walker.Walker`. What cannot be represented (a missing sender, a date that is not
a date) becomes a finding, and the package is None when a required part is unusable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel

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
from vbdt.edxml.walker import Seen, Unusable, Walker, child
from vbdt.errors import InvalidModel, TooManyAttachments

__all__ = ["Built", "build_package"]

_DATE = "a date yyyy/MM/dd"
_TIME = "a time yyyy/MM/dd HH:mm:ss"

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def _trusted(cls: type[M], values: dict[str, Any]) -> M:
    """``cls(**values)`` without running the validators again, for what the walker already made
    valid: every field given, in the order the model declares them; texts read from lxml (which
    cannot hold a character XML cannot carry); an empty optional text as None; OrganIds parsed,
    numbers, dates, times (Vietnam time, whole seconds) and codes converted; nested parts built.
    What pydantic's ``__init__`` stores, the same way: a fifth of its cost. The public models
    still validate whatever a user builds (tests/edxml/test_reader_equivalence.py compares the two).
    """
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


@dataclass
class Built:
    """What :func:`build_package` makes of a tree."""

    package: Package | None
    """The model, or None when a required part is unusable."""
    findings: list[Finding]
    """Problems met while building (not those already known)."""
    walker: Walker = field(repr=False)
    """The walk that built it, which knows where each part was read."""
    manifest: list[ManifestReference] | None
    """The manifest as written (documents only), to be checked against the attachments."""

    @property
    def lines(self) -> dict[str, int]:
        """Source line of each element path read."""
        return self.walker.lines

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest ancestor that was read (a rule may name an
        element the reader never visited, such as a missing one)."""
        lines = self.walker.lines
        line = lines.get(path)
        while not line and "/" in path:
            path = path.rsplit("/", 1)[0]
            line = lines.get(path)
        return line


def build_package(
    tree: etree._ElementTree,
    known: list[Finding],
    *,
    limits: Limits = DEFAULT_LIMITS,
    seen: Seen | None = None,
) -> Built:
    """Build the model from a (repaired) tree.

    ``known`` are the findings so far (quirks, schema), so the same problem is not reported twice.
    ``seen``, what :func:`vbdt.edxml.quirks.repair_tree` read of this tree (unchanged since), spares
    reading it again.
    Raises :class:`~vbdt.errors.TooManyAttachments` past ``limits.max_attachments``.
    """
    w = Walker(known)
    if seen is not None:
        w.adopt(seen)
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
    return Built(package, w.findings, w, manifest)


# -- organisations and references


_ORGANIZATION = ("OrganName", "OrganizationInCharge", "OrganAdd", "Email", "Telephone", "Fax", "Website")


def _organization(w: Walker, element: etree._Element, path: str) -> Organization:
    id_element, id_path = w.need(element, "OrganId", path)
    name, in_charge, address, email, telephone, fax, website = w.texts(element, path, _ORGANIZATION)
    # `or None`: an optional text written empty is None, as the model's validator makes it
    return _trusted(Organization, {
        "organ_id": w.organ_id(id_element, id_path), "organ_name": name or None,
        "organization_in_charge": in_charge or None, "organ_add": address or None, "email": email or None,
        "telephone": telephone or None, "fax": fax or None, "website": website or None,
    })  # fmt: skip


def _code(w: Walker, element: etree._Element, path: str) -> Code:
    number = w.need_text(element, "CodeNumber", path)
    return _trusted(Code, {"number": number, "notation": w.need_text(element, "CodeNotation", path)})


def _response_for(w: Walker, element: etree._Element, path: str) -> ResponseFor:
    id_element, id_path = w.need(element, "OrganId", path)
    code_found = w.one(element, "Code", path)
    organ_id = w.organ_id(id_element, id_path)
    code = _code(w, *code_found) if code_found else None
    promulgation_date = w.convert(element, "PromulgationDate", path, _date, _DATE, code="EDX201")
    return _trusted(ResponseFor, {
        "organ_id": organ_id, "code": code, "promulgation_date": promulgation_date,
        "document_id": w.text(element, "DocumentId", path) or None,
    })  # fmt: skip


def _staff_info(w: Walker, element: etree._Element, path: str) -> StaffInfo:
    department, staff, email, mobile = w.texts(element, path, ("Department", "Staff", "Email", "Mobile"))
    return _trusted(StaffInfo, {
        "department": department or None, "staff": staff or None, "email": email or None, "mobile": mobile or None,
    })  # fmt: skip


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
        traces.append(_trusted(TraceHeader, {"organ_id": w.organ_id(id_element, id_path), "timestamp": stamp}))
    business_found = w.many(element, "Bussiness", path)
    return traces, _business(w, *business_found[0]) if business_found else None


def _business_info(w: Walker, element: etree._Element, path: str) -> BusinessDocumentInfo:
    receivers = []
    list_found = w.one(element, "ReceiverList", path)
    if list_found:
        for rec_el, rec_path in w.many(list_found[0], "Receiver", list_found[1]):
            id_element, id_path = w.need(rec_el, "OrganId", rec_path)
            kind = w.convert(rec_el, "ReceiverType", rec_path, int, "an integer")
            receivers.append(_trusted(Receiver, {"organ_id": w.organ_id(id_element, id_path), "receiver_type": kind or 0}))
    document_info = w.convert(element, "DocumentInfo", path, int, "an integer")
    document_receiver = w.convert(element, "DocumentReceiver", path, int, "an integer")
    return _trusted(BusinessDocumentInfo, {
        "document_info": document_info, "document_receiver": document_receiver, "receivers": receivers,
    })  # fmt: skip


def _replacements(w: Walker, element: etree._Element, path: str) -> list[ReplacementInfo]:
    out = []
    for rep_el, rep_path in w.many(element, "ReplacementInfo", path):
        ids_found = w.one(rep_el, "OrganIdList", rep_path)
        ids = [w.organ_id(e, p) for e, p in w.many(ids_found[0], "OrganId", ids_found[1])] if ids_found else []
        document_id = w.need_text(rep_el, "DocumentId", rep_path)
        out.append(_trusted(ReplacementInfo, {"document_id": document_id, "organ_ids": ids}))
    return out


def _business(w: Walker, element: etree._Element, path: str) -> Business:
    doc_type = w.convert(element, "BussinessDocType", path, BusinessDocType.of, "0, 1, 2 or 3", required=True)
    info_found = w.one(element, "BussinessDocumentInfo", path)
    replacements_found = w.one(element, "ReplacementInfoList", path)
    staff = w.one(element, "StaffInfo", path)
    reason = w.text(element, "BussinessDocReason", path) or None
    document_id = w.text(element, "DocumentId", path) or None
    paper = w.convert(element, "Paper", path, _boolean, "0, 1, true or false") or False
    document_info = _business_info(w, *info_found) if info_found else None
    staff_info = _staff_info(w, *staff) if staff else None
    return _trusted(Business, {
        "doc_type": doc_type, "reason": reason, "document_id": document_id, "paper": paper,
        "document_info": document_info, "staff_info": staff_info,
        "replacements": _replacements(w, *replacements_found) if replacements_found else [],
    })  # fmt: skip


# -- the document header


def _promulgation(w: Walker, element: etree._Element, path: str) -> PromulgationInfo:
    place = w.text(element, "Place", path) or None
    day = w.convert(element, "PromulgationDate", path, _date, _DATE, required=True, code="EDX201")
    return _trusted(PromulgationInfo, {"place": place, "date": day})


def _document_type(w: Walker, element: etree._Element, path: str) -> DocumentType:
    kind = w.convert(element, "Type", path, int, "an integer") or 1
    detail = w.convert(element, "TypeDetail", path, int, "an integer")
    return _trusted(DocumentType, {"type": kind, "type_detail": detail, "type_name": w.text(element, "TypeName", path) or None})


def _signer(w: Walker, element: etree._Element, path: str) -> SignerInfo:
    competence, position, full_name = w.texts(element, path, ("Competence", "Position", "FullName"))
    return _trusted(SignerInfo, {"competence": competence or None, "position": position or None, "full_name": full_name or None})


def _other_info(w: Walker, element: etree._Element, path: str) -> OtherInfo:
    appendix_found = w.one(element, "Appendixes", path)
    appendixes = [element_text(e) for e, _ in w.within(appendix_found, "Appendix")] if appendix_found else []
    priority = w.convert(element, "Priority", path, Priority.of, "a priority 0-4") or Priority.NORMAL
    sphere = w.text(element, "SphereOfPromulgation", path) or None
    typer = w.text(element, "TyperNotation", path) or None
    amount = w.convert(element, "PromulgationAmount", path, int, "an integer")
    pages = w.convert(element, "PageAmount", path, int, "an integer")
    return _trusted(OtherInfo, {
        "priority": priority, "sphere_of_promulgation": sphere, "typer_notation": typer,
        "promulgation_amount": amount, "page_amount": pages,
        "direction": w.convert(element, "Direction", path, _boolean, "true or false"), "appendixes": appendixes,
    })  # fmt: skip


def _document(
    w: Walker, header: etree._Element, message: etree._Element, root: etree._Element, limits: Limits
) -> Document:
    mp = paths.MESSAGE
    type_found = w.one(message, "DocumentType", mp)
    signer_found = w.one(message, "SignerInfo", mp)
    other_found = w.one(message, "OtherInfo", mp)
    places_found = w.one(message, "ToPlaces", mp)
    traces, business = _trace_list(w, header)
    # in the order the parts were always read: the findings come in that order
    sender = _organization(w, *w.need(message, "From", mp))
    recipients = [_organization(w, e, p) for e, p in w.many(message, "To", mp)]
    document_id = w.need_text(message, "DocumentId", mp)
    code = _code(w, *w.need(message, "Code", mp))
    promulgation = _promulgation(w, *w.need(message, "PromulgationInfo", mp))
    document_type = _document_type(w, *type_found) if type_found else DocumentType()
    subject = w.need_text(message, "Subject", mp)
    content = w.text(message, "Content", mp) or None
    signer = _signer(w, *signer_found) if signer_found else None
    due_date = w.convert(message, "DueDate", mp, _date, _DATE, code="EDX201")
    other_info = _other_info(w, *other_found) if other_found else OtherInfo()
    response_for = [_response_for(w, e, p) for e, p in w.many(message, "ResponseFor", mp)]
    steering_type = w.convert(message, "SteeringType", mp, SteeringType.of, "0, 1 or 2")
    to_places = [element_text(e) for e, _ in w.within(places_found, "Place")] if places_found else []
    attachments = _attachments(w, root, limits)
    # document_id is never empty here (need_text): the model's validator would derive nothing
    return _trusted(Document, {
        "sender": sender, "recipients": recipients, "document_id": document_id, "code": code,
        "promulgation": promulgation, "document_type": document_type, "subject": subject, "content": content,
        "signer": signer, "due_date": due_date, "other_info": other_info, "response_for": response_for,
        "steering_type": steering_type, "to_places": to_places, "trace": traces, "business": business or Business(),
        "attachments": attachments,
    })  # fmt: skip


# -- manifest and attachments


def _manifest(w: Walker, envelope: etree._Element, limits: Limits) -> list[ManifestReference]:
    body = w.one(envelope, "edXMLBody", paths.ENVELOPE)
    manifest = w.first_within(body, "edXMLManifest") if body else None
    if manifest is None:
        return []
    references = w.within(manifest, "Reference")
    _check_count(len(references), "manifest references", limits)
    out = []
    for element, path in references:
        content_id = w.text(element, "ContentId", path) or ""
        content_type = w.text(element, "ContentType", path) or ""
        description = w.text(element, "Description", path) or None
        out.append(_trusted(ManifestReference, {
            "content_id": content_id, "content_type": content_type, "description": description,
            "attachment_name": w.text(element, "AttachmentName", path) or "",
        }))  # fmt: skip
    return out


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
        content_id = w.need_text(element, "ContentId", path)
        name = w.text(element, "AttachmentName", path) or ""
        content_type = w.text(element, "ContentType", path) or "application/octet-stream"
        out.append(_trusted(Attachment, {
            "content_id": content_id, "name": name, "content_type": content_type,
            "description": w.text(element, "Description", path) or None, "content": Base64Content(text),
        }))  # fmt: skip
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
    sender = _organization(w, *w.need(message, "From", mp))
    response_for = _response_for(w, *w.need(message, "ResponseFor", mp))
    staff_info = _staff_info(w, *staff) if staff else None
    status_code = w.convert(message, "StatusCode", mp, StatusCode.of, "a status code (01-06, 13, 15, 16)", required=True)
    description = w.text(message, "Description", mp) or None
    timestamp = w.convert(message, "Timestamp", mp, _timestamp, _TIME, required=True, code="EDX201")
    if description is None and status_code is not None and status_code is not StatusCode.REJECTED:
        description = status_code.label  # the model's default (a rejection must say why: EDX402)
    return _trusted(StatusMessage, {
        "sender": sender, "response_for": response_for, "status_code": status_code, "description": description,
        "timestamp": timestamp, "staff_info": staff_info, "trace": traces,
    })  # fmt: skip


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
