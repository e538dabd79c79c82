"""The one error hierarchy of vbdt.

Every failure that vbdt reports to its caller is an instance of :class:`VbdtError`; nothing else
escapes a public entry point on bad input. The tree::

    VbdtError
    ├── UsageError                  a caller passed an argument that makes no sense
    ├── InvalidOrganId              an agency identifier (mã định danh) is malformed   (also ValueError)
    ├── InvalidModel                a model was built with invalid values              (also ValueError)
    ├── XmlError                    bytes that cannot be taken as an edXML document at all
    │   ├── MalformedXml            not well-formed XML (line and column given)
    │   ├── UnsafeXml               DTD, entity declarations, processing tricks: refused, never expanded
    │   ├── DocumentTooLarge        over the configured size limit
    │   ├── DocumentTooDeep         over the configured nesting limit
    │   ├── DocumentTooComplex      over ``Limits.max_elements`` or ``Limits.max_attributes``
    │   ├── TooManyAttachments      over ``Limits.max_attachments``
    │   └── NotEdxml                well-formed, but not an edXML package or status message
    ├── ValidationError             the document was read but breaks the schema or business rules;
    │                               ``.findings`` lists every problem with code, line, path and reason
    ├── AttachmentError             an attachment cannot be decoded or read
    │   └── DuplicateAttachment     two attachments of one package share a name (normalised)
    │   └── ArchiveTooLarge         a zipped attachment that unpacks past its bound (a ZIP bomb)
    ├── DirectoryError              the agency directory
    │   ├── UnknownAgency           an OrganId that the directory does not know
    │   └── InvalidSelector         a recipient selector that cannot be parsed
    ├── KeyFileError                a key or certificate cannot be loaded (file, format, passphrase)
    ├── TrustError                  a signature or certificate cannot be trusted
    │   ├── SignatureProfileError   not the edXML signature profile (wrapping attempts land here),
    │   │                           or signed with SHA-1 without legacy verification
    │   ├── SignatureInvalid        value or digest mismatch: changed after signing
    │   ├── CertificateRejected     no chain to a trust anchor, expired, revoked, may not sign
    │   ├── SignerMismatch          a valid signature by a certificate not bound to the sender
    │   └── PdfSignatureError       a PDF that cannot be signed or read, or is not original-valid
    └── ExchangeError               moving packages between agencies
        ├── TransportError          the broker is unreachable, refused or lost a publish (retried)
        │   ├── QueueFull           the recipient's inbox is at its length or byte limit (retried later)
        │   ├── BrokerUnreachable   nothing answers at the broker's address (down, closed port, TLS failed)
        │   └── AccessRefused       the broker refused the user, its password or this operation
        │       ├── BrokerAuthError     wrong broker user name or password
        │       └── BrokerVhostMissing  the vhost does not exist, or this user has no access to it
        ├── PublishRefused          the broker will never take this message: recorded failed, not retried
        │   └── MessageTooLarge     over ``Limits.max_message_bytes`` or the broker's maximum size
        ├── Unroutable              a recipient has no inbox: returned by the broker, never lost
        ├── MessageRejected         a received message refused by the pipeline (``.stage`` and ``.reason``)
        ├── InvalidTransition       a receipt that the state machine does not allow
        ├── WorkerCrashed           a signing or verifying worker process died on this job, twice
        └── LedgerError             the sender's ledger cannot be read or written
            └── BodyDropped         a received package's bytes were dropped by retention (its record stays)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vbdt.edxml.findings import Finding

__all__ = [
    "AccessRefused",
    "ArchiveTooLarge",
    "AttachmentError",
    "BodyDropped",
    "BrokerAuthError",
    "BrokerUnreachable",
    "BrokerVhostMissing",
    "CertificateRejected",
    "DirectoryError",
    "DocumentTooComplex",
    "DocumentTooDeep",
    "DocumentTooLarge",
    "DuplicateAttachment",
    "ExchangeError",
    "InvalidModel",
    "InvalidOrganId",
    "InvalidSelector",
    "InvalidTransition",
    "KeyFileError",
    "LedgerError",
    "MalformedXml",
    "MessageRejected",
    "MessageTooLarge",
    "NotEdxml",
    "PdfSignatureError",
    "PublishRefused",
    "QueueFull",
    "SignatureInvalid",
    "SignatureProfileError",
    "SignerMismatch",
    "TooManyAttachments",
    "TransportError",
    "TrustError",
    "UnknownAgency",
    "Unroutable",
    "UnsafeXml",
    "UsageError",
    "ValidationError",
    "VbdtError",
    "WorkerCrashed",
    "XmlError",
]


class VbdtError(Exception):
    """Root of every error raised by vbdt."""


class UsageError(VbdtError):
    """A caller passed an argument that makes no sense (a wrong type, an impossible option)."""


class InvalidOrganId(VbdtError, ValueError):
    """An agency identifier is malformed; the message says which group is wrong and why."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid OrganId {value!r}: {reason}")
        self.value = value
        self.reason = reason


class InvalidModel(VbdtError, ValueError):
    """A model (document, status message, agency...) was built with invalid values."""


class XmlError(VbdtError):
    """The bytes cannot be taken as an edXML document at all (the CLI exits 2 for these)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}" + (f", column {column}" if column else "") + ")" if line else ""
        super().__init__(message + where)
        self.line = line
        self.column = column


class MalformedXml(XmlError):
    """Not well-formed XML."""


class UnsafeXml(XmlError):
    """A construct vbdt refuses to process: a DTD, entity declarations or references."""


class DocumentTooLarge(XmlError):
    """The document is over the configured size limit."""


class DocumentTooDeep(XmlError):
    """The document nests elements deeper than the configured limit."""


class DocumentTooComplex(XmlError):
    """Too many nodes or attributes: over ``Limits.max_elements`` or ``Limits.max_attributes``.

    Raised while parsing, before the rest of the tree is built, so the refusal costs little.
    """


class TooManyAttachments(XmlError):
    """The package carries more attachments (or manifest references) than ``Limits.max_attachments``."""


class NotEdxml(XmlError):
    """Well-formed XML, but not an edXML package or status message (wrong root or namespace)."""


class ValidationError(VbdtError):
    """The document breaks the schema or the business rules.

    ``findings`` holds every finding (errors and warnings); ``errors`` only the blocking ones.
    """

    def __init__(self, findings: Sequence[Finding], *, source: str | None = None) -> None:
        self.findings = list(findings)
        self.source = source
        errors = self.errors
        first = errors[0] if errors else (self.findings[0] if self.findings else None)
        head = f"{source}: " if source else ""
        if first is None:
            super().__init__(f"{head}invalid document")
        else:
            more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
            super().__init__(f"{head}{first.one_line()}{more}")

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity error."""
        from vbdt.edxml.findings import Severity

        return [f for f in self.findings if f.severity is Severity.ERROR]


class AttachmentError(VbdtError):
    """An attachment's content cannot be decoded or read."""


class ArchiveTooLarge(AttachmentError):
    """A zipped attachment unpacks past ``Limits.max_unzipped_bytes`` or holds too many entries."""


class DuplicateAttachment(AttachmentError):
    """Two attachments of one package have the same name once normalised (Unicode NFKC, case,
    invisible characters, surrounding spaces and dots): one could hide behind the other."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"attachment names {first!r} and {second!r} are the same name: names must be unique")
        self.names = (first, second)


class DirectoryError(VbdtError):
    """A problem with the agency directory (its file, its data, or a query)."""


class UnknownAgency(DirectoryError, KeyError):
    """The directory has no agency with this OrganId."""

    def __init__(self, organ_id: str) -> None:
        super().__init__(f"unknown agency {organ_id!r}: not in the directory")
        self.organ_id = organ_id

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class InvalidSelector(DirectoryError, ValueError):
    """A recipient selector cannot be parsed or names a level that does not exist."""


class KeyFileError(VbdtError):
    """A key or certificate cannot be loaded (missing file, wrong format, wrong passphrase)."""


class TrustError(VbdtError):
    """A signature or certificate cannot be trusted; subclasses say why."""


class SignatureProfileError(TrustError):
    """The signature is not where or what the edXML profile says (wrapping attempts land here)."""


class SignatureInvalid(TrustError):
    """The signature value or a digest does not match: the content changed after signing."""


class CertificateRejected(TrustError):
    """The certificate does not chain to a trust anchor, is expired, revoked or may not sign."""


class SignerMismatch(TrustError):
    """A valid signature, but by a certificate that does not belong to the ``From`` agency."""


class PdfSignatureError(TrustError):
    """A PDF cannot be signed or read, or lacks the person and agency signatures it needs."""


class ExchangeError(VbdtError):
    """Moving packages between agencies failed."""


class TransportError(ExchangeError):
    """The broker is unreachable, refused an operation, or did not confirm a publish."""


class QueueFull(TransportError):
    """The recipient's inbox refused the message (its length or byte limit, ``reject-publish``).

    Worth retrying later: the outbox keeps the message and publishes it again."""


class AccessRefused(TransportError):
    """The broker refused this user (wrong name or password) or this operation (no permission).

    Retrying with the same credentials does not help; the command line exits 77 for it."""


class BrokerUnreachable(TransportError):
    """Nothing answers at the broker's address: it is down, the port is closed, or the TLS handshake
    failed. Worth retrying (the transport's :class:`~vbdt.exchange.transport.ReconnectPolicy`);
    the command line exits 69 (unavailable) for it."""


class BrokerAuthError(AccessRefused):
    """The broker refused the user name or password (AMQP ``ACCESS_REFUSED`` at login)."""


class BrokerVhostMissing(AccessRefused):
    """The broker took the credentials but refused the vhost (AMQP ``NOT_ALLOWED``): it does not
    exist, or this user has no permission on it. A configuration error, not a wrong password."""


class PublishRefused(ExchangeError):
    """The broker will never take this message (too large, access refused): not retried."""


class MessageTooLarge(PublishRefused):
    """A message over ``Limits.max_message_bytes`` or the broker's maximum message size."""


class Unroutable(ExchangeError):
    """The broker returned a message: no inbox is bound for these recipients."""

    def __init__(self, message: str, *, recipients: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.recipients = list(recipients)


class MessageRejected(ExchangeError):
    """A received message was refused; ``reason`` says why, ``stage`` where.

    ``sender`` and ``document_id`` are set only when the refusal came after the signature was
    verified and the package may be answered (a document or a recall request, never a receipt):
    then, and only then, the reason goes back to the sender in a signed status 02."""

    def __init__(self, reason: str, *, stage: str, sender: str | None = None, document_id: str | None = None) -> None:
        super().__init__(f"{stage}: {reason}")
        self.reason = reason
        self.stage = stage
        self.sender = sender
        self.document_id = document_id


class InvalidTransition(ExchangeError):
    """A receipt that the receipt state machine does not allow from the current state."""


class WorkerCrashed(ExchangeError):
    """A worker process of :class:`~vbdt.exchange.workers.Workers` died while signing or verifying
    (killed, out of memory, a crash in a C library), and its replacement died running the same job
    again: the job itself kills it. A received message is dead-lettered with this reason; a send
    raises it. Each worker runs one job at a time, so no other job is affected."""


class LedgerError(ExchangeError):
    """The sender's ledger cannot be opened, read or written."""


class BodyDropped(LedgerError):
    """A received package whose bytes the ledger no longer holds: retention dropped them after the
    application acknowledged it (``retention_days``, ``vbdt inbox prune``). Its record stays: state,
    answers, verdict, when it was received. ``sender``, ``document_id`` and ``kind`` name it."""

    def __init__(self, sender: str, document_id: str, kind: str, dropped_at: str | None = None) -> None:
        when = f" on {dropped_at}" if dropped_at else ""
        super().__init__(f"{document_id} from {sender}: the package was dropped by retention{when} "
                         "(đã xoá theo thời hạn lưu trữ); its record, verdict and answers remain")
        self.sender = sender
        self.document_id = document_id
        self.kind = kind
