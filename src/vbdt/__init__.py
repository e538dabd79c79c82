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

    key = vbdt.SigningKey.from_pem("agency.key.pem", "agency.cert.pem")   # load once, reuse
    signed = vbdt.pack(doc, key, person=person_key, seal=key)  # PDFs (PAdES), then the envelope
    opened = vbdt.unpack(signed, trust="ca.pem", directory=d)  # both layers, sender binding
"""

from vbdt.attachment import Base64Content, BytesContent, ContentSource, FileContent
from vbdt.codes import AdminLevel, BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.directory import Agency, Directory, national_directory
from vbdt.errors import (
    AttachmentError,
    CertificateRejected,
    DirectoryError,
    DocumentTooDeep,
    DocumentTooLarge,
    ExchangeError,
    InvalidModel,
    InvalidOrganId,
    InvalidSelector,
    InvalidTransition,
    KeyFileError,
    LedgerError,
    MalformedXml,
    MessageRejected,
    NotEdxml,
    PdfSignatureError,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    TransportError,
    TrustError,
    UnknownAgency,
    Unroutable,
    UnsafeXml,
    UsageError,
    ValidationError,
    VbdtError,
    XmlError,
)
from vbdt.findings import CODES, Finding, Severity
from vbdt.keys import SigningKey
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
from vbdt.packaging import Unpacked, pack, unpack
from vbdt.pades import PdfSignatureInfo, PdfVerification, sign_pdf, verify_pdf
from vbdt.selectors import parse_selector
from vbdt.signing import Verified, sign, verify
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
    "CertificateRejected",
    "Code",
    "ContentSource",
    "Directory",
    "DirectoryError",
    "Document",
    "DocumentTooDeep",
    "DocumentTooLarge",
    "DocumentType",
    "ExchangeError",
    "FileContent",
    "Finding",
    "InvalidModel",
    "InvalidOrganId",
    "InvalidSelector",
    "InvalidTransition",
    "KeyFileError",
    "LedgerError",
    "Limits",
    "MalformedXml",
    "ManifestReference",
    "MessageRejected",
    "NotEdxml",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Package",
    "PdfSignatureError",
    "PdfSignatureInfo",
    "PdfVerification",
    "Priority",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "Severity",
    "SignatureInvalid",
    "SignatureProfileError",
    "SignerInfo",
    "SignerMismatch",
    "SigningKey",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "SteeringType",
    "TraceHeader",
    "TransportError",
    "TrustError",
    "UnknownAgency",
    "Unpacked",
    "Unroutable",
    "UnsafeXml",
    "UsageError",
    "ValidationError",
    "ValidationReport",
    "VbdtError",
    "Verified",
    "XmlError",
    "__version__",
    "check",
    "document_id_for",
    "national_directory",
    "pack",
    "parse_selector",
    "read",
    "read_lenient",
    "sign",
    "sign_pdf",
    "unpack",
    "validate",
    "verify",
    "verify_pdf",
    "write",
]
