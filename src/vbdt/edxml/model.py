"""The edXML document package and status message as typed Python objects.

Field names are English and snake_case; each docstring names the edXML element it stands for.
Dates are :class:`datetime.date`, timestamps timezone-aware :class:`datetime.datetime` (a naive
value is taken as Vietnam time, UTC+7, which is what edXML writes without an offset).

A :class:`Document` is a whole package: header, trace, business information and attachments.
The manifest is derived from the attachments and never kept by hand in parallel.
A :class:`StatusMessage` is a delivery receipt (codes 01-06, 13, 15, 16).
"""

from __future__ import annotations

import mimetypes
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vbdt.edxml.attachment import BytesContent, ContentSource, FileContent
from vbdt.edxml.codes import BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.organid import OrganId
from vbdt.edxml.sniff import detect_type, unzip_single
from vbdt.errors import InvalidModel

__all__ = [
    "VIETNAM_TZ",
    "Attachment",
    "Business",
    "BusinessDocumentInfo",
    "Code",
    "Document",
    "DocumentType",
    "ManifestReference",
    "Organization",
    "OtherInfo",
    "Package",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "SignerInfo",
    "StaffInfo",
    "StatusMessage",
    "TraceHeader",
    "document_id_for",
]

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")

# Characters XML 1.0 cannot carry at all (even escaped).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: str | None) -> str | None:
    if value is not None:
        bad = _NOT_XML.search(value)
        if bad:
            raise ValueError(
                f"character U+{ord(bad.group()):04X} at position {bad.start()} cannot appear in XML"
            )
    return value


def _empty_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value == "" else value


def _vietnam_time(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=VIETNAM_TZ)
        # edXML timestamps have whole seconds.
        return value.astimezone(VIETNAM_TZ).replace(microsecond=0)
    return value


Text = Annotated[str, AfterValidator(_xml_text)]
OptText = Annotated[str | None, BeforeValidator(_empty_to_none), AfterValidator(_xml_text)]
Timestamp = Annotated[datetime, BeforeValidator(_vietnam_time)]


class _Model(BaseModel):
    """Base of the models: pydantic's errors become :class:`~vbdt.errors.InvalidModel`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise InvalidModel(_explain(type(self).__name__, exc)) from None


def _explain(name: str, exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(model)"
        parts.append(f"{where}: {err['msg']}")
    return f"invalid {name}: " + "; ".join(parts)


class Organization(_Model):
    """An agency as named in ``From`` or ``To`` (and in a status message's ``From``)."""

    organ_id: OrganId
    """``OrganId``: the agency identifier (mã định danh)."""
    organ_name: OptText = None
    """``OrganName``: the agency's name."""
    organization_in_charge: OptText = None
    """``OrganizationInCharge``: the superior body in charge."""
    organ_add: OptText = None
    """``OrganAdd``: postal address."""
    email: OptText = None
    """``Email``."""
    telephone: OptText = None
    """``Telephone``."""
    fax: OptText = None
    """``Fax``."""
    website: OptText = None
    """``Website``."""


class Code(_Model):
    """``Code``: the document's number and notation (số, ký hiệu), e.g. ``7816/VPCP-TTĐT``."""

    number: Text
    """``CodeNumber``: the number, restarting at 01 each year."""
    notation: Text
    """``CodeNotation``: the notation, e.g. ``QĐ-UBND``."""

    def __str__(self) -> str:
        return f"{self.number}/{self.notation}"

    @classmethod
    def parse(cls, text: str) -> Code:
        """Split ``"123/QĐ-UBND"`` into number and notation."""
        number, sep, notation = text.strip().partition("/")
        if not sep or not number or not notation:
            raise InvalidModel(f"invalid Code {text!r}: expected number/notation like 123/QĐ-UBND")
        return cls(number=number, notation=notation)


class PromulgationInfo(_Model):
    """``PromulgationInfo``: where and when the document was issued."""

    place: OptText = None
    """``Place``."""
    date: date
    """``PromulgationDate``."""


class DocumentType(_Model):
    """``DocumentType``: the kind of document (Công văn, Quyết định, Chỉ thị...)."""

    type: int = 1
    """``Type``."""
    type_detail: int | None = None
    """``TypeDetail``."""
    type_name: OptText = None
    """``TypeName``: e.g. "Công văn"."""


class SignerInfo(_Model):
    """``SignerInfo``: who signed the paper original."""

    competence: OptText = None
    """``Competence``: e.g. "TL. BỘ TRƯỞNG"."""
    position: OptText = None
    """``Position``."""
    full_name: OptText = None
    """``FullName``."""


class OtherInfo(_Model):
    """``OtherInfo``: priority, sphere, amounts and appendixes."""

    priority: Priority = Priority.NORMAL
    """``Priority``: độ khẩn."""
    sphere_of_promulgation: OptText = None
    """``SphereOfPromulgation``."""
    typer_notation: OptText = None
    """``TyperNotation``: initials of the typist."""
    promulgation_amount: int | None = None
    """``PromulgationAmount``: number of copies issued."""
    page_amount: int | None = None
    """``PageAmount``."""
    direction: bool | None = None
    """``Direction``."""
    appendixes: list[Text] = Field(default_factory=list)
    """``Appendixes/Appendix*``."""


class ResponseFor(_Model):
    """``ResponseFor``: the document this one answers (or a receipt concerns)."""

    organ_id: OrganId
    """``OrganId``: the agency that issued the document answered."""
    code: Code | None = None
    """``Code``."""
    promulgation_date: date | None = None
    """``PromulgationDate``."""
    document_id: OptText = None
    """``DocumentId``."""


class StaffInfo(_Model):
    """``StaffInfo``: the clerk who handled the package."""

    department: OptText = None
    """``Department``."""
    staff: OptText = None
    """``Staff``."""
    email: OptText = None
    """``Email``."""
    mobile: OptText = None
    """``Mobile``."""


class TraceHeader(_Model):
    """``TraceHeader``: one system the package passed through."""

    organ_id: OrganId
    """``OrganId``."""
    timestamp: Timestamp
    """``Timestamp``."""


class ReplacementInfo(_Model):
    """``ReplacementInfo``: a document replaced, and at which agencies."""

    document_id: Text
    """``DocumentId`` of the replaced document."""
    organ_ids: list[OrganId] = Field(default_factory=list)
    """``OrganIdList/OrganId*``."""


class Receiver(_Model):
    """``Receiver`` in an update's ``BussinessDocumentInfo``."""

    organ_id: OrganId
    """``OrganId``."""
    receiver_type: int = 0
    """``ReceiverType``."""


class BusinessDocumentInfo(_Model):
    """``BussinessDocumentInfo``: what an update changes and for whom."""

    document_info: int | None = None
    """``DocumentInfo``."""
    document_receiver: int | None = None
    """``DocumentReceiver``."""
    receivers: list[Receiver] = Field(default_factory=list)
    """``ReceiverList/Receiver*``."""


class Business(_Model):
    """``Bussiness`` (the standard's spelling): what the package does, and who sent it."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    """``BussinessDocType``."""
    reason: OptText = None
    """``BussinessDocReason``."""
    document_id: OptText = None
    """``DocumentId``: the document concerned."""
    paper: bool = False
    """``Paper``: a paper copy is also sent."""
    document_info: BusinessDocumentInfo | None = None
    """``BussinessDocumentInfo`` (updates)."""
    staff_info: StaffInfo | None = None
    """``StaffInfo``."""
    replacements: list[ReplacementInfo] = Field(default_factory=list)
    """``ReplacementInfoList/ReplacementInfo*`` (replacements)."""


class ManifestReference(_Model):
    """``edXMLManifest/Reference``: derived from an attachment, never built by hand."""

    content_id: Text
    content_type: Text
    description: OptText = None
    attachment_name: Text


class Attachment(_Model):
    """``AttachmentEncoded/Attachment``: a file carried in the package.

    ``content`` is a :class:`~vbdt.edxml.attachment.ContentSource`: bytes in memory, a file read when
    needed, or base64 text decoded only when read.
    """

    content_id: Text
    """``ContentId``, conventionally ``cid:<n>``."""
    name: Text
    """``AttachmentName``."""
    content_type: Text = "application/octet-stream"
    """``ContentType``."""
    description: OptText = None
    """``Description``."""
    content: ContentSource
    """The file's bytes."""

    @classmethod
    def from_bytes(
        cls,
        name: str,
        data: bytes,
        *,
        content_id: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
    ) -> Attachment:
        """An attachment held in memory; the content type is guessed from the name if not given."""
        return cls(
            content_id=content_id or f"cid:{name}",
            name=name,
            content_type=content_type or _guess_type(name),
            description=description,
            content=BytesContent(data),
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        content_id: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
    ) -> Attachment:
        """An attachment read from disk when the package is written."""
        path = Path(path)
        name = name or path.name
        return cls(
            content_id=content_id or f"cid:{name}",
            name=name,
            content_type=content_type or _guess_type(name),
            description=description,
            content=FileContent(path),
        )

    def read(self) -> bytes:
        """The decoded bytes."""
        return self.content.read()

    @property
    def size(self) -> int:
        """Decoded size in bytes."""
        return self.content.size

    @property
    def real_type(self) -> str | None:
        """The MIME type the bytes show (PDF, ZIP, DOC, DOCX, XLSX, images), whatever ``content_type``
        says; None when the bytes match no known signature."""
        return detect_type(self.content)

    def unzip(self, limits: Limits = DEFAULT_LIMITS) -> tuple[str, bytes]:
        """The name and bytes of the one file of an attachment the sender zipped (bounded by
        ``limits.max_unzipped_bytes``; see :func:`vbdt.edxml.sniff.unzip_single`)."""
        return unzip_single(self.content, limits)

    def manifest_reference(self) -> ManifestReference:
        """The manifest entry for this attachment."""
        return ManifestReference(
            content_id=self.content_id,
            content_type=self.content_type,
            description=self.description,
            attachment_name=self.name,
        )


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def document_id_for(sender: str, promulgation_date: date, code: Code) -> str:
    """The DocumentId the standard derives: ``{sender},{yyyy/MM/dd},{number/notation}``."""
    return f"{sender},{promulgation_date:%Y/%m/%d},{code}"


class Document(_Model):
    """A whole edXML document package (a new, revoked, updated or replacing document).

    ``sender`` is edXML ``From``, ``recipients`` the ``To`` list. ``document_id`` is derived from
    the sender, the promulgation date and the code when not given.
    """

    sender: Organization
    """``From``."""
    recipients: list[Organization] = Field(default_factory=list)
    """``To`` (1..n)."""
    document_id: OptText = None
    """``DocumentId``: ``{sender},{yyyy/MM/dd},{number/notation}``."""
    code: Code
    """``Code``."""
    promulgation: PromulgationInfo
    """``PromulgationInfo``."""
    document_type: DocumentType = Field(default_factory=DocumentType)
    """``DocumentType``."""
    subject: Text
    """``Subject``: trích yếu."""
    content: OptText = None
    """``Content``."""
    signer: SignerInfo | None = None
    """``SignerInfo``."""
    due_date: date | None = None
    """``DueDate``: deadline for handling."""
    other_info: OtherInfo = Field(default_factory=OtherInfo)
    """``OtherInfo``."""
    response_for: list[ResponseFor] = Field(default_factory=list)
    """``ResponseFor*``: documents this one answers."""
    steering_type: SteeringType | None = None
    """``SteeringType``."""
    to_places: list[Text] = Field(default_factory=list)
    """``ToPlaces/Place*``: recipients as printed on paper (Nơi nhận)."""
    trace: list[TraceHeader] = Field(default_factory=list)
    """``TraceHeaderList/TraceHeader*``: one per system the package passed."""
    business: Business = Field(default_factory=Business)
    """``TraceHeaderList/Bussiness``."""
    attachments: list[Attachment] = Field(default_factory=list)
    """``AttachmentEncoded/Attachment*``."""

    @model_validator(mode="after")
    def _derive_document_id(self) -> Document:
        if self.document_id is None:
            self.document_id = document_id_for(
                self.sender.organ_id, self.promulgation.date, self.code
            )
        return self

    @property
    def manifest(self) -> list[ManifestReference]:
        """``edXMLManifest``: one reference per attachment, in order."""
        return [a.manifest_reference() for a in self.attachments]

    @property
    def kind(self) -> str:
        """What the package does, in Vietnamese (e.g. "Văn bản điện tử mới")."""
        return self.business.doc_type.label


class StatusMessage(_Model):
    """A delivery receipt: ``From`` reports ``StatusCode`` about the document in ``ResponseFor``."""

    sender: Organization
    """``From``: the agency reporting."""
    response_for: ResponseFor
    """``ResponseFor``: the document concerned."""
    status_code: StatusCode
    """``StatusCode``."""
    description: OptText = None
    """``Description``: the reason of a rejection; for other codes it defaults to the label."""
    timestamp: Timestamp
    """``Timestamp``."""
    staff_info: StaffInfo | None = None
    """``StaffInfo``."""
    trace: list[TraceHeader] = Field(default_factory=list)
    """``TraceHeaderList/TraceHeader*`` when a system on the way added one."""

    @model_validator(mode="after")
    def _default_description(self) -> StatusMessage:
        # A rejection must say why (rule EDX402); every other code may default to its label.
        if self.description is None and self.status_code is not StatusCode.REJECTED:
            self.description = self.status_code.label
        return self


Package = Document | StatusMessage
"""What an edXML file holds: a document package or a status message."""
