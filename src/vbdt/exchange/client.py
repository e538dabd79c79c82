"""The agency client: send documents, receive them, report and follow receipts.

::

    async with AgencyClient(me, transport=await connect(url), ledger=SqliteLedger(path), key=key,
                            trust=ca, directory=d) as agency:                # consumes in the background
        result = await agency.send(doc, to=["000.00.00.H54/**:commune"])   # validated, signed once
        async for item in agency.inbox():                                  # verified, stored, 01 sent
            async with item:                                               # acknowledged after the block
                register(item.document, item.verdict)                      # the application's own commit
                await item.accept(staff=clerk)                             # signed status 03 back
        agency.status(result.document_id)                                  # per-recipient states

Receipts move the ledger as they arrive, whether or not the application reads the inbox: a client
that only sends (a web request handler) still sees its deliveries reach 01…06 while it is open
(``async with``, or :meth:`AgencyClient.serve`). Received items wait in the ledger until the
application acknowledges them; :meth:`AgencyClient.received` and :meth:`AgencyClient.item` find them
later, by state, sender, time or id, to answer after a restart.

:class:`AgencyClient` is a facade over small parts with explicit dependencies, each one concept:
:class:`~vbdt.exchange.outbox.Outbox` (publish what the ledger recorded, retry, record outcomes),
:class:`~vbdt.exchange.answers.Reporter` (sign and send status messages),
:class:`~vbdt.exchange.sending.Sender` (validate, send, update, replace, recall),
:class:`~vbdt.exchange.receiving.Receiver` (one delivery: admit, store, answer, settle) and
:class:`~vbdt.exchange.inbox.Inbox` (the background consumer and the hand-over).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from vbdt.directory.agencies import Directory
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.model import (
    VIETNAM_TZ,
    Attachment,
    Code,
    Document,
    Organization,
    PromulgationInfo,
    SignerInfo,
    StaffInfo,
)
from vbdt.errors import CertificateRejected, KeyFileError, UsageError
from vbdt.exchange.answers import InboxItem, Reporter
from vbdt.exchange.bulk import GROUP, BulkItem, BulkRun, BulkSender, OnEvent
from vbdt.exchange.groupcommit import GroupCommit
from vbdt.exchange.inbox import Inbox
from vbdt.exchange.journal import BulkJournal, journal_path_for
from vbdt.exchange.ledger import Delivered, HistoryEvent, Incoming, Ledger, Overdue
from vbdt.exchange.outbox import Outbox, SendResult
from vbdt.exchange.receiving import Admission, OnReceipt, OnRefused, Receiver
from vbdt.exchange.relay import relay_document
from vbdt.exchange.sending import Sender
from vbdt.exchange.transport import Delivery, Transport
from vbdt.exchange.workers import Workers
from vbdt.trust.keys import SigningKey, bind_certificate, load_certificates
from vbdt.trust.packaging import PdfPolicy

__all__ = ["Agency", "AgencyClient", "InboxItem", "SendResult", "check_signing_key"]


def check_signing_key(key: SigningKey, organ_id: str, directory: Directory, *, role: str = "agency",
                      at: dt.datetime | None = None) -> None:
    """Refuse a key the client could not sign with: say which check failed.

    The private key must match the certificate, the certificate must be valid at ``at`` (now), and an
    agency key must belong to ``organ_id`` (subject UID or a fingerprint the directory pins).
    """
    certificate = key.certificate
    subject = certificate.subject.rfc4514_string()
    try:
        key.check_pair()
    except KeyFileError as exc:
        raise KeyFileError(f"the {role} key: {exc}") from None
    now = at or dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise CertificateRejected(
            f"the {role} certificate {subject} is not valid now: valid from "
            f"{certificate.not_valid_before_utc.astimezone(VIETNAM_TZ):%d/%m/%Y %H:%M} to "
            f"{certificate.not_valid_after_utc.astimezone(VIETNAM_TZ):%d/%m/%Y %H:%M} (Vietnam time)")
    if role == "agency":
        bind_certificate(certificate, organ_id, directory)


class AgencyClient:
    """One agency on the exchange: its identity, keys, trust anchors, transport and ledger.

    Checked at construction: the key matches its certificate, which is valid now and belongs to
    the agency (:func:`check_signing_key`), and the trust anchors read. ``limits`` bounds what peers
    can make it spend (``max_inflight_bytes``, ``max_bytes``...) and what it sends
    (``max_message_bytes``). ``on_receipt`` (sync or async) runs once per receipt applied;
    ``on_refused`` once per message refused, with the rejection (stage, reason) and the broker user
    that published it, for the application's own register. Closing the client closes the ledger.

    ``workers`` is where signing and verifying run: ``1`` (the default) one core (a small message's
    job on the event loop, others in a thread), ``n`` a pool of
    ``n`` processes of this client's own (one per core is the usual choice; see
    :mod:`vbdt.exchange.workers`), or a :class:`~vbdt.exchange.workers.Workers` shared with other
    clients of the process (not closed with this one). The ledger's hot writes share transactions
    (:mod:`vbdt.exchange.groupcommit`).
    """

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
        on_receipt: OnReceipt | None = None,
        on_refused: OnRefused | None = None,
        limits: Limits = DEFAULT_LIMITS,
        workers: int | Workers = 1,
    ) -> None:
        self.organ_id = str(organ_id)
        self.transport = transport
        self.ledger = ledger
        self.key = key
        self.trust = Path(trust)
        self.directory = directory
        self.limits = limits
        load_certificates(self.trust)  # fail now, with a clear error, not at the first delivery
        self.me: Organization = directory.organization(self.organ_id)
        check_signing_key(key, self.organ_id, directory)
        if seal is not None:
            check_signing_key(seal, self.organ_id, directory, role="agency")
        if person is not None:
            check_signing_key(person, self.organ_id, directory, role="person")
        self._own_workers = not isinstance(workers, Workers)
        self.workers = Workers(workers) if not isinstance(workers, Workers) else workers
        """Where this client signs and verifies."""
        self.commits = GroupCommit(ledger)
        """The ledger's writer: concurrent writes share one transaction."""
        self.outbox = Outbox(self.organ_id, transport, ledger, self.commits)
        self.reporter = Reporter(self.me, key, self.outbox, ledger, staff, self.workers)
        self.sender = Sender(self.organ_id, directory=directory, ledger=ledger, outbox=self.outbox, reporter=self.reporter,
                             key=key, person=person, seal=seal, limits=limits, workers=self.workers)
        admission = Admission(self.trust, directory, pdf_policy, check_publisher, limits)
        self.receiver = Receiver(self.organ_id, admission=admission, ledger=ledger, reporter=self.reporter,
                                 on_receipt=on_receipt, on_refused=on_refused, workers=self.workers, commits=self.commits)
        self._bulk_journal: BulkJournal | None = None
        self._inbox = Inbox(self.organ_id, transport=transport, ledger=ledger, receiver=self.receiver, outbox=self.outbox,
                            prefetch=prefetch, reconnect_attempts=reconnect_attempts,
                            max_inflight_bytes=limits.max_inflight_bytes)

    async def __aenter__(self) -> AgencyClient:
        """Open, and consume the inbox in the background until the block ends."""
        await self.open()
        self.serve()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Make sure the inbox exists and publish whatever the outbox still holds."""
        await self.transport.declare_inbox(self.organ_id)
        await self.workers.start()
        await self.receiver.warm()  # keys, directory, trust store into each worker process now
        await self.sender.warm()
        await self.flush()

    def serve(self) -> None:
        """Consume the inbox in the background: documents are stored and receipted, receipts applied,
        whether or not the application iterates :meth:`inbox`. Started by ``async with`` and by
        :meth:`inbox`; stopped by :meth:`close`."""
        self._inbox.start()

    async def close(self) -> None:
        """Stop consuming (a delivery in hand comes back later), close the transport and the ledger."""
        await self._inbox.stop()
        await self.commits.close()
        await self.transport.close()
        if self._own_workers:
            await self.workers.close()
        self.ledger.close()
        if self._bulk_journal is not None:
            self._bulk_journal.close()

    # -- sending ---------------------------------------------------------------------------
    def recipients_for(self, to: Sequence[str]) -> list[Organization]:
        """The ``To`` list for agencies and selectors (``ID``, ``ID/*``, ``ID/**:commune``, ``**:province``)."""
        return self.sender.recipients_for(to)

    async def send(self, document: Document, to: Sequence[str] | None = None) -> SendResult:
        """Validate, sign once, record, publish to every recipient concurrently; see :class:`SendResult`.

        :class:`~vbdt.errors.ValidationError` with the findings when the package is not valid
        (schema, rules, every recipient in the directory): nothing is signed or sent.
        :class:`~vbdt.errors.MessageTooLarge` when the signed package is over ``limits.max_message_bytes``
        (nothing recorded); :class:`~vbdt.errors.UsageError` for other content under a DocumentId
        already sent (use :meth:`update` or :meth:`replace`)."""
        return await self.sender.send(document, to)

    async def update(self, document: Document, *, of: str, reason: str, to: Sequence[str] | None = None) -> SendResult:
        """Send ``document`` as an update (BussinessDocType 2) of the document ``of``."""
        return await self.sender.update(document, of=of, reason=reason, to=to)

    async def replace(self, document: Document, *, of: str, reason: str, to: Sequence[str] | None = None) -> SendResult:
        """Send ``document`` as the replacement (BussinessDocType 3) of the document ``of``."""
        return await self.sender.replace(document, of=of, reason=reason, to=to)

    async def recall(self, document_id: str, reason: str) -> list[str]:
        """Ask every recipient that has not finished with it to give the document back (status 13)."""
        return await self.sender.recall(document_id, reason)

    async def relay(self, item: InboxItem, to: Sequence[str], *, code: Code, promulgation: PromulgationInfo | None = None,
                    subject: str | None = None, due_date: dt.date | None = None, signer: SignerInfo | None = None,
                    attachments: Sequence[Attachment] = ()) -> SendResult:
        """Forward a received document to ``to`` (OrganIds, selectors) as a new document of this agency,
        numbered ``code``, that refers to the original (``ResponseFor``) and carries its attachments
        unchanged: the signed PDF stays the original sender's (see :mod:`vbdt.exchange.relay`).
        Sent as :meth:`send` sends. :class:`~vbdt.errors.UsageError` for a recall request, or a
        document whose PDFs were not original-valid on receipt (receivers would refuse the relay)."""
        original = item.document
        broken = [name for name, pdf in (item.verdict.pdfs if item.verdict else {}).items() if not pdf.original_valid]
        if broken:
            raise UsageError(f"{item.document_id}: {', '.join(broken)} was not original-valid on receipt; "
                             "a relay of it would be refused")
        document = relay_document(original, sender=self.me, recipients=self.recipients_for(to), code=code,
                                  promulgation=promulgation, subject=subject, due_date=due_date, signer=signer,
                                  attachments=attachments)
        return await self.sender.send(document)

    async def resend(self, document_id: str, to: Sequence[str] | None = None) -> SendResult:
        """Send a document again to recipients that rejected it (02) or had no inbox (``to``: OrganIds
        or selectors; default: every such recipient). A new delivery attempt: the same signed package
        under a new message id, whose receipts move the ledger again. InvalidTransition (nothing
        sent) for a recipient whose delivery is not rejected or undeliverable."""
        from vbdt.exchange.receipts import RESENDABLE

        deliveries = {d.recipient: d.state for d in self.ledger.deliveries(document_id)}
        if not deliveries:
            raise UsageError(f"{document_id} is not a document this agency sent")
        if to is None:
            recipients = [r for r, state in deliveries.items() if state in RESENDABLE]
        else:
            recipients = [str(o.organ_id) for o in self.directory.select(*to) if str(o.organ_id) in deliveries]
            if not recipients:
                raise UsageError(f"{', '.join(to)}: no recipient of {document_id}")
        if not recipients:
            raise UsageError(f"no recipient of {document_id} rejected it or was undeliverable: nothing to send again")
        return await self.outbox.resend(document_id, recipients)

    async def bulk_send(self, document: Document, to: Sequence[str], *, on_event: OnEvent | None = None,
                        journal: BulkJournal | None = None) -> BulkRun:
        """Send one document to many agencies (``to``: OrganIds and selectors), signed once, published
        in a few broker operations, journaled so that :meth:`bulk_resume` finishes an interrupted run
        without sending a confirmed copy twice; see :mod:`vbdt.exchange.bulk`. Selectors that name
        nobody are in :attr:`BulkRun.problems` and the rest is sent; recipients without an inbox are
        ``unroutable`` in the run. ``on_event`` receives progress (:class:`~vbdt.exchange.bulk.BulkEvent`)."""
        return await self.bulk(journal).send([BulkItem(document, to)], on_event=on_event)

    async def bulk_resume(self, run_id: str, *, on_event: OnEvent | None = None, journal: BulkJournal | None = None) -> BulkRun:
        """Publish what the broker has not confirmed of a bulk run (after Ctrl-C, a crash, an outage)."""
        return await self.bulk(journal).resume(run_id, on_event=on_event)

    def bulk(self, journal: BulkJournal | None = None, *, group: int = GROUP) -> BulkSender:
        """This agency's bulk sender (several documents in one run: :meth:`BulkSender.send`). The journal
        is ``journal``, else one beside the ledger file (``<ledger>.bulk.db``), opened once per client.
        ``group``: recipients listed in each signed envelope (:data:`~vbdt.exchange.bulk.GROUP`)."""
        if journal is None:
            if self._bulk_journal is None:
                self._bulk_journal = BulkJournal(journal_path_for(getattr(self.ledger, "path", ":memory:")))
            journal = self._bulk_journal
        return BulkSender(self.organ_id, directory=self.directory, ledger=self.ledger, transport=self.transport,
                          journal=journal, key=self.key, person=self.sender.person, seal=self.sender.seal, limits=self.limits,
                          group=group)

    async def flush(self) -> SendResult:
        """Publish every outbox entry the broker has not confirmed yet (after a crash or an outage)."""
        return await self.outbox.flush()

    def status(self, document_id: str) -> list[Delivered]:
        """Per-recipient state of a document this agency sent."""
        return self.ledger.deliveries(document_id)

    def history(self, document_id: str, agency: str | None = None) -> list[HistoryEvent]:
        """What happened to a document: for one this agency sent, every receipt from every recipient
        (or ``agency``); for one it received, every answer it sent to the sender (``agency``)."""
        return self.ledger.history(document_id, agency)

    def overdue(self, now: dt.datetime | None = None) -> list[Overdue]:
        """Recipients that have not confirmed arrival the same day, or not completed by the due date."""
        return self.ledger.overdue(now)

    # -- receiving -------------------------------------------------------------------------
    def inbox(self) -> AsyncIterator[InboxItem]:
        """Received documents and recall requests the application has not acknowledged, each once per
        run, verified; items handed before a restart and never acknowledged come first, marked
        ``redelivered``. Starts the background consumer. Survives broker outages; never stops for
        what a peer sent (see :mod:`vbdt.exchange.inbox`)."""
        return self._inbox.items()

    def received(self, *, state: str | None = None, sender: str | None = None, since: dt.datetime | None = None,
                 unacknowledged: bool | None = None, limit: int | None = None) -> list[InboxItem]:
        """Stored items, oldest first: by the state this agency last reported (``received``, ``03``...),
        by sender, received since a time (aware), acknowledged or not. Items whose bytes retention
        dropped (:meth:`Ledger.drop_bodies`) are left out: an item is read from its bytes; their
        records stay in :meth:`Ledger.received` (``body`` None, ``dropped_at`` set)."""
        rows = self.ledger.received(state=state, sender=sender, since=since, unacknowledged=unacknowledged, limit=limit)
        return [self.receiver.stored(row) for row in rows if row.body is not None]

    def item(self, sender: str, document_id: str, kind: str = "document") -> InboxItem:
        """A received item by its sender and DocumentId, to read or answer at any time (after a restart)."""
        stored: Incoming | None = self.ledger.incoming(sender, document_id, kind)
        if stored is None:
            raise UsageError(f"no {kind} {document_id} from {sender} in this agency's ledger")
        return self.receiver.stored(stored)

    async def handle(self, delivery: Delivery) -> InboxItem | None:
        """Process one delivery: the whole receiving pipeline. Returns what to hand to the application."""
        return await self.receiver.handle(delivery)


Agency = AgencyClient
"""The former name of :class:`AgencyClient` (``vbdt.Agency`` is gone: the directory's record is
:class:`~vbdt.directory.agencies.AgencyRecord`)."""
