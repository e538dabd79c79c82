"""Relaying: forward a received document to subordinate agencies as a document of one's own.

A district that receives a provincial directive passes it on to its communes as **a new document
of the district** (its own number, its own envelope signature) that refers to the original in
``ResponseFor`` and carries the original's attachments **unchanged**: the PDF keeps the province's
person signature and seal, so each commune can check that the directive is the province's, word
for word::

    item = district.item(province_id, directive_id)            # or straight from the inbox
    result = await district.relay(item, to=["000.00.01.H54/*"], code=vbdt.Code(number="12", notation="UBND-VP"))

On receipt (:func:`vbdt.trust.packaging.relayed_pdf`) a PDF sealed by another agency than the
sender is accepted only when the package's ``ResponseFor`` names a document of that agency and the
PDF is original-valid as that agency's; a PDF sealed by anyone else, or changed by one byte, is
refused as before. The relaying agency's own attachments (a cover letter) are signed by it as
usual; ones already signed are never signed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from vbdt.edxml.codes import SteeringType
from vbdt.edxml.model import (
    VIETNAM_TZ,
    Attachment,
    Code,
    Document,
    DocumentType,
    Organization,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
)
from vbdt.errors import UsageError

__all__ = ["RELAY_TYPE", "relay_document", "relay_subject"]

RELAY_TYPE = DocumentType(type=1, type_detail=1, type_name="Công văn")
"""What a relay is unless told otherwise: the relaying agency's official letter (công văn)."""

_SUBJECT_MAX = 500


def relay_subject(original: Document) -> str:
    """The default subject: "Chuyển văn bản số <code> của <issuer>: <subject>"."""
    issuer = original.sender.organ_name or str(original.sender.organ_id)
    text = f"Chuyển văn bản số {original.code} của {issuer}: {original.subject}"
    return text if len(text) <= _SUBJECT_MAX else text[: _SUBJECT_MAX - 1] + "…"


def relay_document(
    original: Document,
    *,
    sender: Organization,
    recipients: Sequence[Organization],
    code: Code,
    promulgation: PromulgationInfo | None = None,
    subject: str | None = None,
    document_type: DocumentType = RELAY_TYPE,
    content: str | None = None,
    signer: SignerInfo | None = None,
    due_date: dt.date | None = None,
    steering_type: SteeringType | None = None,
    attachments: Sequence[Attachment] = (),
) -> Document:
    """The document that relays ``original`` from ``sender`` to ``recipients``.

    ``ResponseFor`` names the original (issuer, code, date, DocumentId); the original's attachments
    come first and unchanged, then ``attachments`` of the relaying agency's own. ``promulgation``
    defaults to today (Vietnam time), ``subject`` to :func:`relay_subject`, ``due_date`` and
    ``steering_type`` to the original's. :class:`~vbdt.errors.UsageError` when relaying to nobody or
    to oneself, or when ``sender`` issued the original (send it again instead).
    """
    me = str(sender.organ_id)
    if str(original.sender.organ_id) == me:
        raise UsageError(f"{original.document_id} is {me}'s own document: send it, do not relay it")
    if not recipients:
        raise UsageError("a relay needs recipients")
    if any(str(r.organ_id) == me for r in recipients):
        raise UsageError(f"{me} cannot relay a document to itself")
    about = ResponseFor(organ_id=original.sender.organ_id, code=original.code,
                        promulgation_date=original.promulgation.date, document_id=original.document_id)
    return Document(
        sender=sender,
        recipients=list(recipients),
        code=code,
        promulgation=promulgation or PromulgationInfo(date=dt.datetime.now(VIETNAM_TZ).date()),
        document_type=document_type,
        subject=subject or relay_subject(original),
        content=content,
        signer=signer,
        due_date=due_date if due_date is not None else original.due_date,
        steering_type=steering_type if steering_type is not None else original.steering_type,
        response_for=[about],
        attachments=[*original.attachments, *attachments],
    )
