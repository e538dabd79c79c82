"""Sending documents: validate, sign once, record, publish to every recipient; amend and recall them.

A DocumentId names one document for good: sending other content under a DocumentId this agency
already used is refused (an update or a replacement is a package of its own); sending the same
document again changes nothing. A package over ``Limits.max_message_bytes`` is refused before
anything is recorded: the broker would never take it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import BusinessDocType, StatusCode
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import Document, Organization, ReplacementInfo, ResponseFor
from vbdt.edxml.writer import write
from vbdt.errors import MessageTooLarge, UsageError
from vbdt.exchange.answers import KIND_OF, Reporter
from vbdt.exchange.ledger import Ledger, OutboxEntry, SentDocument
from vbdt.exchange.outbox import Outbox, SendResult, message_id
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.workers import Sending, Workers
from vbdt.trust.keys import SigningKey

__all__ = ["Sender", "content_digest", "digest_of"]

log = logging.getLogger("vbdt.exchange.sending")

_CHANGES = (BusinessDocType.UPDATE, BusinessDocType.REPLACE, BusinessDocType.REVOKE)


def content_digest(document: Document) -> str:
    """SHA-256 of the document as the application gave it (its deterministic edXML, before signing)."""
    return digest_of(write(document))


def digest_of(written: bytes) -> str:
    """:func:`content_digest` of a document whose edXML (:func:`vbdt.edxml.writer.write`) is ``written``."""
    return hashlib.sha256(written).hexdigest()


class Sender:
    """One agency's sending side: its keys, its directory, its ledger and its outbox."""

    def __init__(self, organ_id: str, *, directory: Directory, ledger: Ledger, outbox: Outbox, reporter: Reporter,
                 key: SigningKey, person: SigningKey | None, seal: SigningKey | None, limits: Limits,
                 workers: Workers | None = None) -> None:
        self.organ_id = organ_id
        self.directory = directory
        self.ledger = ledger
        self.outbox = outbox
        self.reporter = reporter
        self.key = key
        self.person = person
        self.seal = seal
        self.limits = limits
        self.workers = workers or reporter.workers
        self._sending = Sending(directory, limits)

    async def warm(self) -> None:
        """Hand what preparing a document takes to the worker processes now, not in the first sends' time."""
        await self.workers.warm(self._sending, self.key, self.person, self.seal)

    def recipients_for(self, to: Sequence[str]) -> list[Organization]:
        """The ``To`` list for agencies and selectors (``ID``, ``ID/*``, ``ID/**:commune``, ``**:province``)."""
        agencies = self.directory.select(*to)
        return [self.directory.organization(str(a.organ_id)) for a in agencies if str(a.organ_id) != self.organ_id]

    async def send(self, document: Document, to: Sequence[str] | None = None) -> SendResult:
        """Sign once, record, publish to every recipient concurrently; see :class:`SendResult`."""
        if str(document.sender.organ_id) != self.organ_id:
            raise UsageError(f"this agency is {self.organ_id}; the document is from {document.sender.organ_id}")
        if to is not None:
            document = Document(**{**document.__dict__, "recipients": self.recipients_for(to)})
        if not document.recipients:
            raise UsageError("no recipients: give to=[...] or fill Document.recipients")
        document_id = str(document.document_id)
        # One job (a worker's, or a thread's): the digest, this agency's trace, validation (schema,
        # rules, directory: an invalid package would be signed, sent, and refused by every
        # recipient), then the signatures. A repeat of a DocumentId is told by the digest first.
        prepared = await self.workers.prepare(self._sending, self.key, self.person, self.seal, document, self.organ_id)
        body = prepared.body
        if prepared.failure is not None or body is None or len(body) > self.limits.max_message_bytes:
            earlier = self.ledger.document(document_id)
            if earlier is not None:
                return self._again(earlier, prepared.digest)
            if prepared.failure is not None:
                raise prepared.failure.error()
            assert body is not None
            raise MessageTooLarge(f"the signed package {document_id} has {len(body):,} bytes, over "
                                  f"Limits.max_message_bytes ({self.limits.max_message_bytes:,}): nothing was sent")
        digest = prepared.digest
        recipients = [str(r.organ_id) for r in document.recipients]
        entries = [OutboxEntry(message_id("document", document_id, r), document_id, r, "document", body) for r in recipients]
        business = document.business
        sent = SentDocument(document_id, self.organ_id, str(document.code), document.subject or "", document.promulgation.date,
                            document.due_date, KIND_OF[business.doc_type].replace("document", "new"), business.document_id,
                            digest)

        def record() -> SentDocument | None:
            # A repeat of a DocumentId is told in the transaction that would record it (the event loop
            # does not wait on the ledger for the look-up, and two sends at once cannot both record).
            earlier = self.ledger.document(document_id)
            if earlier is not None:
                return earlier
            self.ledger.record_send(sent, entries)
            if business.doc_type in _CHANGES and business.document_id:
                # the package itself asks to change the earlier document: its deliveries wait for 15/16
                self.ledger.request_recall(business.document_id, recipients, f"{KIND_OF[business.doc_type]}: {document_id}")
            return None

        with self.outbox.in_hand(entries):  # recorded, then published by this send, not by a flush too
            earlier = await self.outbox.write(record)
            if earlier is not None:
                return self._again(earlier, digest)
            result = await self.outbox.publish(entries, document_id, recipients)
        log.info("%s sent %s to %d recipients (%d unroutable, %d pending)", self.organ_id, document_id, len(recipients),
                 len(result.unroutable), len(result.pending))
        return result

    def _again(self, earlier: SentDocument, digest: str) -> SendResult:
        """A second send under a used DocumentId: the same document is a no-op, another one a usage error."""
        if earlier.content_digest != digest:
            raise UsageError(
                f"{earlier.document_id} was already sent with other content: a DocumentId names one document; "
                "send the change with update() or replace(), under a number of its own"
            )
        deliveries = self.ledger.deliveries(earlier.document_id)
        by_state = {d.recipient: (d.state, d.reason or d.state.label) for d in deliveries}
        return SendResult(
            earlier.document_id, [d.recipient for d in deliveries],
            unroutable={r: why for r, (s, why) in by_state.items() if s is DeliveryState.UNDELIVERABLE},
            pending={r: "still in the outbox" for r, (s, _) in by_state.items() if s is DeliveryState.QUEUED},
            failed={r: why for r, (s, why) in by_state.items() if s is DeliveryState.FAILED},
        )

    async def update(self, document: Document, *, of: str, reason: str, to: Sequence[str] | None = None) -> SendResult:
        """Send ``document`` as an update (BussinessDocType 2) of the document ``of``."""
        return await self._amend(document, BusinessDocType.UPDATE, of, reason, to)

    async def replace(self, document: Document, *, of: str, reason: str, to: Sequence[str] | None = None) -> SendResult:
        """Send ``document`` as the replacement (BussinessDocType 3) of the document ``of``."""
        return await self._amend(document, BusinessDocType.REPLACE, of, reason, to)

    async def _amend(self, document: Document, kind: BusinessDocType, of: str, reason: str, to: Sequence[str] | None) -> SendResult:
        if document.document_id == of:
            raise UsageError(f"the {kind.label} must be a package of its own (another number or date), not {of} again")
        earlier = [d.recipient for d in self.ledger.deliveries(of)]
        if not earlier:
            raise UsageError(f"{of} is not a document this agency sent")
        targets = self.recipients_for(to) if to is not None else [self.directory.organization(r) for r in earlier]
        replacements = [ReplacementInfo(document_id=of, organ_ids=[t.organ_id for t in targets])] if kind is BusinessDocType.REPLACE else []
        business = document.business.model_copy(update={"doc_type": kind, "reason": reason, "document_id": of,
                                                        "replacements": replacements})
        return await self.send(document.model_copy(update={"business": business, "recipients": targets}))

    async def recall(self, document_id: str, reason: str) -> list[str]:
        """Ask every recipient that has not finished with it to give the document back (status 13)."""
        document = self.ledger.document(document_id)
        if document is None:
            raise UsageError(f"{document_id} is not a document this agency sent")
        recipients = self.ledger.request_recall(document_id, [d.recipient for d in self.ledger.deliveries(document_id)], reason)
        about = ResponseFor(organ_id=self.organ_id, document_id=document_id, promulgation_date=document.promulgated)
        for recipient in recipients:
            await self.reporter.report(recipient, about, StatusCode.RECALL_REQUESTED, reason)
        return recipients
