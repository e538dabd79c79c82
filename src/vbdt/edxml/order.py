"""The element order of the published SDK samples: the writer emits it, the reader repairs to it.

The national axis' .NET and Java SDK samples write a document's ``MessageHeader`` as below, and a
status message as From, ResponseFor, StaffInfo, StatusCode, Description, Timestamp. Readers that walk
children by position (several DMS do) need exactly this order, so vbdt never writes another.
"""

from __future__ import annotations

__all__ = ["ATTACHMENT_ORDER", "MESSAGE_HEADER_ORDER", "STATUS_HEADER_ORDER", "TRACE_LIST_ORDER"]

MESSAGE_HEADER_ORDER = (
    "From", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
    "SignerInfo", "DueDate", "OtherInfo", "ResponseFor", "SteeringType", "ToPlaces",
)  # fmt: skip
"""The order of a document's ``MessageHeader`` children."""

STATUS_HEADER_ORDER = ("From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp")
"""The order of a status message's ``MessageHeader`` children."""

TRACE_LIST_ORDER = ("TraceHeader", "Bussiness")
"""``TraceHeaderList``: every ``TraceHeader`` first, then ``Bussiness``."""

ATTACHMENT_ORDER = ("ContentId", "AttachmentName", "Description", "ContentType", "ContentTransferEncoded")
"""The children of ``AttachmentEncoded/Attachment``."""
