"""vbdt — văn bản điện tử: exchange official electronic documents (edXML, QCVN 102:2016).

The public API::

    import vbdt

    doc = vbdt.Document(sender=..., recipients=[...], code=vbdt.Code(number="05", notation="CT-UBND"), ...)
    data = vbdt.write(doc)                       # deterministic UTF-8 edXML bytes
    doc2 = vbdt.read(data)                       # strict: the model, or vbdt.ValidationError
    report = vbdt.read_lenient(path)             # real-world packages: model + findings
    report = vbdt.validate(path, directory=d)    # every finding with code, line, path, reason
    d = vbdt.Directory.load("directory.json")    # agencies of the four levels
    d.select("000.00.00.H54/**:commune")         # recipient groups
"""

from vbdt.attachment import Base64Content, BytesContent, ContentSource, FileContent
from vbdt.codes import AdminLevel, BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.directory import Agency, Directory, national_directory
from vbdt.errors import (
    AttachmentError,
    DirectoryError,
    DocumentTooDeep,
    DocumentTooLarge,
    InvalidModel,
    InvalidOrganId,
    InvalidSelector,
    MalformedXml,
    NotEdxml,
    UnknownAgency,
    UnsafeXml,
    UsageError,
    ValidationError,
    VbdtError,
    XmlError,
)
from vbdt.findings import CODES, Finding, Severity
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
    document_id_for,
)
from vbdt.organid import OrganId
from vbdt.selectors import parse_selector
from vbdt.validation import ValidationReport, check, read, read_lenient, validate
from vbdt.writer import write
from vbdt.xmlparse import DEFAULT_LIMITS, Limits

__version__ = "0.1.0"

__all__ = [
    "CODES",
    "DEFAULT_LIMITS",
    "VIETNAM_TZ",
    "AdminLevel",
    "Agency",
    "Attachment",
    "AttachmentError",
    "Base64Content",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "BytesContent",
    "Code",
    "ContentSource",
    "Directory",
    "DirectoryError",
    "Document",
    "DocumentTooDeep",
    "DocumentTooLarge",
    "DocumentType",
    "FileContent",
    "Finding",
    "InvalidModel",
    "InvalidOrganId",
    "InvalidSelector",
    "Limits",
    "MalformedXml",
    "ManifestReference",
    "NotEdxml",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Package",
    "Priority",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "Severity",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "SteeringType",
    "TraceHeader",
    "UnknownAgency",
    "UnsafeXml",
    "UsageError",
    "ValidationError",
    "ValidationReport",
    "VbdtError",
    "XmlError",
    "__version__",
    "check",
    "document_id_for",
    "national_directory",
    "parse_selector",
    "read",
    "read_lenient",
    "validate",
    "write",
]
