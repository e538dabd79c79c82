"""Bulk directives: one document to thousands of agencies, signed once, resumable, with progress.

::

    run = await agency.bulk_send(doc, to=["**:commune"])      # the whole country, one signature
    run.info().counts                                         # {'confirmed': 3319, 'unroutable': 2, ...}
    await run.wait_arrived(timeout=600)                       # every confirmed copy receipted 01 (or later)
    run.report()                                              # per recipient, per district, overdue, rejected

A run is planned before anything is published: each selector is resolved on its own (an unknown
agency, a malformed selector, a selection that is empty, are reported in
:attr:`BulkRun.problems` and the rest is sent), the package is validated, its PDF signed **once**,
and its envelope signed once per group of :data:`GROUP` recipients, each envelope listing its group
in ``To`` (:func:`~vbdt.trust.xmldsig.sign_per_group`: one envelope listing ten thousand agencies is
2.5 MB that each of the ten thousand would read and verify; a hundred envelopes of a hundred cost
the sender a hundred signatures and each receiver a small envelope). The envelopes are written
with one ``pending`` row per recipient, naming its envelope, to the run's journal
(:mod:`vbdt.exchange.journal`). Recipients without an inbox are
found (:meth:`~vbdt.exchange.transport.Transport.missing_inboxes`) while the package is signed (a
resume looks again), and the others get their envelope in batches, each batch one call to
:meth:`~vbdt.exchange.transport.Transport.publish_fanout` (on RabbitMQ a publish per few thousand
inboxes), several batches' confirms in flight; each batch's outcome is journaled as it arrives.

The package is validated as :func:`~vbdt.edxml.validation.validate` does (hardened parse, quirks,
schema, rules, strict) but for one step: the rules run on the document itself instead of a model
built again from its bytes, which writing and reading give back unchanged; for 10,000 recipients
that rebuilding was most of the validation's time. The document is written once for its content
digest and its validation when it carries the sender's trace already.

Resuming (:meth:`BulkSender.resume`, ``vbdt bulk resume``) publishes only what the broker has not
confirmed; a copy confirmed is never published again by the run. A copy in flight when the
process died can reach its inbox twice: the receiver keys what it stores by sender, DocumentId and
the signed digest, acknowledges the second copy and hands the document to its application once.

The agency's ledger holds the document and one delivery per recipient, so that receipts (01…06)
move them as for any send, and :meth:`AgencyClient.status` / ``overdue`` see them. They are
recorded before the first publish without outbox rows (:meth:`Ledger.record_deliveries`: in a bulk
run the journal is the outbox; the ledger's own would publish each copy separately), ``queued``
until the broker confirms them, then ``sent`` (``undeliverable``, ``failed``), batch by batch
(:meth:`Ledger.move_deliveries`), right after the journal. A process that dies between the two
writes leaves the ledger behind the journal, never ahead: the next resume brings it level.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import BusinessDocType
from vbdt.edxml.findings import Severity
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import VIETNAM_TZ, Document, TraceHeader
from vbdt.edxml.reader import parse_tree
from vbdt.edxml.rules import RuleContext, check_rules
from vbdt.edxml.validation import check_tree
from vbdt.edxml.writer import serialize, to_tree, write
from vbdt.errors import (
    DirectoryError,
    MessageTooLarge,
    PublishRefused,
    TooManyAttachments,
    Unroutable,
    UsageError,
    ValidationError,
)
from vbdt.exchange.answers import KIND_OF
from vbdt.exchange.budget import ByteBudget
from vbdt.exchange.journal import BulkJournal, RecipientState, RunInfo, RunState
from vbdt.exchange.ledger import Delivered, Ledger, SentDocument
from vbdt.exchange.outbox import message_id
from vbdt.exchange.receipts import DeliveryState, Event
from vbdt.exchange.routing import HEADER_FROM, HEADER_KIND, organ_id_for_key, routing_key
from vbdt.exchange.transport import Outgoing, PublishOutcome, Transport
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import sign_pdfs
from vbdt.trust.xmldsig import sign_per_group

__all__ = ["ARRIVED_OR_LATER", "GROUP", "BulkEvent", "BulkItem", "BulkRun", "BulkSender", "OnEvent", "resolve_selectors", "with_trace"]

log = logging.getLogger("vbdt.exchange.bulk")

GROUP = 100
"""Recipients listed in one signed envelope (``To``): the sender signs ⌈n / GROUP⌉ envelopes, each
receiver reads one of about 30 KB (plus the attachments) whatever the number of recipients."""
BATCH = 2_000
"""Recipients per :meth:`~vbdt.exchange.transport.Transport.publish_fanout` call (one journal write each)."""
IN_FLIGHT = 16_000
"""Copies whose confirms are awaited at once: a directive to every commune is handed to the
broker whole before the first confirm comes back."""
IN_FLIGHT_BYTES = 128 << 20
"""Bytes of envelopes handed to the broker and not confirmed yet: each batch's envelope is read
from the journal when its turn comes, so a run of a hundred 1.4 MB envelopes (a 1 MB PDF) holds
about ninety at once, not all of them, in the sender's memory."""
NO_INBOX = "no inbox on the broker for this agency"
ARRIVED_OR_LATER = frozenset({DeliveryState.ARRIVED, DeliveryState.ACCEPTED, DeliveryState.ASSIGNED, DeliveryState.PROCESSING,
                              DeliveryState.COMPLETED, DeliveryState.REJECTED, DeliveryState.RECALL_REQUESTED,
                              DeliveryState.RECALLED})
"""Delivery states that mean the recipient's software took the document (it answered)."""
_EVENT_OF = {RecipientState.CONFIRMED: Event.PUBLISHED, RecipientState.UNROUTABLE: Event.UNROUTABLE,
             RecipientState.FAILED: Event.REFUSED}
"""The ledger event of each answer of the broker the journal records (pending is none)."""


@dataclass(frozen=True)
class BulkItem:
    """One document of a run and its recipients (OrganIds or selectors)."""

    document: Document
    to: Sequence[str]


@dataclass(frozen=True)
class BulkEvent:
    """Progress of a run, for a progress bar or a script (``--json``): one per phase and per batch."""

    kind: str
    """``planned`` (a document signed and journaled), ``publishing`` (its inboxes checked, the ledger
    recorded: the first batch goes to the broker), ``progress`` (a batch answered), ``done``."""
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


def with_trace(document: Document, organ_id: str) -> Document:
    """``document`` with ``organ_id``'s trace header last, as it is signed (``document`` itself when
    it has it already)."""
    if document.trace and str(document.trace[-1].organ_id) == organ_id:
        return document
    trace = [*document.trace, TraceHeader(organ_id=organ_id, timestamp=dt.datetime.now(VIETNAM_TZ))]
    return Document(**{**document.__dict__, "trace": trace})


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
        how many are. TimeoutError when some are still without a receipt after ``timeout`` seconds.

        Each poll counts (one grouped query in the journal, one per document in the ledger); the
        copies are compared one by one only when the counts say they may all be answered, and again
        only once the counts have moved: a poll of a run to ten thousand agencies makes no row."""
        deadline = time.monotonic() + timeout
        compared: tuple[int, int] | None = None
        while True:
            confirmed = self.info().counts[RecipientState.CONFIRMED.value]
            answered = sum(n for document_id in self.document_ids()
                           for state, n in self.ledger.state_counts(document_id).items() if state in ARRIVED_OR_LATER)
            late = time.monotonic() > deadline
            if late or (answered >= confirmed and (confirmed, answered) != compared):
                compared = (confirmed, answered)
                waiting, total = self._unanswered()
                if not waiting:
                    return total
                if late:
                    raise TimeoutError(f"bulk run {self.run_id}: {waiting} of {total} copies without a receipt "
                                       f"after {timeout:g} s")
            await asyncio.sleep(poll)

    def _unanswered(self) -> tuple[int, int]:
        """(copies confirmed and not receipted, copies confirmed), copy by copy."""
        confirmed = {(r.document_id, r.recipient) for r in self.journal.recipients(self.run_id)
                     if r.state is RecipientState.CONFIRMED}
        answered = {(d.document_id, d.recipient) for d in self.deliveries() if d.state in ARRIVED_OR_LATER}
        return len(confirmed - answered), len(confirmed)


class BulkSender:
    """One agency's bulk runs: its keys, directory, ledger, transport and journal."""

    def __init__(self, organ_id: str, *, directory: Directory, ledger: Ledger, transport: Transport, journal: BulkJournal,
                 key: SigningKey, person: SigningKey | None, seal: SigningKey | None, limits: Limits,
                 batch: int = BATCH, in_flight: int = IN_FLIGHT, group: int = GROUP,
                 in_flight_bytes: int = IN_FLIGHT_BYTES) -> None:
        if batch < 1 or in_flight < 1 or group < 1 or in_flight_bytes < 1:
            raise UsageError("batch, in_flight, in_flight_bytes and group must be at least 1")
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
        self.in_flight_bytes = in_flight_bytes
        self.group = group

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
        for document_id, parts, digest, record, _recipients, _missing in planned:
            self.journal.add_document(run_id, document_id, parts, digest, record)
        started = time.monotonic()
        try:
            for document_id, _body, _digest, _record, recipients, _missing in planned:
                self._emit(on_event, "planned", run_id, document_id, _Counts(total=len(recipients)), started)
        except BaseException:
            self.journal.set_state(run_id, RunState.INTERRUPTED)
            raise
        return await self._deliver_run(run_id, on_event, started, {plan[0]: plan[5] for plan in planned})

    async def _plan(self, item: BulkItem, problems: dict[str, str]
                    ) -> tuple[str, list[tuple[bytes, list[str]]], str, dict[str, Any], list[str], set[str]]:
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
        if self.ledger.document(document_id) is not None:
            earlier = [r.run_id for r in self.journal.runs() if document_id in {d.document_id for d in self.journal.documents(r.run_id)}]
            where = f"in bulk run {earlier[-1]}: `vbdt bulk resume {earlier[-1]}`" if earlier else "by this agency"
            raise UsageError(f"{document_id} was already sent {where}; a DocumentId names one document")
        # The inboxes are looked for while the package is built and signed (broker round trips on
        # the event loop, the signing in a thread): a first run publishes right after its plan.
        probe = asyncio.ensure_future(self.transport.missing_inboxes(recipients))
        try:
            document = Document(**{**document.__dict__, "recipients": [self.directory.organization(r) for r in recipients]})
            groups = [recipients[i:i + self.group] for i in range(0, len(recipients), self.group)]
            digest, bodies = await asyncio.to_thread(self._sign, document, [len(g) for g in groups])
        except BaseException:
            probe.cancel()
            with contextlib.suppress(BaseException):
                await probe
            raise
        no_inbox = await probe
        largest = max(len(body) for body in bodies)
        if largest > self.limits.max_message_bytes:
            raise MessageTooLarge(f"the signed package {document_id} has {largest:,} bytes, over "
                                  f"Limits.max_message_bytes ({self.limits.max_message_bytes:,}): nothing was sent")
        record = {"document_id": document_id, "sender": self.organ_id, "code": str(document.code),
                  "subject": document.subject or "", "promulgated": document.promulgation.date.isoformat(),
                  "due_date": document.due_date.isoformat() if document.due_date else None, "content_digest": digest}
        return document_id, list(zip(bodies, groups, strict=True)), digest, record, recipients, no_inbox

    def _sign(self, document: Document, sizes: list[int]) -> tuple[str, list[bytes]]:
        """The content digest (:func:`~vbdt.exchange.sending.content_digest`), then the package
        validated (written once for both when it carries this agency's trace already), its PDFs
        signed once, and its envelope signed once per group of recipients (``sizes``: how many of
        ``document.recipients``, in order, each group lists)."""
        traced = with_trace(document, self.organ_id)
        tree = to_tree(traced)
        data = serialize(tree)
        digest = hashlib.sha256(data if traced is document else write(document)).hexdigest()
        self._validate(data, traced)
        del data
        signed = sign_pdfs(traced, person=self.person, seal=self.seal)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        groups = [range(start, start + size) for start, size in zip(starts, sizes, strict=True)]
        # the recipients' To elements are taken from the tree validated, not written again
        return digest, list(sign_per_group(signed, self.key, groups, written=tree))

    def _validate(self, data: bytes, document: Document) -> None:
        """What :func:`~vbdt.edxml.validation.validate` checks, without building the model again
        from ``data``: ``data`` is ``document`` written, and writing and reading give the same model
        back, so the rules run on ``document`` itself (for 10,000 recipients, rebuilding their
        models was most of the validation's time). Parsed hardened and schema-checked as a
        receiver does; strict."""
        tree, findings = parse_tree(data, self.limits, lenient=False)
        findings += check_tree(tree)
        if len(document.attachments) > self.limits.max_attachments:
            raise TooManyAttachments(f"{document.document_id} carries {len(document.attachments)} attachments, over "
                                     f"Limits.max_attachments = {self.limits.max_attachments}")
        findings += check_rules(document, RuleContext(directory=self.directory))
        if any(f.severity is Severity.ERROR for f in findings):
            raise ValidationError(findings, source=str(document.document_id))

    # -- publishing ------------------------------------------------------------------------
    async def resume(self, run_id: str, *, on_event: OnEvent | None = None) -> BulkRun:
        """Publish what the broker has not confirmed of a run (after Ctrl-C, a crash, an outage)."""
        info = self.journal.run(run_id)
        if info.organ_id != self.organ_id:
            raise UsageError(f"bulk run {run_id} is of {info.organ_id}, not of {self.organ_id}")
        self.journal.claim(run_id)
        return await self._deliver_run(run_id, on_event, time.monotonic(), {})

    async def _deliver_run(self, run_id: str, on_event: OnEvent | None, started: float,
                           no_inbox: dict[str, set[str]]) -> BulkRun:
        finished = False
        try:
            for document in self.journal.documents(run_id):
                await self._deliver(run_id, document.document_id, on_event, started, no_inbox.get(document.document_id))
            finished = True
        finally:
            # Whatever stopped it (Ctrl-C, the broker gone), the journal says what is left.
            pending = self.journal.run(run_id).counts[RecipientState.PENDING.value]
            self.journal.set_state(run_id, RunState.DONE if finished and not pending else RunState.INTERRUPTED)
        return BulkRun(run_id, self.journal, self.ledger, self.directory)

    async def _deliver(self, run_id: str, document_id: str, on_event: OnEvent | None, started: float,
                       no_inbox: set[str] | None) -> None:
        """Publish a document's pending copies; ``no_inbox``: the recipients found without an inbox
        while it was planned (a first run), else they are looked for now."""
        rows = self.journal.states(run_id, document_id)
        counts = _Counts(total=len(rows))
        for _recipient, state, _reason in rows:
            if state is RecipientState.CONFIRMED:
                counts.confirmed += 1
            elif state is RecipientState.UNROUTABLE:
                counts.unroutable += 1
            elif state is RecipientState.FAILED:
                counts.failed += 1
        pending = [r for r, state, _ in rows if state is RecipientState.PENDING]
        if no_inbox is not None and len(pending) == len(rows):
            missing = no_inbox & set(pending)
        else:
            missing = await self.transport.missing_inboxes(pending) if pending else set()
        if missing:
            self.journal.mark(run_id, document_id, [(r, RecipientState.UNROUTABLE, NO_INBOX) for r in missing])
            counts.unroutable += len(missing)
        self._sync_ledger(run_id, document_id, rows, missing)
        if not pending:
            self._emit(on_event, "done", run_id, document_id, counts, started)
            return
        parts = self.journal.parts(run_id, document_id)
        by_part: dict[int, list[str]] = {}
        for recipient in pending:
            if recipient not in missing:
                by_part.setdefault(parts.get(recipient, 0), []).append(routing_key(recipient))
        ids = {part: message_id("document", document_id, f"bulk{part}" if part else "bulk") for part in by_part}
        copies, volume = ByteBudget(self.in_flight), ByteBudget(self.in_flight_bytes)
        size = next(d.size for d in self.journal.documents(run_id) if d.document_id == document_id)
        self._emit(on_event, "publishing", run_id, document_id, counts, started)

        async def one(part: int, batch: list[str]) -> None:
            taken = await copies.acquire(len(batch))  # a batch larger than the budget goes alone
            try:
                weight = await volume.acquire(size)
                try:  # read when its turn comes: only the envelopes in flight are in memory
                    message = Outgoing("", self.journal.body(run_id, document_id, part), ids[part],
                                       {HEADER_KIND: "document", HEADER_FROM: self.organ_id})
                    outcomes = await self.transport.publish_fanout(message, batch)
                finally:
                    volume.release(weight)
            finally:
                copies.release(taken)
            self._journal_outcomes(run_id, document_id, outcomes, counts)
            self._emit(on_event, "progress", run_id, document_id, counts, started)

        batches = [(part, keys[i:i + self.batch]) for part, keys in sorted(by_part.items())
                   for i in range(0, len(keys), self.batch)]
        await asyncio.gather(*(one(part, batch) for part, batch in batches))
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
        self._move_in_ledger(document_id, marks)  # after the journal: the ledger is never ahead of it
        if any(o.error is not None for o in outcomes):
            first = next(o.error for o in outcomes if o.error is not None)
            log.warning("%s: bulk run %s, %s: %d of %d copies not confirmed: %s", self.organ_id, run_id, document_id,
                        sum(o.error is not None for o in outcomes), len(outcomes), first)

    def _sync_ledger(self, run_id: str, document_id: str, rows: list[tuple[str, RecipientState, str | None]],
                     missing: set[str]) -> None:
        """The document and its deliveries in the agency's ledger (queued, no outbox rows), once per
        run; then every delivery the journal has an answer for and the ledger still holds queued
        (the inboxes just found missing; on a resume, what a dead process journaled last) moved to it."""
        document = next(d for d in self.journal.documents(run_id) if d.document_id == document_id)
        if document.ledger_recorded:
            queued = {d.recipient for d in self.ledger.deliveries(document_id) if d.state is DeliveryState.QUEUED}
        else:
            record = document.record
            sent = SentDocument(document_id, self.organ_id, record["code"], record["subject"],
                                dt.date.fromisoformat(record["promulgated"]),
                                dt.date.fromisoformat(record["due_date"]) if record["due_date"] else None,
                                "new", None, record["content_digest"])
            by_part: dict[int, list[str]] = {}
            for recipient, part in self.journal.parts(run_id, document_id).items():
                by_part.setdefault(part, []).append(recipient)
            with self.ledger.batch():  # one transaction for every part
                for part, recipients in sorted(by_part.items()):
                    self.ledger.record_deliveries(sent, self.journal.body(run_id, document_id, part), recipients)
            self.journal.ledger_recorded(run_id, document_id)
            queued = {r for r, _, _ in rows}
        answered = [row for row in rows if row[1] is not RecipientState.PENDING]
        answered += [(r, RecipientState.UNROUTABLE, NO_INBOX) for r in missing]
        self._move_in_ledger(document_id, [a for a in answered if a[0] in queued])

    def _move_in_ledger(self, document_id: str, marks: list[tuple[str, RecipientState, str | None]]) -> None:
        """The broker's outcomes as ledger events, one transaction per event and reason."""
        groups: dict[tuple[Event, str | None], list[str]] = {}
        for recipient, state, reason in marks:
            event = _EVENT_OF.get(state)
            if event is not None:
                groups.setdefault((event, None if event is Event.PUBLISHED else reason), []).append(recipient)
        for (event, reason), recipients in groups.items():
            self.ledger.move_deliveries(document_id, recipients, event, reason)

    @staticmethod
    def _emit(on_event: OnEvent | None, kind: str, run_id: str, document_id: str, counts: _Counts, started: float) -> None:
        if on_event is not None:
            on_event(BulkEvent(kind, run_id, document_id, counts.total, counts.confirmed, counts.unroutable, counts.failed,
                               counts.pending, time.monotonic() - started))

