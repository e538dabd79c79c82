"""Findings: what validation says about a document, one problem each.

A finding has a stable code (``EDX101``), a severity, the element path as a person reads it
(``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[3]/OrganId``), the line in the source when
the document came from bytes, and a message that says what is wrong and what to do.

Codes are grouped by hundreds: 0xx the XML and the schema, 1xx identifiers and agencies,
2xx dates and numbers, 3xx attachments and manifest, 4xx status messages, 5xx trace and business,
9xx real-world quirks that the lenient reader repairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CODES", "Finding", "Severity"]


class Severity(StrEnum):
    """How much a finding matters."""

    ERROR = "error"
    """The document is invalid; strict reading refuses it."""
    WARNING = "warning"
    """Worth a clerk's attention; the document is usable."""

    def __str__(self) -> str:
        return self.value


CODES: dict[str, str] = {
    "EDX001": "the document does not match the edXML schema",
    "EDX101": "an OrganId is not in the four-group form",
    "EDX102": "an agency is not in the directory",
    "EDX103": "the document has no recipient",
    "EDX104": "the same recipient is named twice",
    "EDX105": "the sender is also a recipient",
    "EDX106": "From or To has no OrganName",
    "EDX107": "an OrganId is a known non-standard kind (tax code, hub, bare level-1 code, axis hop)",
    "EDX108": "an OrganId is the text 'null'; the entry it names is ignored",
    "EDX110": "DocumentId is not {sender},{yyyy/MM/dd},{number/notation}",
    "EDX111": "DocumentId names another sender than From",
    "EDX112": "DocumentId's date differs from PromulgationDate",
    "EDX113": "DocumentId's number/notation differs from Code",
    "EDX201": "a date is not a valid calendar date",
    "EDX202": "CodeNumber is not a number",
    "EDX203": "DueDate is before PromulgationDate",
    "EDX204": "a date lies implausibly far in the future",
    "EDX205": "a count is negative",
    "EDX206": "a date is written dd/MM/yyyy",
    "EDX207": "a Timestamp is a date alone (read as midnight)",
    "EDX208": "DocumentType is outside the usual range (Type 1 or 2, TypeDetail 0-99)",
    "EDX301": "manifest and attachments do not match one to one",
    "EDX302": "two attachments share a ContentId",
    "EDX303": "an attachment is not valid base64",
    "EDX304": "an attachment is empty",
    "EDX305": "a ContentId does not use the cid: scheme",
    "EDX306": "two attachments share an AttachmentName",
    "EDX307": "an attachment's ContentType does not match its bytes",
    "EDX308": "an attachment's ContentType is not a known MIME type",
    "EDX309": "an attachment is a ZIP holding one file (Attachment.unzip gives it)",
    "EDX401": "a status message does not say which document it answers",
    "EDX402": "a rejection gives no reason",
    "EDX403": "a StatusCode lacks its leading zero",
    "EDX501": "a package for a revocation, update or replacement does not name the document",
    "EDX502": "a replacement lists no replaced document",
    "EDX503": "there is no TraceHeader of the sender",
    "EDX510": "TraceHeaderList carries SOAP attributes (id, version, mustUnderstand, actor)",
    "EDX511": "a TraceHeader names no OrganId (an axis hop); it is ignored",
    "EDX512": "TraceHeaderList or Bussiness is missing (read as a new document)",
    "EDX901": "Signature is not in the XML-DSig namespace",
    "EDX902": "elements are out of the standard order",
    "EDX903": "ResponseFor/Code is one text instead of CodeNumber and CodeNotation",
    "EDX904": "a signature uses SHA-1",
    "EDX905": "a signature's X509Certificate is truncated or not a certificate",
    "EDX906": "a signature names exclusive C14N by a wrong URI",
    "EDX907": "the signature is the SDK samples' placeholder, not a signature of this package",
    "EDX908": "an empty DigitalSignature element stands where a signature would be",
    "EDX909": "an element inside edXML is in no namespace",
    "EDX910": "an optional element is empty",
    "EDX911": "a required header part is missing and was filled in (DocumentType, PromulgationInfo)",
    "EDX912": "bytes come before the XML declaration",
    "EDX913": "the xlink: prefix is used without its namespace declaration",
}
"""Every finding code vbdt emits, with its short meaning (docs/findings.md lists them too)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a document."""

    code: str
    """Stable code from :data:`CODES`."""
    severity: Severity
    """Error or warning."""
    message: str
    """What is wrong, and what to do."""
    path: str = ""
    """Element path, e.g. ``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[3]/OrganId``."""
    line: int | None = None
    """Line in the source document, when it came from bytes."""

    def one_line(self) -> str:
        """``line 12: /edXML/.../OrganId: EDX101 error: ...``."""
        where = f"line {self.line}: " if self.line else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.code} {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
        }
