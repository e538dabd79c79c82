"""Bulk directives: one document to thousands of agencies, signed once, resumable, with progress.

::

    run = await agency.bulk_send(doc, to=["**:commune"])      # the whole country, one signature
    run.info().counts                                         # {'confirmed': 3319, 'unroutable': 2, ...}
    await run.wait_arrived(timeout=600)                       # every confirmed copy receipted 01 (or later)
    run.report()                                              # per recipient, per district, overdue, rejected

A run is planned before anything is published: each selector is resolved on its own (an unknown
agency, a malformed selector, a selection that is empty, are reported in
:attr:`BulkRun.problems` and the rest is sent), the package is validated, then signed **once**
(PDF and envelope, listing every recipient in ``To``), and written with one ``pending`` row per
recipient to the run's journal (:mod:`vbdt.exchange.journal`). Then recipients without an inbox
are found (:meth:`~vbdt.exchange.transport.Transport.missing_inboxes`) and the others get the
package in batches, each batch one call to
:meth:`~vbdt.exchange.transport.Transport.publish_fanout` (on RabbitMQ a publish per few thousand
inboxes), several batches' confirms in flight; each batch's outcome is journaled as it arrives.

Resuming (:meth:`BulkSender.resume`, ``vbdt bulk resume``) publishes only what the broker has not
confirmed; a copy confirmed is never published again by the run. A copy in flight when the
process died can reach its inbox twice: the receiver keys what it stores by sender, DocumentId and
the signed digest, acknowledges the second copy and hands the document to its application once.

The agency's ledger holds the document and one delivery per recipient, so that receipts (01…06)
move them as for any send, and :meth:`AgencyClient.status` / ``overdue`` see them. Recorded before
the first publish, the deliveries are marked sent at once (not left in the ledger's own outbox,
which would publish each copy separately): in a bulk run, the run's journal is the outbox, and
:class:`BulkRun` tells confirmed from not yet confirmed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import BusinessDocType
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import VIETNAM_TZ, Document, TraceHeader
from vbdt.edxml.validation import validate
from vbdt.edxml.writer import write
from vbdt.errors import (
    DirectoryError,
    InvalidTransition,
    MessageTooLarge,
    PublishRefused,
    Unroutable,
    UsageError,
    ValidationError,
)
from vbdt.exchange.answers import KIND_OF
from vbdt.exchange.journal import BulkJournal, RecipientState, RunInfo, RunState
from vbdt.exchange.ledger import Delivered, Ledger, OutboxEntry, SentDocument
from vbdt.exchange.outbox import message_id
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import HEADER_FROM, HEADER_KIND, organ_id_for_key, routing_key
from vbdt.exchange.sending import content_digest
from vbdt.exchange.transport import Outgoing, PublishOutcome, Transport
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import pack

__all__ = ["ARRIVED_OR_LATER", "BulkEvent", "BulkItem", "BulkRun", "BulkSender", "OnEvent", "resolve_selectors"]

log = logging.getLogger("vbdt.exchange.bulk")

BATCH = 2_000
"""Recipients per :meth:`~vbdt.exchange.transport.Transport.publish_fanout` call (one journal write each)."""
IN_FLIGHT = 4
"""Batches whose confirms are awaited at once."""
NO_INBOX = "no inbox on the broker for this agency"
ARRIVED_OR_LATER = frozenset({DeliveryState.ARRIVED, DeliveryState.ACCEPTED, DeliveryState.ASSIGNED, DeliveryState.PROCESSING,
                              DeliveryState.COMPLETED, DeliveryState.REJECTED, DeliveryState.RECALL_REQUESTED,
                              DeliveryState.RECALLED})
"""Delivery states that mean the recipient's software took the document (it answered)."""


@dataclass(frozen=True)
class BulkItem:
    """One document of a run and its recipients (OrganIds or selectors)."""

    document: Document
    to: Sequence[str]


@dataclass(frozen=True)
class BulkEvent:
    """Progress of a run, for a progress bar or a script (``--json``): one per phase and per batch."""

    kind: str
    """``planned`` (a document signed and journaled), ``progress`` (a batch answered), ``done``."""
    run_id: str
    document_id: str
    total: int
    """Copies of this document."""
    confirmed: int
    unroutable: int
    failed: int
    pending: int
    elapsed: float
    """Seconds since the run (or resume) started."""

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return {"event": self.kind, "run": self.run_id, "document_id": self.document_id, "total": self.total,
                "confirmed": self.confirmed, "unroutable": self.unroutable, "failed": self.failed, "pending": self.pending,
                "elapsed": round(self.elapsed, 3)}


OnEvent = Callable[[BulkEvent], None]
"""Called (synchronously, in the sending task) with each :class:`BulkEvent`."""


def resolve_selectors(directory: Directory, selectors: Sequence[str], exclude: str) -> tuple[list[str], dict[str, str]]:
    """The OrganIds the selectors name (each once, in order, without ``exclude``), and the selectors
    that name nobody with the reason (malformed, unknown agency, empty selection)."""
    chosen: dict[str, None] = {}
    problems: dict[str, str] = {}
    for text in selectors:
        try:
            agencies = directory.select(text)
        except DirectoryError as exc:
            problems[text] = str(exc)
            continue
        ids = [str(a.organ_id) for a in agencies if str(a.organ_id) != exclude]
        if not ids:
            problems[text] = "selects no agency (other than the sender)"
        chosen.update(dict.fromkeys(ids))
    return list(chosen), problems


@dataclass
class _Counts:
    total: int = 0
    confirmed: int = 0
    unroutable: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.confirmed - self.unroutable - self.failed


class BulkRun:
    """A run, once its publishing phase returned: what the broker confirmed, and the receipts since.

    Queryable at any time (from the journal and the ledger); :meth:`wait_arrived` waits for the
    receipts while the client consumes its inbox (``async with``)."""

    def __init__(self, run_id: str, journal: BulkJournal, ledger: Ledger, directory: Directory) -> None:
        self.run_id = run_id
        self.journal = journal
        self.ledger = ledger
        self.directory = directory

    def __repr__(self) -> str:
        return f"<BulkRun {self.run_id}>"

    def info(self) -> RunInfo:
        """State and per-state counts of the run's copies."""
        return self.journal.run(self.run_id)

    @property
    def problems(self) -> dict[str, str]:
        """Selectors (or manifest rows) left out, with the reason."""
        return self.info().problems

    @property
    def complete(self) -> bool:
        """Nothing is left for the broker to confirm."""
        return self.info().counts[RecipientState.PENDING.value] == 0

    def document_ids(self) -> list[str]:
        """The run's documents, in order."""
        return [d.document_id for d in self.journal.documents(self.run_id)]

    def deliveries(self) -> list[Delivered]:
        """The ledger's deliveries of every document of the run (receipt states)."""
        return [d for document_id in self.document_ids() for d in self.ledger.deliveries(document_id)]

    def report(self, now: dt.datetime | None = None) -> Any:
        """The run's report (:class:`vbdt.exchange.bulk_report.BulkReport`)."""
        from vbdt.exchange.bulk_report import build_report

        return build_report(self.journal, self.ledger, self.directory, self.run_id, now=now)

    async def wait_arrived(self, timeout: float = 600.0, poll: float = 0.2) -> int:
        """Wait until every copy the broker confirmed is receipted (01 or later, 02 included); return
        how many are. TimeoutError when some are still without a receipt after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            confirmed = {(r.document_id, r.recipient) for r in self.journal.recipients(self.run_id)
                         if r.state is RecipientState.CONFIRMED}
            answered = {(d.document_id, d.recipient) for d in self.deliveries() if d.state in ARRIVED_OR_LATER}
            if confirmed <= answered:
                return len(confirmed)
            if time.monotonic() > deadline:
                raise TimeoutError(f"bulk run {self.run_id}: {len(confirmed - answered)} of {len(confirmed)} copies "
                                   f"without a receipt after {timeout:g} s")
            await asyncio.sleep(poll)


class BulkSender:
    """One agency's bulk runs: its keys, directory, ledger, transport and journal."""

    def __init__(self, organ_id: str, *, directory: Directory, ledger: Ledger, transport: Transport, journal: BulkJournal,
                 key: SigningKey, person: SigningKey | None, seal: SigningKey | None, limits: Limits,
                 batch: int = BATCH, in_flight: int = IN_FLIGHT) -> None:
        if batch < 1 or in_flight < 1:
            raise UsageError("batch and in_flight must be at least 1")
        self.organ_id = organ_id
        self.directory = directory
        self.ledger = ledger
        self.transport = transport
        self.journal = journal
        self.key = key
        self.person = person
        self.seal = seal
        self.limits = limits
        self.batch = batch
        self.in_flight = in_flight

    # -- planning --------------------------------------------------------------------------
    async def send(self, items: Sequence[BulkItem], *, on_event: OnEvent | None = None,
                   problems: dict[str, str] | None = None) -> BulkRun:
        """Plan every item (resolve, validate, sign once each), journal the run, then publish it.

        Nothing is journaled or sent when an item fails to plan (:class:`~vbdt.errors.ValidationError`,
        :class:`~vbdt.errors.UsageError` for no recipient at all or a DocumentId already sent,
        :class:`~vbdt.errors.MessageTooLarge`); ``problems`` are rows the caller already left out."""
        if not items:
            raise UsageError("a bulk run needs at least one document")
        left_out = dict(problems or {})
        planned = []
        seen: set[str] = set()
        for item in items:
            plan = await self._plan(item, left_out)
            if plan[0] in seen:
                raise UsageError(f"{plan[0]} is twice in this run: a DocumentId names one document")
            seen.add(plan[0])
            planned.append(plan)
        run_id = self.journal.create_run(self.organ_id, left_out)
        for document_id, body, digest, record, recipients in planned:
            self.journal.add_document(run_id, document_id, body, digest, record, recipients)
        started = time.monotonic()
        try:
            for document_id, _body, _digest, _record, recipients in planned:
                self._emit(on_event, "planned", run_id, document_id, _Counts(total=len(recipients)), started)
        except BaseException:
            self.journal.set_state(run_id, RunState.INTERRUPTED)
            raise
        return await self._deliver_run(run_id, on_event, started)

    async def _plan(self, item: BulkItem, problems: dict[str, str]) -> tuple[str, bytes, str, dict[str, Any], list[str]]:
        document = item.document
        if str(document.sender.organ_id) != self.organ_id:
            raise UsageError(f"this agency is {self.organ_id}; the document is from {document.sender.organ_id}")
        if document.business.doc_type is not BusinessDocType.NEW:
            raise UsageError(f"{document.document_id} is a {KIND_OF[document.business.doc_type]}: send changes with "
                             "update()/replace(), not in bulk")
        recipients, missing = resolve_selectors(self.directory, item.to, self.organ_id)
        document_id = str(document.document_id)
        problems.update(missing)
        if not recipients:
            why = "; ".join(f"{s}: {r}" for s, r in missing.items()) or "no selector given"
            raise UsageError(f"{document_id}: no recipient to send to ({why})")
        document = Document(**{**document.__dict__, "recipients": [self.directory.organization(r) for r in recipients]})
        digest = await asyncio.to_thread(content_digest, document)
        if self.ledger.document(document_id) is not None:
            earlier = [r.run_id for r in self.journal.runs() if document_id in {d.document_id for d in self.journal.documents(r.run_id)}]
            where = f"in bulk run {earlier[-1]}: `vbdt bulk resume {earlier[-1]}`" if earlier else "by this agency"
            raise UsageError(f"{document_id} was already sent {where}; a DocumentId names one document")
        if not document.trace or str(document.trace[-1].organ_id) != self.organ_id:
            trace = [*document.trace, TraceHeader(organ_id=self.organ_id, timestamp=dt.datetime.now(VIETNAM_TZ))]
            document = Document(**{**document.__dict__, "trace": trace})
        report = await asyncio.to_thread(lambda: validate(write(document), directory=self.directory, limits=self.limits))
        if not report.valid:
            raise ValidationError(report.findings, source=document_id)
        body = await asyncio.to_thread(pack, document, self.key, person=self.person, seal=self.seal)
        if len(body) > self.limits.max_message_bytes:
            raise MessageTooLarge(f"the signed package {document_id} has {len(body):,} bytes, over "
                                  f"Limits.max_message_bytes ({self.limits.max_message_bytes:,}): nothing was sent")
        record = {"document_id": document_id, "sender": self.organ_id, "code": str(document.code),
                  "subject": document.subject or "", "promulgated": document.promulgation.date.isoformat(),
                  "due_date": document.due_date.isoformat() if document.due_date else None, "content_digest": digest}
        return document_id, body, digest, record, recipients

    # -- publishing ------------------------------------------------------------------------
    async def resume(self, run_id: str, *, on_event: OnEvent | None = None) -> BulkRun:
        """Publish what the broker has not confirmed of a run (after Ctrl-C, a crash, an outage)."""
        info = self.journal.run(run_id)
        if info.organ_id != self.organ_id:
            raise UsageError(f"bulk run {run_id} is of {info.organ_id}, not of {self.organ_id}")
        self.journal.claim(run_id)
        return await self._deliver_run(run_id, on_event, time.monotonic())

    async def _deliver_run(self, run_id: str, on_event: OnEvent | None, started: float) -> BulkRun:
        finished = False
        try:
            for document in self.journal.documents(run_id):
                await self._deliver(run_id, document.document_id, on_event, started)
            finished = True
        finally:
            # Whatever stopped it (Ctrl-C, the broker gone), the journal says what is left.
            pending = self.journal.run(run_id).counts[RecipientState.PENDING.value]
            self.journal.set_state(run_id, RunState.DONE if finished and not pending else RunState.INTERRUPTED)
        return BulkRun(run_id, self.journal, self.ledger, self.directory)

    async def _deliver(self, run_id: str, document_id: str, on_event: OnEvent | None, started: float) -> None:
        rows = [r for r in self.journal.recipients(run_id) if r.document_id == document_id]
        counts = _Counts(total=len(rows))
        for row in rows:
            if row.state is RecipientState.CONFIRMED:
                counts.confirmed += 1
            elif row.state is RecipientState.UNROUTABLE:
                counts.unroutable += 1
            elif row.state is RecipientState.FAILED:
                counts.failed += 1
        pending = [r.recipient for r in rows if r.state is RecipientState.PENDING]
        if not pending:
            self._emit(on_event, "done", run_id, document_id, counts, started)
            return
        missing = await self.transport.missing_inboxes(pending)
        if missing:
            self.journal.mark(run_id, document_id, [(r, RecipientState.UNROUTABLE, NO_INBOX) for r in missing])
            counts.unroutable += len(missing)
        self._record_in_ledger(run_id, document_id, [r.recipient for r in rows], missing)
        body = self.journal.body(run_id, document_id)
        message = Outgoing("", body, message_id("document", document_id, "bulk"),
                           {HEADER_KIND: "document", HEADER_FROM: self.organ_id})
        keys = [routing_key(r) for r in pending if r not in missing]
        batches = [keys[i:i + self.batch] for i in range(0, len(keys), self.batch)]
        gate = asyncio.Semaphore(self.in_flight)

        async def one(batch: list[str]) -> None:
            async with gate:
                outcomes = await self.transport.publish_fanout(message, batch)
            self._journal_outcomes(run_id, document_id, outcomes, counts)
            self._emit(on_event, "progress", run_id, document_id, counts, started)

        await asyncio.gather(*(one(b) for b in batches))
        self._emit(on_event, "done", run_id, document_id, counts, started)

    def _journal_outcomes(self, run_id: str, document_id: str, outcomes: list[PublishOutcome], counts: _Counts) -> None:
        marks: list[tuple[str, RecipientState, str | None]] = []
        for outcome in outcomes:
            recipient = organ_id_for_key(outcome.message.routing_key)
            error = outcome.error
            if error is None:
                marks.append((recipient, RecipientState.CONFIRMED, None))
                counts.confirmed += 1
            elif isinstance(error, Unroutable):
                marks.append((recipient, RecipientState.UNROUTABLE, str(error)))
                counts.unroutable += 1
            elif isinstance(error, PublishRefused):
                marks.append((recipient, RecipientState.FAILED, str(error)))
                counts.failed += 1
            else:
                marks.append((recipient, RecipientState.PENDING, str(error)))
        self.journal.mark(run_id, document_id, marks)
        if any(o.error is not None for o in outcomes):
            first = next(o.error for o in outcomes if o.error is not None)
            log.warning("%s: bulk run %s, %s: %d of %d copies not confirmed: %s", self.organ_id, run_id, document_id,
                        sum(o.error is not None for o in outcomes), len(outcomes), first)

    def _record_in_ledger(self, run_id: str, document_id: str, recipients: list[str], missing: set[str]) -> None:
        """The document and its deliveries in the agency's ledger, once per run (see the module's note)."""
        document = next(d for d in self.journal.documents(run_id) if d.document_id == document_id)
        if document.ledger_recorded:
            for recipient in missing:  # an inbox deleted since the first attempt
                try:
                    self.ledger.unroutable(message_id("document", document_id, recipient), NO_INBOX)
                except InvalidTransition:
                    pass  # the delivery moved on (a receipt): the journal keeps the broker's word
            return
        record = document.record
        sent = SentDocument(document_id, self.organ_id, record["code"], record["subject"],
                            dt.date.fromisoformat(record["promulgated"]),
                            dt.date.fromisoformat(record["due_date"]) if record["due_date"] else None,
                            "new", None, record["content_digest"])
        body = self.journal.body(run_id, document_id)
        ids = {r: message_id("document", document_id, r) for r in recipients}
        # No await from here to the end: the client's outbox flusher (same event loop) never sees
        # these rows pending, so it cannot publish them one by one behind the run's back.
        self.ledger.record_send(sent, [OutboxEntry(ids[r], document_id, r, "document", body) for r in recipients])
        for recipient in missing:
            self.ledger.unroutable(ids[recipient], NO_INBOX)
        self.ledger.published([ids[r] for r in recipients if r not in missing])
        self.journal.ledger_recorded(run_id, document_id)

    @staticmethod
    def _emit(on_event: OnEvent | None, kind: str, run_id: str, document_id: str, counts: _Counts, started: float) -> None:
        if on_event is not None:
            on_event(BulkEvent(kind, run_id, document_id, counts.total, counts.confirmed, counts.unroutable, counts.failed,
                               counts.pending, time.monotonic() - started))

