"""The agency client: send documents, receive them, report and follow receipts.

::

    async with Agency(me, transport=..., ledger=SqliteLedger(path), key=key, trust=ca, directory=d) as agency:
        result = await agency.send(doc, to=["000.00.00.H54/**:commune"])   # built and signed once
        async for item in agency.inbox():                                  # verified, de-duplicated
            await item.accept()                                            # signed status 03 back
        agency.status(result.document_id)                                  # per-recipient states

Sending records the document, a delivery per recipient and an outbox row per message in the
ledger before publishing; whatever the broker did not confirm is published again by
:meth:`Agency.flush` (and on the next start). Receiving runs :func:`vbdt.pipeline.admit`, stores the
package, sends a signed 01, acknowledges the broker and only then hands the document over; a
failure sends a signed 02 with the reason to the authenticated publisher and dead-letters the
message with the same reason. Receipts for documents this agency sent update its ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vbdt.codes import BusinessDocType, StatusCode
from vbdt.directory import Directory
from vbdt.errors import InvalidTransition, MessageRejected, TransportError, Unroutable, UsageError
from vbdt.keys import SigningKey, load_certificates
from vbdt.ledger import Delivered, Ledger, OutboxEntry, Overdue, SentDocument
from vbdt.model import (
    VIETNAM_TZ,
    Document,
    Organization,
    ReplacementInfo,
    ResponseFor,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from vbdt.packaging import PdfPolicy, pack
from vbdt.pipeline import Admitted, admit, reply_target
from vbdt.routing import HEADER_FROM, HEADER_KIND, routing_key
from vbdt.signing import sign
from vbdt.transport import Delivery, Outgoing, Transport
from vbdt.validation import read

__all__ = ["Agency", "InboxItem", "SendResult"]

log = logging.getLogger("vbdt.agency")

_KIND_OF = {
    BusinessDocType.NEW: "document",
    BusinessDocType.REVOKE: "revoke",
    BusinessDocType.UPDATE: "update",
    BusinessDocType.REPLACE: "replace",
}


@dataclass(frozen=True)
class SendResult:
    """What became of one send."""

    document_id: str
    recipients: list[str]
    unroutable: dict[str, str] = field(default_factory=dict)
    """Recipient → reason: the broker has no inbox for it (recorded as UNDELIVERABLE)."""
    pending: dict[str, str] = field(default_factory=dict)
    """Recipient → reason: not confirmed yet (broker down); still in the outbox, :meth:`Agency.flush` retries."""


class InboxItem:
    """A received document (or a recall request) handed to the application, with its answers."""

    def __init__(self, agency: Agency, package: Document | StatusMessage, sender: str, document_id: str, kind: str,
                 stored_as: str = "document") -> None:
        self._agency = agency
        self._stored_as = stored_as
        self.package = package
        """What was signed."""
        self.sender = sender
        self.document_id = document_id
        """The document's DocumentId (for a recall request: the document to recall)."""
        self.kind = kind
        """``document``, ``update``, ``replace``, ``revoke`` or ``recall``."""

    @property
    def document(self) -> Document:
        """The document (UsageError for a recall request, which carries a status message)."""
        if not isinstance(self.package, Document):
            raise UsageError("a recall request carries no document; see .document_id")
        return self.package

    @property
    def concerns(self) -> str | None:
        """For an update, replacement, revocation or recall: the DocumentId it concerns."""
        if isinstance(self.package, StatusMessage):
            return self.document_id
        return self.package.business.document_id if self.kind != "document" else None

    def __repr__(self) -> str:
        return f"<InboxItem {self.kind} {self.document_id} from {self.sender}>"

    async def accept(self) -> None:
        """03: registered in the incoming-document book."""
        await self._agency._answer(self, StatusCode.ACCEPTED)

    async def assign(self, description: str | None = None) -> None:
        """04: a leader assigned who handles it."""
        await self._agency._answer(self, StatusCode.ASSIGNED, description)

    async def processing(self, description: str | None = None) -> None:
        """05: being handled."""
        await self._agency._answer(self, StatusCode.PROCESSING, description)

    async def complete(self, description: str | None = None) -> None:
        """06: handled."""
        await self._agency._answer(self, StatusCode.COMPLETED, description)

    async def reject(self, reason: str) -> None:
        """02: returned to the sender, with the reason."""
        if not reason.strip():
            raise UsageError("a rejection needs a reason")
        await self._agency._answer(self, StatusCode.REJECTED, reason)

    async def agree(self) -> None:
        """15: agree to the recall, update or replacement (of :attr:`concerns`)."""
        await self._agency._answer(self, StatusCode.CHANGE_ACCEPTED, about_original=True)

    async def refuse(self, reason: str) -> None:
        """16: refuse the recall, update or replacement, with the reason."""
        await self._agency._answer(self, StatusCode.CHANGE_REFUSED, reason, about_original=True)


class Agency:
    """One agency on the exchange: its identity, keys, trust anchors, transport and ledger."""

    def __init__(
        self,
        organ_id: str,
        *,
        transport: Transport,
        ledger: Ledger,
        key: SigningKey,
        trust: str | Path,
        directory: Directory,
        person: SigningKey | None = None,
        seal: SigningKey | None = None,
        pdf_policy: PdfPolicy = "require",
        check_publisher: bool = True,
        staff: StaffInfo | None = None,
        prefetch: int = 32,
        reconnect_attempts: int = 30,
        on_receipt: Callable[[StatusMessage], None] | None = None,
    ) -> None:
        self.organ_id = str(organ_id)
        self.transport = transport
        self.ledger = ledger
        self.key = key
        self.trust = Path(trust)
        self.directory = directory
        self.person = person
        self.seal = seal
        self.pdf_policy: PdfPolicy = pdf_policy
        self.check_publisher = check_publisher
        self.staff = staff
        self.prefetch = prefetch
        self.reconnect_attempts = reconnect_attempts
        self.on_receipt = on_receipt
        load_certificates(self.trust)  # fail now, with a clear error, not at the first delivery
        self.me: Organization = directory.organization(self.organ_id)

    async def __aenter__(self) -> Agency:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.close()

    async def open(self) -> None:
        """Make sure the inbox exists and publish whatever the outbox still holds."""
        await self.transport.declare_inbox(self.organ_id)
        await self.flush()

    # -- sending ---------------------------------------------------------------------------
    def recipients_for(self, to: Sequence[str]) -> list[Organization]:
        """The ``To`` list for agencies and selectors (``ID``, ``ID/*``, ``ID/**:commune``, ``**:province``)."""
        agencies = self.directory.select(*to)
        return [self.directory.organization(str(a.organ_id)) for a in agencies if str(a.organ_id) != self.organ_id]

    async def send(self, document: Document, to: Sequence[str] | None = None) -> SendResult:
        """Sign once, record, publish to every recipient concurrently; see :class:`SendResult`."""
        if str(document.sender.organ_id) != self.organ_id:
            raise UsageError(f"this agency is {self.organ_id}; the document is from {document.sender.organ_id}")
        updates: dict[str, object] = {}
        if to is not None:
            updates["recipients"] = self.recipients_for(to)
        if not document.trace or str(document.trace[-1].organ_id) != self.organ_id:
            updates["trace"] = [*document.trace, TraceHeader(organ_id=self.organ_id, timestamp=dt.datetime.now(VIETNAM_TZ))]
        if updates:
            document = Document(**{**document.__dict__, **updates})
        if not document.recipients:
            raise UsageError("no recipients: give to=[...] or fill Document.recipients")
        body = await asyncio.to_thread(pack, document, self.key, person=self.person, seal=self.seal)
        document_id = str(document.document_id)
        recipients = [str(r.organ_id) for r in document.recipients]
        entries = [OutboxEntry(f"{document_id}>{r}", document_id, r, "document", body) for r in recipients]
        self.ledger.record_send(
            SentDocument(document_id, self.organ_id, str(document.code), document.subject or "", document.promulgation.date,
                         document.due_date, _KIND_OF[document.business.doc_type].replace("document", "new"),
                         document.business.document_id),
            entries,
        )
        if document.business.doc_type in (BusinessDocType.UPDATE, BusinessDocType.REPLACE, BusinessDocType.REVOKE) \
                and document.business.document_id:
            # the package itself asks to change the earlier document: its deliveries wait for 15/16
            self.ledger.request_recall(document.business.document_id, recipients, f"{_KIND_OF[document.business.doc_type]}: {document_id}")
        return await self._publish(entries, document_id, recipients)

    async def _publish(self, entries: Sequence[OutboxEntry], document_id: str, recipients: list[str]) -> SendResult:
        outcomes = await self.transport.publish_many([self._outgoing(e) for e in entries])
        confirmed = [o.message.message_id for o in outcomes if o.ok]
        self.ledger.published(confirmed)
        unroutable: dict[str, str] = {}
        pending: dict[str, str] = {}
        for entry, outcome in zip(entries, outcomes, strict=True):
            if outcome.ok:
                continue
            if isinstance(outcome.error, Unroutable):
                log.warning("%s: %s unroutable: %s", self.organ_id, entry.message_id, outcome.error)
                self.ledger.unroutable(entry.message_id, str(outcome.error))
                unroutable[entry.recipient] = str(outcome.error)
            else:
                pending[entry.recipient] = str(outcome.error)
        return SendResult(document_id, recipients, unroutable, pending)

    def _outgoing(self, entry: OutboxEntry) -> Outgoing:
        return Outgoing(routing_key(entry.recipient), entry.body, entry.message_id,
                        {HEADER_KIND: entry.kind, HEADER_FROM: self.organ_id})

    async def flush(self) -> SendResult:
        """Publish every outbox entry the broker has not confirmed yet (after a crash or an outage)."""
        entries = self.ledger.pending()
        if not entries:
            return SendResult("", [])
        return await self._publish(entries, "", [e.recipient for e in entries])

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
        business = document.business.model_copy(update={
            "doc_type": kind, "reason": reason, "document_id": of,
            "replacements": [ReplacementInfo(document_id=of, organ_ids=[t.organ_id for t in targets])] if kind is BusinessDocType.REPLACE else [],
        })
        return await self.send(document.model_copy(update={"business": business, "recipients": targets}))

    async def recall(self, document_id: str, reason: str) -> list[str]:
        """Ask every recipient that has not finished with it to give the document back (status 13)."""
        document = self.ledger.document(document_id)
        if document is None:
            raise UsageError(f"{document_id} is not a document this agency sent")
        recipients = self.ledger.request_recall(document_id, [d.recipient for d in self.ledger.deliveries(document_id)], reason)
        about = ResponseFor(organ_id=self.organ_id, document_id=document_id, promulgation_date=document.promulgated)
        for recipient in recipients:
            await self._report(recipient, about, StatusCode.RECALL_REQUESTED, reason)
        return recipients

    def status(self, document_id: str) -> list[Delivered]:
        """Per-recipient state of a document this agency sent."""
        return self.ledger.deliveries(document_id)

    def overdue(self, now: dt.datetime | None = None) -> list[Overdue]:
        """Recipients that have not confirmed arrival the same day, or not completed by the due date."""
        return self.ledger.overdue(now)

    # -- status messages -------------------------------------------------------------------
    async def _report(self, to: str, about: ResponseFor, code: StatusCode, description: str | None = None) -> None:
        now = dt.datetime.now(VIETNAM_TZ).replace(microsecond=0)
        status = StatusMessage(sender=self.me, response_for=about, status_code=code, description=description,
                               timestamp=now, staff_info=self.staff)
        body = await asyncio.to_thread(sign, status, self.key)
        entry = OutboxEntry(f"status:{about.document_id}:{self.organ_id}:{code.value}:{to}:{now:%Y%m%d%H%M%S}",
                            str(about.document_id), to, "status", body)
        self.ledger.record_outgoing([entry])
        await self._publish([entry], str(about.document_id), [to])

    async def _answer(self, item: InboxItem, code: StatusCode, description: str | None = None, *, about_original: bool = False) -> None:
        document_id = (item.concerns or item.document_id) if about_original else item.document_id
        owner = item.sender
        if isinstance(item.package, Document):
            package = item.package
            about = ResponseFor(organ_id=owner, code=package.code, promulgation_date=package.promulgation.date, document_id=document_id)
        else:
            about = ResponseFor(organ_id=owner, document_id=document_id)
        await self._report(owner, about, code, description)
        self.ledger.mark_incoming(item.sender, item.document_id, item._stored_as, state=code.value)

    # -- receiving -------------------------------------------------------------------------
    async def inbox(self) -> AsyncIterator[InboxItem]:
        """Received documents and recall requests, each once, verified; receipts update the ledger on the way.

        Survives broker outages: a delivery whose handling fails on the transport is left unacked
        (the broker gives it again; the ledger recognises it), the consumer is reopened with a
        growing pause, and the outbox is flushed each time it is and every few seconds while
        anything is pending.
        """
        for stored in self.ledger.unhanded():  # stored before a crash, never handed over
            item = self._item_from_store(stored.sender, stored.document_id, stored.kind, stored.body)
            if self.ledger.claim_handover(stored.sender, stored.document_id, stored.kind):
                yield item
        flusher = asyncio.create_task(self._keep_flushing())
        try:
            async for item in self._consume_forever():
                yield item
        finally:
            flusher.cancel()

    async def _keep_flushing(self, every: float = 2.0) -> None:
        """Publish what an outage left in the outbox (receipts included) as soon as the broker is back."""
        while True:
            await asyncio.sleep(every)
            if self.ledger.pending():
                try:
                    await self.flush()
                except TransportError as exc:
                    log.warning("%s: outbox not flushed yet: %s", self.organ_id, exc)

    async def _consume_forever(self) -> AsyncIterator[InboxItem]:
        failures = 0
        while True:
            ready: asyncio.Queue[InboxItem | BaseException | None] = asyncio.Queue()
            feeder: asyncio.Task[None] | None = None
            try:
                await self.flush()
                feeder = asyncio.create_task(self._feed(ready))
                while (item := await ready.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    failures = 0
                    # Claimed here, in the application's own task, with no await before it gets
                    # the item: a crash elsewhere cannot fall between the claim and the hand-over.
                    # A redelivery of something already handed over fails the claim.
                    if self.ledger.claim_handover(item.sender, item.document_id, item._stored_as):
                        yield item
                return  # the transport was closed
            except TransportError as exc:
                failures += 1
                if failures > self.reconnect_attempts:
                    raise
                log.warning("%s: inbox interrupted (%s); retry %d", self.organ_id, exc, failures)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            finally:
                if feeder is not None:
                    feeder.cancel()
                    await asyncio.gather(feeder, return_exceptions=True)

    async def _feed(self, ready: asyncio.Queue[InboxItem | BaseException | None]) -> None:
        """Handle up to ``prefetch`` deliveries at once (verifying is CPU work, receipts wait for
        confirms); what is to be handed over goes to ``ready``, in completion order."""
        slots = asyncio.Semaphore(self.prefetch)
        running: set[asyncio.Task[None]] = set()

        async def one(delivery: Delivery) -> None:
            try:
                handed = await self.handle(delivery)
                if handed is not None:
                    await ready.put(handed)
            except TransportError as exc:  # not acked: the broker gives it again, the ledger knows it
                log.warning("%s: %s left for redelivery: %s", self.organ_id, delivery.message_id, exc)
            except Exception as exc:  # the ledger failing, or a bug: stop and tell the application (not acked)
                log.exception("%s: %s failed", self.organ_id, delivery.message_id)
                await ready.put(exc)
            finally:
                slots.release()

        try:
            async for delivery in self.transport.consume(self.organ_id, prefetch=self.prefetch):
                await slots.acquire()
                task = asyncio.create_task(one(delivery))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running, return_exceptions=True)
            await ready.put(None)
        except TransportError as exc:
            await ready.put(exc)
        finally:
            for task in running:
                task.cancel()

    def _item_from_store(self, sender: str, document_id: str, kind: str, body: bytes) -> InboxItem:
        package = read(body)
        return _item(self, package, sender, document_id, kind)

    async def handle(self, delivery: Delivery) -> InboxItem | None:
        """Process one delivery: the whole receiving pipeline. Returns what to hand to the application."""
        try:
            admitted = await asyncio.to_thread(
                admit, delivery.body, me=self.organ_id, publisher=delivery.user_id, trust=self.trust,
                directory=self.directory, pdf_policy=self.pdf_policy, check_publisher=self.check_publisher,
            )
        except MessageRejected as exc:
            await self._refuse(delivery, exc)
            return None
        if admitted.kind == "status":
            return await self._receipt(delivery, admitted)
        return await self._document(delivery, admitted)

    async def _document(self, delivery: Delivery, admitted: Admitted) -> InboxItem | None:
        kind = "document"
        sender, document_id = admitted.sender, admitted.document_id
        self.ledger.store_incoming(sender, document_id, kind, delivery.message_id, delivery.body)
        package = admitted.package
        assert isinstance(package, Document)
        if not self.ledger.receipt_sent(sender, document_id, kind):
            about = ResponseFor(organ_id=sender, code=package.code, promulgation_date=package.promulgation.date,
                                document_id=document_id)
            await self._report(sender, about, StatusCode.ARRIVED)  # in the outbox first: retried if the broker is away
            self.ledger.mark_incoming(sender, document_id, kind, receipt_sent=True, state=StatusCode.ARRIVED.value)
        await delivery.ack()
        return _item(self, package, sender, document_id, kind)  # claimed when yielded (see _consume_forever)

    async def _receipt(self, delivery: Delivery, admitted: Admitted) -> InboxItem | None:
        status = admitted.package
        assert isinstance(status, StatusMessage)
        if status.status_code is StatusCode.RECALL_REQUESTED:  # about a document we received
            kind = "recall"
            key = f"recall:{status.timestamp:%Y%m%d%H%M%S}"
            self.ledger.store_incoming(admitted.sender, admitted.document_id, key, delivery.message_id, delivery.body)
            await delivery.ack()
            return InboxItem(self, status, admitted.sender, admitted.document_id, kind, stored_as=key)
        receipt_key = f"{admitted.sender}|{admitted.document_id}|{status.status_code.value}|{status.timestamp.isoformat()}"
        try:
            self.ledger.apply(admitted.document_id, admitted.sender, status.status_code, receipt_key=receipt_key,
                              note=status.description)
        except InvalidTransition as exc:
            # never answer a receipt with a receipt (no loops): keep it, with the reason
            await delivery.dead_letter(f"receipt not applied: {exc}")
            return None
        await delivery.ack()
        if self.on_receipt is not None:
            self.on_receipt(status)
        return None

    async def _refuse(self, delivery: Delivery, rejection: MessageRejected) -> None:
        reason = f"{rejection.stage}: {rejection.reason}"
        log.warning("%s refused %s from %s: %s", self.organ_id, delivery.message_id, delivery.user_id, reason)
        target = reply_target(delivery.user_id, self.directory)
        is_status = delivery.headers.get(HEADER_KIND) == "status"
        document_id = delivery.message_id.split(">", 1)[0] if ">" in delivery.message_id else None
        if target is not None and not is_status and document_id and target != self.organ_id:
            about = ResponseFor(organ_id=target, document_id=document_id)
            try:
                await self._report(target, about, StatusCode.REJECTED, f"Từ chối tiếp nhận: {reason}"[:2000])
            except TransportError as exc:  # the 02 stays in the outbox; the dead letter must still happen
                log.warning("%s: rejection of %s not sent yet: %s", self.organ_id, delivery.message_id, exc)
        await delivery.dead_letter(reason)


def _item(agency: Agency, package: Document | StatusMessage, sender: str, document_id: str, stored_as: str) -> InboxItem:
    if isinstance(package, Document):
        return InboxItem(agency, package, sender, document_id, _KIND_OF[package.business.doc_type], stored_as)
    return InboxItem(agency, package, sender, document_id, "recall", stored_as)
