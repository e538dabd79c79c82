"""edXML tree → model, with the real-world quirks repaired and reported.

Three functions, in the order a document goes through them:

* :func:`repair_quirks` finds the known deviations of real systems (``../interop``): a
  ``Signature`` outside the XML-DSig namespace, ``MessageHeader`` children out of order, a
  ``ResponseFor/Code`` written as one text. It repairs the tree so the schema and the model see the
  standard shape, and reports each quirk: as a warning when reading leniently, an error when strict.
* the schema (:mod:`vbdt.schemas`) runs on the repaired tree;
* :func:`build_package` turns the tree into a :class:`~vbdt.model.Document` or
  :class:`~vbdt.model.StatusMessage`, recording the source line of every element path it reads.
  What cannot be represented (a missing sender, a date that is not a date) becomes a finding, and
  the package is None when a required part is unusable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from lxml import etree

from vbdt import paths
from vbdt.attachment import Base64Content
from vbdt.codes import BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.errors import InvalidModel, InvalidOrganId
from vbdt.findings import Finding, Severity
from vbdt.model import (
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
from vbdt.organid import OrganId
from vbdt.xmlparse import DS_NS, EDXML_NS

__all__ = ["MESSAGE_HEADER_ORDER", "Built", "build_package", "is_status_message", "repair_quirks"]

T = TypeVar("T")


@functools.cache
def q(name: str) -> str:
    """Clark name in the edXML namespace."""
    return f"{{{EDXML_NS}}}{name}"


MESSAGE_HEADER_ORDER = (
    "From", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
    "SignerInfo", "DueDate", "OtherInfo", "ResponseFor", "SteeringType", "ToPlaces",
)  # fmt: skip
"""The order of a document's ``MessageHeader`` children, as the writer emits them."""

STATUS_HEADER_ORDER = ("From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp")
"""The order of a status message's ``MessageHeader`` children."""


def _header(tree: etree._ElementTree) -> etree._Element | None:
    return tree.getroot().find(f"{q('edXMLEnvelope')}/{q('edXMLHeader')}")


def is_status_message(tree: etree._ElementTree) -> bool:
    """True when the ``MessageHeader`` carries a ``StatusCode`` (a delivery receipt)."""
    header = _header(tree)
    message = header.find(q("MessageHeader")) if header is not None else None
    return message is not None and message.find(q("StatusCode")) is not None


# --------------------------------------------------------------------------------------------
# Quirks


def repair_quirks(tree: etree._ElementTree, *, lenient: bool) -> list[Finding]:
    """Repair known real-world deviations in place; one finding per deviation."""
    severity = Severity.WARNING if lenient else Severity.ERROR
    findings: list[Finding] = []
    header = _header(tree)
    if header is None:
        return findings

    # EDX901: a Signature element in the edXML (or no) namespace cannot be an XML-DSig signature.
    for child in list(header):
        if isinstance(child.tag, str) and etree.QName(child).localname == "Signature":
            namespace = etree.QName(child).namespace
            if namespace != DS_NS:
                findings.append(
                    Finding(
                        "EDX901",
                        severity,
                        f"Signature is in namespace {namespace or '(none)'!r}, not XML-DSig "
                        f"({DS_NS}); it cannot be verified and is ignored",
                        paths.element_path(child),
                        child.sourceline,
                    )
                )
                findings += _legacy_signature_details(child, severity)
                header.remove(child)

    message = header.find(q("MessageHeader"))
    if message is None:
        return findings

    # EDX903: ResponseFor/Code written as "7816/VPCP-TTĐT" instead of CodeNumber + CodeNotation.
    for response in message.iterfind(q("ResponseFor")):
        code = response.find(q("Code"))
        if code is None or len(code) or not (code.text or "").strip():
            continue
        number, sep, notation = code.text.strip().partition("/")
        if not (sep and number and notation):
            continue  # leave it for the schema to report
        findings.append(
            Finding(
                "EDX903",
                severity,
                f"ResponseFor/Code is the single text {code.text.strip()!r}; the standard form is "
                "CodeNumber and CodeNotation elements",
                paths.element_path(code),
                code.sourceline,
            )
        )
        code.text = None
        etree.SubElement(code, q("CodeNumber")).text = number
        etree.SubElement(code, q("CodeNotation")).text = notation

    # EDX902: MessageHeader children out of the standard order.
    order = STATUS_HEADER_ORDER if message.find(q("StatusCode")) is not None else MESSAGE_HEADER_ORDER
    rank = {name: i for i, name in enumerate(order)}
    children = [c for c in message if isinstance(c.tag, str)]
    names = [etree.QName(c).localname for c in children]
    if all(n in rank for n in names):
        ranks = [rank[n] for n in names]
        if ranks != sorted(ranks):
            first = next(i for i in range(1, len(ranks)) if ranks[i] < ranks[i - 1])
            findings.append(
                Finding(
                    "EDX902",
                    severity,
                    f"{names[first]} comes after {names[first - 1]} in MessageHeader; "
                    f"the standard order is {', '.join(order)}",
                    paths.element_path(children[first]),
                    children[first].sourceline,
                )
            )
            for child in sorted(children, key=lambda c: rank[etree.QName(c).localname]):
                message.append(child)  # moves the element, keeping its sourceline
    return findings


# Seen in real packages: the W3C recommendation's page address used in place of the algorithm URI.
_MISNAMED_C14N = frozenset({"http://www.w3.org/TR/xml-exc-c14n#", "http://www.w3.org/TR/xml-exc-c14n/"})


def _legacy_signature_details(signature: etree._Element, severity: Severity) -> list[Finding]:
    """What else is wrong with a misplaced signature: weak algorithms, a broken certificate."""
    out = []
    for element in signature.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        algorithm = element.get("Algorithm", "")
        if name in ("SignatureMethod", "DigestMethod") and algorithm.endswith(("sha1", "#rsa-sha1", "#dsa-sha1")):
            out.append(
                Finding(
                    "EDX904",
                    severity,
                    f"{name} {algorithm} uses SHA-1, which vbdt verifies only on an explicit legacy opt-in",
                    paths.element_path(element),
                    element.sourceline,
                )
            )
        elif name in ("CanonicalizationMethod", "Transform") and algorithm in _MISNAMED_C14N:
            out.append(
                Finding(
                    "EDX906",
                    severity,
                    f"{name} {algorithm} is not an algorithm identifier; exclusive C14N is "
                    "http://www.w3.org/2001/10/xml-exc-c14n#",
                    paths.element_path(element),
                    element.sourceline,
                )
            )
        elif name == "X509Certificate":
            text = "".join((element.text or "").split())
            problem = Base64Content(text).problem()
            if problem is None:
                try:
                    from cryptography import x509

                    x509.load_der_x509_certificate(Base64Content(text).read())
                except ValueError as exc:
                    problem = f"not a DER certificate ({exc})"
            if problem:
                out.append(
                    Finding(
                        "EDX905",
                        severity,
                        f"X509Certificate {text[:16]!r}{'...' if len(text) > 16 else ''} is not a certificate: {problem}",
                        paths.element_path(element),
                        element.sourceline,
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# Building the model


class _Unusable(Exception):
    """A required part cannot be represented; the finding is already recorded."""


class _Builder:
    """Walks one tree; collects findings and the line of every path it reads."""

    def __init__(self, known: list[Finding]) -> None:
        self.findings: list[Finding] = []
        self.lines: dict[str, int] = {}
        self.manifest: list[ManifestReference] = []
        self._reported = {f.path for f in known}
        # children of each element visited, by tag: one pass over an element instead of a
        # find() per field (the header has a hundred leaves)
        self._kids: dict[etree._Element, dict[str, list[etree._Element]]] = {}

    def kids(self, parent: etree._Element) -> dict[str, list[etree._Element]]:
        found = self._kids.get(parent)
        if found is None:
            found = {}
            for child in parent:
                found.setdefault(child.tag, []).append(child)
            self._kids[parent] = found
        return found

    # -- reporting

    def report(self, code: str, message: str, path: str, line: int | None) -> None:
        if path in self._reported:  # the schema already said what is wrong here
            return
        self._reported.add(path)
        self.findings.append(Finding(code, Severity.ERROR, message, path, line))

    def fail(self, code: str, message: str, path: str, line: int | None) -> _Unusable:
        self.report(code, message, path, line)
        return _Unusable(path)

    # -- navigation

    def at(self, element: etree._Element, path: str) -> str:
        if element.sourceline:
            self.lines[path] = element.sourceline
        return path

    def one(self, parent: etree._Element, name: str, path: str) -> tuple[etree._Element, str] | None:
        found = self.kids(parent).get(q(name))
        if not found:
            return None
        return found[0], self.at(found[0], f"{path}/{name}")

    def need(self, parent: etree._Element, name: str, path: str) -> tuple[etree._Element, str]:
        found = self.one(parent, name, path)
        if found is None:
            raise self.fail("EDX001", f"{name} is missing", f"{path}/{name}", parent.sourceline)
        return found

    def many(self, parent: etree._Element, name: str, path: str) -> list[tuple[etree._Element, str]]:
        elements = self.kids(parent).get(q(name), [])
        return [
            (e, self.at(e, f"{path}/{paths.indexed(name, i, len(elements))}"))
            for i, e in enumerate(elements)
        ]

    # -- leaf values

    def text(self, parent: etree._Element, name: str, path: str) -> str | None:
        found = self.one(parent, name, path)
        return None if found is None else (found[0].text or "")

    def need_text(self, parent: etree._Element, name: str, path: str) -> str:
        element, where = self.need(parent, name, path)
        value = element.text or ""
        if not value:
            raise self.fail("EDX001", f"{name} is empty", where, element.sourceline)
        return value

    def convert(
        self,
        parent: etree._Element,
        name: str,
        path: str,
        parse: Callable[[str], T],
        what: str,
        *,
        required: bool = False,
        code: str = "EDX001",
    ) -> T | None:
        found = self.one(parent, name, path)
        if found is None or not (found[0].text or "").strip():
            if required:
                raise self.fail("EDX001", f"{name} is missing or empty", f"{path}/{name}", parent.sourceline)
            return None
        element, where = found
        raw = (element.text or "").strip()
        try:
            return parse(raw)
        except (ValueError, InvalidModel) as exc:
            detail = f" ({exc})" if str(exc) and str(exc) != raw else ""
            self.report(code, f"{name} {raw!r} is not {what}{detail}", where, element.sourceline)
            if required:
                raise _Unusable(where) from None
            return None

    def organ_id(self, element: etree._Element, path: str) -> OrganId:
        raw = (element.text or "").strip()
        try:
            return OrganId.lenient(raw)
        except InvalidOrganId as exc:
            raise self.fail("EDX101", exc.reason, path, element.sourceline) from None

    # -- parts

    def organization(self, element: etree._Element, path: str) -> Organization:
        id_element, id_path = self.need(element, "OrganId", path)
        fields = {
            "organ_name": "OrganName",
            "organization_in_charge": "OrganizationInCharge",
            "organ_add": "OrganAdd",
            "email": "Email",
            "telephone": "Telephone",
            "fax": "Fax",
            "website": "Website",
        }
        values: dict[str, Any] = {k: self.text(element, tag, path) for k, tag in fields.items()}
        return Organization(organ_id=self.organ_id(id_element, id_path), **values)

    def code(self, element: etree._Element, path: str) -> Code:
        return Code(
            number=self.need_text(element, "CodeNumber", path),
            notation=self.need_text(element, "CodeNotation", path),
        )

    def response_for(self, element: etree._Element, path: str) -> ResponseFor:
        id_element, id_path = self.need(element, "OrganId", path)
        code_found = self.one(element, "Code", path)
        return ResponseFor(
            organ_id=self.organ_id(id_element, id_path),
            code=self.code(*code_found) if code_found else None,
            promulgation_date=self.convert(element, "PromulgationDate", path, _date, "a date yyyy/MM/dd", code="EDX201"),
            document_id=self.text(element, "DocumentId", path),
        )

    def staff_info(self, element: etree._Element, path: str) -> StaffInfo:
        return StaffInfo(
            department=self.text(element, "Department", path),
            staff=self.text(element, "Staff", path),
            email=self.text(element, "Email", path),
            mobile=self.text(element, "Mobile", path),
        )

    def trace_list(self, header: etree._Element) -> tuple[list[TraceHeader], Business | None]:
        found = self.one(header, "TraceHeaderList", paths.HEADER)
        if found is None:
            return [], None
        element, path = found
        traces = []
        for trace_el, trace_path in self.many(element, "TraceHeader", path):
            id_element, id_path = self.need(trace_el, "OrganId", trace_path)
            stamp = self.convert(trace_el, "Timestamp", trace_path, _timestamp, "a time yyyy/MM/dd HH:mm:ss", required=True, code="EDX201")
            traces.append(TraceHeader(organ_id=self.organ_id(id_element, id_path), timestamp=stamp))
        business_found = self.many(element, "Bussiness", path)
        business = self.business(*business_found[0]) if business_found else None
        return traces, business

    def business(self, element: etree._Element, path: str) -> Business:
        doc_type = self.convert(element, "BussinessDocType", path, BusinessDocType.of, "0, 1, 2 or 3", required=True)
        info = None
        info_found = self.one(element, "BussinessDocumentInfo", path)
        if info_found:
            info_el, info_path = info_found
            receivers = []
            list_found = self.one(info_el, "ReceiverList", info_path)
            if list_found:
                for rec_el, rec_path in self.many(list_found[0], "Receiver", list_found[1]):
                    id_element, id_path = self.need(rec_el, "OrganId", rec_path)
                    rtype = self.convert(rec_el, "ReceiverType", rec_path, int, "an integer")
                    receivers.append(Receiver(organ_id=self.organ_id(id_element, id_path), receiver_type=rtype or 0))
            info = BusinessDocumentInfo(
                document_info=self.convert(info_el, "DocumentInfo", info_path, int, "an integer"),
                document_receiver=self.convert(info_el, "DocumentReceiver", info_path, int, "an integer"),
                receivers=receivers,
            )
        replacements = []
        list_found = self.one(element, "ReplacementInfoList", path)
        if list_found:
            for rep_el, rep_path in self.many(list_found[0], "ReplacementInfo", list_found[1]):
                ids = []
                ids_found = self.one(rep_el, "OrganIdList", rep_path)
                if ids_found:
                    ids = [self.organ_id(e, p) for e, p in self.many(ids_found[0], "OrganId", ids_found[1])]
                replacements.append(
                    ReplacementInfo(document_id=self.need_text(rep_el, "DocumentId", rep_path), organ_ids=ids)
                )
        staff = self.one(element, "StaffInfo", path)
        return Business(
            doc_type=doc_type,
            reason=self.text(element, "BussinessDocReason", path),
            document_id=self.text(element, "DocumentId", path),
            paper=self.convert(element, "Paper", path, _boolean, "0, 1, true or false") or False,
            document_info=info,
            staff_info=self.staff_info(*staff) if staff else None,
            replacements=replacements,
        )

    def document(self, header: etree._Element, message: etree._Element, root: etree._Element) -> Document:
        mp = paths.MESSAGE
        sender = self.organization(*self.need(message, "From", mp))
        recipients = [self.organization(e, p) for e, p in self.many(message, "To", mp)]
        code = self.code(*self.need(message, "Code", mp))
        promulgation_el, promulgation_path = self.need(message, "PromulgationInfo", mp)
        promulgation = PromulgationInfo(
            place=self.text(promulgation_el, "Place", promulgation_path),
            date=self.convert(promulgation_el, "PromulgationDate", promulgation_path, _date, "a date yyyy/MM/dd", required=True, code="EDX201"),
        )
        type_found = self.one(message, "DocumentType", mp)
        document_type = DocumentType()
        if type_found:
            type_el, type_path = type_found
            document_type = DocumentType(
                type=self.convert(type_el, "Type", type_path, int, "an integer") or 1,
                type_detail=self.convert(type_el, "TypeDetail", type_path, int, "an integer"),
                type_name=self.text(type_el, "TypeName", type_path),
            )
        signer_found = self.one(message, "SignerInfo", mp)
        signer = None
        if signer_found:
            signer_el, signer_path = signer_found
            signer = SignerInfo(
                competence=self.text(signer_el, "Competence", signer_path),
                position=self.text(signer_el, "Position", signer_path),
                full_name=self.text(signer_el, "FullName", signer_path),
            )
        other = OtherInfo()
        other_found = self.one(message, "OtherInfo", mp)
        if other_found:
            other_el, other_path = other_found
            appendixes: list[str] = []
            appendix_found = self.one(other_el, "Appendixes", other_path)
            if appendix_found:
                appendixes = [e.text or "" for e, _ in self.many(appendix_found[0], "Appendix", appendix_found[1])]
            other = OtherInfo(
                priority=self.convert(other_el, "Priority", other_path, Priority.of, "a priority 0-4") or Priority.NORMAL,
                sphere_of_promulgation=self.text(other_el, "SphereOfPromulgation", other_path),
                typer_notation=self.text(other_el, "TyperNotation", other_path),
                promulgation_amount=self.convert(other_el, "PromulgationAmount", other_path, int, "an integer"),
                page_amount=self.convert(other_el, "PageAmount", other_path, int, "an integer"),
                direction=self.convert(other_el, "Direction", other_path, _boolean, "true or false"),
                appendixes=appendixes,
            )
        places: list[str] = []
        places_found = self.one(message, "ToPlaces", mp)
        if places_found:
            places = [e.text or "" for e, _ in self.many(places_found[0], "Place", places_found[1])]
        traces, business = self.trace_list(header)
        return Document(
            sender=sender,
            recipients=recipients,
            document_id=self.need_text(message, "DocumentId", mp),
            code=code,
            promulgation=promulgation,
            document_type=document_type,
            subject=self.need_text(message, "Subject", mp),
            content=self.text(message, "Content", mp),
            signer=signer,
            due_date=self.convert(message, "DueDate", mp, _date, "a date yyyy/MM/dd", code="EDX201"),
            other_info=other,
            response_for=[self.response_for(e, p) for e, p in self.many(message, "ResponseFor", mp)],
            steering_type=self.convert(message, "SteeringType", mp, SteeringType.of, "0, 1 or 2"),
            to_places=places,
            trace=traces,
            business=business or Business(),
            attachments=self.attachments(root),
        )

    def read_manifest(self, envelope: etree._Element) -> None:
        body = self.one(envelope, "edXMLBody", paths.ENVELOPE)
        manifest = self.one(body[0], "edXMLManifest", body[1]) if body else None
        if manifest is None:
            return
        for element, path in self.many(manifest[0], "Reference", manifest[1]):
            self.manifest.append(
                ManifestReference(
                    content_id=self.text(element, "ContentId", path) or "",
                    content_type=self.text(element, "ContentType", path) or "",
                    description=self.text(element, "Description", path),
                    attachment_name=self.text(element, "AttachmentName", path) or "",
                )
            )

    def attachments(self, root: etree._Element) -> list[Attachment]:
        found = self.one(root, "AttachmentEncoded", paths.ROOT)
        if found is None:
            return []
        out = []
        for element, path in self.many(found[0], "Attachment", found[1]):
            encoded_el, _encoded_path = self.need(element, "ContentTransferEncoded", path)
            text = encoded_el.text or ""
            # Free libxml2's copy as soon as Python holds the text: a 10 MB file is not kept twice.
            encoded_el.text = None
            out.append(
                Attachment(
                    content_id=self.need_text(element, "ContentId", path),
                    name=self.text(element, "AttachmentName", path) or "",
                    content_type=self.text(element, "ContentType", path) or "application/octet-stream",
                    description=self.text(element, "Description", path),
                    content=Base64Content(text),
                )
            )
        return out

    def status(self, header: etree._Element, message: etree._Element) -> StatusMessage:
        mp = paths.MESSAGE
        staff = self.one(message, "StaffInfo", mp)
        traces, _ = self.trace_list(header)
        return StatusMessage(
            sender=self.organization(*self.need(message, "From", mp)),
            response_for=self.response_for(*self.need(message, "ResponseFor", mp)),
            staff_info=self.staff_info(*staff) if staff else None,
            status_code=self.convert(message, "StatusCode", mp, StatusCode.of, "a status code (01-06, 13, 15, 16)", required=True),
            description=self.text(message, "Description", mp),
            timestamp=self.convert(message, "Timestamp", mp, _timestamp, "a time yyyy/MM/dd HH:mm:ss", required=True, code="EDX201"),
            trace=traces,
        )


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


def build_package(tree: etree._ElementTree, known: list[Finding]) -> Built:
    """Build the model from a (repaired) tree.

    ``known`` are the findings so far (quirks, schema), so the same problem is not reported twice.
    """
    builder = _Builder(known)
    root = tree.getroot()
    package: Package | None = None
    is_document = False
    try:
        envelope, envelope_path = builder.need(root, "edXMLEnvelope", paths.ROOT)
        header_el, header_path = builder.need(envelope, "edXMLHeader", envelope_path)
        message, _ = builder.need(header_el, "MessageHeader", header_path)
        if message.find(q("StatusCode")) is not None:
            package = builder.status(header_el, message)
        else:
            is_document = True
            builder.read_manifest(envelope)
            package = builder.document(header_el, message, root)
    except _Unusable:
        package = None
    except InvalidModel as exc:
        builder.findings.append(Finding("EDX001", Severity.ERROR, str(exc), paths.MESSAGE, None))
        package = None
    return Built(package, builder.findings, builder.lines, builder.manifest if is_document else None)


def _date(text: str) -> date:
    return datetime.strptime(text, "%Y/%m/%d").date()


def _timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=VIETNAM_TZ)


def _boolean(text: str) -> bool:
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(text)
