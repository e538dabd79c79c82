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

    transport = await vbdt.connect("amqp://user:pw@host/vhost")   # or memory://name, amqps://...
    async with vbdt.AgencyClient(me, transport=transport, ledger=vbdt.SqliteLedger("me.db"), key=key,
                                 trust="ca.pem", directory=d) as agency:
        await agency.send(doc, to=["000.00.00.H54/**:commune"])
        async for item in agency.inbox():
            async with item:                      # acknowledged after the application's commit
                await item.accept()
"""

from vbdt.directory import AgencyRecord, Directory, national_directory
from vbdt.directory.selectors import parse_selector
from vbdt.edxml.attachment import Base64Content, BytesContent, ContentSource, FileContent
from vbdt.edxml.codes import AdminLevel, BusinessDocType, Priority, StatusCode, SteeringType
from vbdt.edxml.findings import CODES, Finding, Severity
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
    document_id_for,
)
from vbdt.edxml.organid import OrganId
from vbdt.edxml.validation import ValidationReport, check, read, read_lenient, validate
from vbdt.edxml.writer import write
from vbdt.errors import (
    AccessRefused,
    ArchiveTooLarge,
    AttachmentError,
    BrokerAuthError,
    BrokerUnreachable,
    BrokerVhostMissing,
    CertificateRejected,
    DirectoryError,
    DocumentTooComplex,
    DocumentTooDeep,
    DocumentTooLarge,
    DuplicateAttachment,
    ExchangeError,
    InvalidModel,
    InvalidOrganId,
    InvalidSelector,
    InvalidTransition,
    KeyFileError,
    LedgerError,
    MalformedXml,
    MessageRejected,
    MessageTooLarge,
    NotEdxml,
    PdfSignatureError,
    PublishRefused,
    QueueFull,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    TooManyAttachments,
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
from vbdt.exchange.answers import InboxItem, PdfVerdict, Verdict
from vbdt.exchange.bulk import BulkEvent, BulkItem, BulkRun
from vbdt.exchange.bulk_report import BulkReport
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.connect import connect
from vbdt.exchange.host import AgencyHost, HostedAgency
from vbdt.exchange.ledger import Delivered, HistoryEvent, Ledger, SqliteLedger
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.outbox import SendResult
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.sync import SyncAgencyClient
from vbdt.trust.chain import ChainVerdict, TrustStore
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import Unpacked, pack, unpack
from vbdt.trust.pades import PdfSignatureInfo, PdfVerification, sign_pdf, verify_pdf
from vbdt.trust.xmldsig import Verified, sign, verify

__version__ = "0.1.0"

__all__ = [
    "CODES",
    "DEFAULT_LIMITS",
    "VIETNAM_TZ",
    "AccessRefused",
    "AdminLevel",
    "AgencyClient",
    "AgencyHost",
    "AgencyRecord",
    "ArchiveTooLarge",
    "Attachment",
    "AttachmentError",
    "Base64Content",
    "BrokerAuthError",
    "BrokerUnreachable",
    "BrokerVhostMissing",
    "BulkEvent",
    "BulkItem",
    "BulkReport",
    "BulkRun",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "BytesContent",
    "CertificateRejected",
    "ChainVerdict",
    "Code",
    "ContentSource",
    "Delivered",
    "DeliveryState",
    "Directory",
    "DirectoryError",
    "Document",
    "DocumentTooComplex",
    "DocumentTooDeep",
    "DocumentTooLarge",
    "DocumentType",
    "DuplicateAttachment",
    "ExchangeError",
    "FileContent",
    "Finding",
    "HistoryEvent",
    "HostedAgency",
    "InboxItem",
    "InvalidModel",
    "InvalidOrganId",
    "InvalidSelector",
    "InvalidTransition",
    "KeyFileError",
    "Ledger",
    "LedgerError",
    "Limits",
    "MalformedXml",
    "ManifestReference",
    "MemoryBroker",
    "MessageRejected",
    "MessageTooLarge",
    "NotEdxml",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Package",
    "PdfSignatureError",
    "PdfSignatureInfo",
    "PdfVerdict",
    "PdfVerification",
    "Priority",
    "PromulgationInfo",
    "PublishRefused",
    "QueueFull",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "SendResult",
    "Severity",
    "SignatureInvalid",
    "SignatureProfileError",
    "SignerInfo",
    "SignerMismatch",
    "SigningKey",
    "SqliteLedger",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "SteeringType",
    "SyncAgencyClient",
    "TooManyAttachments",
    "TraceHeader",
    "TransportError",
    "TrustError",
    "TrustStore",
    "UnknownAgency",
    "Unpacked",
    "Unroutable",
    "UnsafeXml",
    "UsageError",
    "ValidationError",
    "ValidationReport",
    "VbdtError",
    "Verdict",
    "Verified",
    "XmlError",
    "__version__",
    "check",
    "connect",
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
