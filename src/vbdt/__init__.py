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

Importing ``vbdt`` is cheap: each name is imported from its module on first use (PEP 562), so a
command's ``--help`` or a pytest run that loads the plugin does not pay for pyHanko and aio-pika.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and readers see; at run time each name is loaded on first use
    from vbdt.directory import (
        AgencyRecord,
        Directory,
        national_directory,
    )
    from vbdt.directory.selectors import parse_selector
    from vbdt.edxml.attachment import (
        Base64Content,
        BytesContent,
        ContentSource,
        FileContent,
    )
    from vbdt.edxml.codes import (
        AdminLevel,
        BusinessDocType,
        Priority,
        StatusCode,
        SteeringType,
    )
    from vbdt.edxml.findings import (
        CODES,
        Finding,
        Severity,
    )
    from vbdt.edxml.limits import (
        DEFAULT_LIMITS,
        Limits,
    )
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
    from vbdt.edxml.validation import (
        ValidationReport,
        check,
        read,
        read_lenient,
        validate,
    )
    from vbdt.edxml.writer import write
    from vbdt.errors import (
        AccessRefused,
        ArchiveTooLarge,
        AttachmentError,
        BodyDropped,
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
    from vbdt.exchange.answers import (
        InboxItem,
        PdfVerdict,
        Verdict,
    )
    from vbdt.exchange.bulk import (
        BulkEvent,
        BulkItem,
        BulkRun,
    )
    from vbdt.exchange.bulk_report import BulkReport
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.connect import connect
    from vbdt.exchange.host import (
        AgencyHost,
        HostedAgency,
    )
    from vbdt.exchange.ledger import (
        Delivered,
        HistoryEvent,
        Ledger,
        SqliteLedger,
    )
    from vbdt.exchange.memory import MemoryBroker
    from vbdt.exchange.outbox import SendResult
    from vbdt.exchange.receipts import DeliveryState
    from vbdt.exchange.sync import SyncAgencyClient
    from vbdt.trust.chain import (
        ChainVerdict,
        TrustStore,
    )
    from vbdt.trust.keys import SigningKey
    from vbdt.trust.packaging import (
        Unpacked,
        pack,
        unpack,
    )
    from vbdt.trust.pades import (
        PdfSignatureInfo,
        PdfVerification,
        sign_pdf,
        verify_pdf,
    )
    from vbdt.trust.xmldsig import (
        Verified,
        sign,
        verify,
    )

__version__ = "0.1.0"

# public name -> the module that defines it (kept equal to the imports above by tests/test_public_api.py)
_EXPORTS: dict[str, str] = {
    "AgencyRecord": "vbdt.directory", "Directory": "vbdt.directory", "national_directory": "vbdt.directory",
    "parse_selector": "vbdt.directory.selectors",
    "Base64Content": "vbdt.edxml.attachment", "BytesContent": "vbdt.edxml.attachment",
    "ContentSource": "vbdt.edxml.attachment", "FileContent": "vbdt.edxml.attachment",
    "AdminLevel": "vbdt.edxml.codes", "BusinessDocType": "vbdt.edxml.codes", "Priority": "vbdt.edxml.codes",
    "StatusCode": "vbdt.edxml.codes", "SteeringType": "vbdt.edxml.codes",
    "CODES": "vbdt.edxml.findings", "Finding": "vbdt.edxml.findings", "Severity": "vbdt.edxml.findings",
    "DEFAULT_LIMITS": "vbdt.edxml.limits", "Limits": "vbdt.edxml.limits",
    "VIETNAM_TZ": "vbdt.edxml.model", "Attachment": "vbdt.edxml.model", "Business": "vbdt.edxml.model",
    "BusinessDocumentInfo": "vbdt.edxml.model", "Code": "vbdt.edxml.model", "Document": "vbdt.edxml.model",
    "DocumentType": "vbdt.edxml.model", "ManifestReference": "vbdt.edxml.model", "Organization": "vbdt.edxml.model",
    "OtherInfo": "vbdt.edxml.model", "Package": "vbdt.edxml.model", "PromulgationInfo": "vbdt.edxml.model",
    "Receiver": "vbdt.edxml.model", "ReplacementInfo": "vbdt.edxml.model", "ResponseFor": "vbdt.edxml.model",
    "SignerInfo": "vbdt.edxml.model", "StaffInfo": "vbdt.edxml.model", "StatusMessage": "vbdt.edxml.model",
    "TraceHeader": "vbdt.edxml.model", "document_id_for": "vbdt.edxml.model",
    "OrganId": "vbdt.edxml.organid",
    "ValidationReport": "vbdt.edxml.validation", "check": "vbdt.edxml.validation", "read": "vbdt.edxml.validation",
    "read_lenient": "vbdt.edxml.validation", "validate": "vbdt.edxml.validation",
    "write": "vbdt.edxml.writer",
    "AccessRefused": "vbdt.errors", "ArchiveTooLarge": "vbdt.errors", "BodyDropped": "vbdt.errors", "AttachmentError": "vbdt.errors",
    "BrokerAuthError": "vbdt.errors", "BrokerUnreachable": "vbdt.errors", "BrokerVhostMissing": "vbdt.errors",
    "CertificateRejected": "vbdt.errors", "DirectoryError": "vbdt.errors", "DocumentTooComplex": "vbdt.errors",
    "DocumentTooDeep": "vbdt.errors", "DocumentTooLarge": "vbdt.errors", "DuplicateAttachment": "vbdt.errors",
    "ExchangeError": "vbdt.errors", "InvalidModel": "vbdt.errors", "InvalidOrganId": "vbdt.errors",
    "InvalidSelector": "vbdt.errors", "InvalidTransition": "vbdt.errors", "KeyFileError": "vbdt.errors",
    "LedgerError": "vbdt.errors", "MalformedXml": "vbdt.errors", "MessageRejected": "vbdt.errors",
    "MessageTooLarge": "vbdt.errors", "NotEdxml": "vbdt.errors", "PdfSignatureError": "vbdt.errors",
    "PublishRefused": "vbdt.errors", "QueueFull": "vbdt.errors", "SignatureInvalid": "vbdt.errors",
    "SignatureProfileError": "vbdt.errors", "SignerMismatch": "vbdt.errors", "TooManyAttachments": "vbdt.errors",
    "TransportError": "vbdt.errors", "TrustError": "vbdt.errors", "UnknownAgency": "vbdt.errors",
    "Unroutable": "vbdt.errors", "UnsafeXml": "vbdt.errors", "UsageError": "vbdt.errors",
    "ValidationError": "vbdt.errors", "VbdtError": "vbdt.errors", "XmlError": "vbdt.errors",
    "InboxItem": "vbdt.exchange.answers", "PdfVerdict": "vbdt.exchange.answers", "Verdict": "vbdt.exchange.answers",
    "BulkEvent": "vbdt.exchange.bulk", "BulkItem": "vbdt.exchange.bulk", "BulkRun": "vbdt.exchange.bulk",
    "BulkReport": "vbdt.exchange.bulk_report",
    "AgencyClient": "vbdt.exchange.client",
    "connect": "vbdt.exchange.connect",
    "AgencyHost": "vbdt.exchange.host", "HostedAgency": "vbdt.exchange.host",
    "Delivered": "vbdt.exchange.ledger", "HistoryEvent": "vbdt.exchange.ledger", "Ledger": "vbdt.exchange.ledger",
    "SqliteLedger": "vbdt.exchange.ledger",
    "MemoryBroker": "vbdt.exchange.memory",
    "SendResult": "vbdt.exchange.outbox",
    "DeliveryState": "vbdt.exchange.receipts",
    "SyncAgencyClient": "vbdt.exchange.sync",
    "ChainVerdict": "vbdt.trust.chain", "TrustStore": "vbdt.trust.chain",
    "SigningKey": "vbdt.trust.keys",
    "Unpacked": "vbdt.trust.packaging", "pack": "vbdt.trust.packaging", "unpack": "vbdt.trust.packaging",
    "PdfSignatureInfo": "vbdt.trust.pades", "PdfVerification": "vbdt.trust.pades", "sign_pdf": "vbdt.trust.pades",
    "verify_pdf": "vbdt.trust.pades",
    "Verified": "vbdt.trust.xmldsig", "sign": "vbdt.trust.xmldsig", "verify": "vbdt.trust.xmldsig",
}

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
    "BodyDropped",
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


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (and keep it, so later uses cost nothing)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vbdt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
