"""Handling one received message: admit it, store it, answer it, settle it with the broker.

A document is stored, answered with a signed 01 and acknowledged before it is handed over. A
recall request is stored and handed over. A receipt moves the ledger of a document this agency
sent. Anything refused is dead-lettered with its reason; when what was refused was signed by its
sender (:attr:`MessageRejected.sender <vbdt.errors.MessageRejected>`), the reason also goes back
in a signed 02. Garbage names nothing: it is dead-lettered only, and the reason says so.

The CPU work (admission, and the signature of the 01 that answers a document) runs in the
client's :class:`~vbdt.exchange.workers.Workers`, one job per message. The ledger writes go through
its :class:`~vbdt.exchange.groupcommit.GroupCommit`: a document is stored with its 01 in the outbox
in one transaction (shared with the deliveries settled at the same time); the delivery is
acknowledged, and the 01 published, once it committed. A crash in between leaves the 01 in the
outbox: it is published when the client starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import Document, ResponseFor, StatusMessage
from vbdt.edxml.validation import read
from vbdt.errors import InvalidTransition, MessageRejected, TransportError, WorkerCrashed
from vbdt.exchange.answers import InboxItem, Reporter, body_of, claim_stamp, signing_stamp
from vbdt.exchange.groupcommit import GroupCommit
from vbdt.exchange.ledger import Arrival, Incoming, Ledger
from vbdt.exchange.transport import SHORTSTR_MAX, Delivery
from vbdt.exchange.workers import Accepted, Answering, Refusal, Workers, arrival_receipt
from vbdt.trust.packaging import PdfPolicy

__all__ = ["Admission", "OnReceipt", "OnRefused", "Receiver"]

OnReceipt = Callable[[StatusMessage], "Awaitable[None] | None"]
"""Called once per receipt applied to the ledger (sync or async)."""
OnRefused = Callable[[MessageRejected, str | None], "Awaitable[None] | None"]
"""Called once per refused message with the rejection and the broker user that published it."""

log = logging.getLogger("vbdt.exchange.receiving")

T = TypeVar("T")

_DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class Admission:
    """What :func:`~vbdt.exchange.pipeline.admit` needs besides the message."""

    trust: Path
    directory: Directory
    pdf_policy: PdfPolicy
    check_publisher: bool
    limits: Limits


class Receiver:
    """One agency's receiving side: :meth:`handle` takes a delivery to its end."""

    def __init__(self, organ_id: str, *, admission: Admission, ledger: Ledger, reporter: Reporter,
                 on_receipt: OnReceipt | None = None, on_refused: OnRefused | None = None,
                 workers: Workers | None = None, commits: GroupCommit | None = None) -> None:
        self.organ_id = organ_id
        self.admission = admission
        self.ledger = ledger
        self.reporter = reporter
        self.on_receipt = on_receipt
        self.on_refused = on_refused
        self.workers = workers or reporter.workers
        self.commits = commits
        self._answering = Answering(reporter.me, reporter.staff)
        self.settling: set[tuple[str, str, str]] = set()
        """(sender, DocumentId, kind) of the packages being stored by a handler that has not returned
        yet: the inbox leaves them to the handler, whose item is the one to hand over (no second read)."""

    async def warm(self) -> None:
        """Hand what admission takes to the worker processes now, not in the first messages' time."""
        await self.workers.warm(self.admission, self._answering, self.reporter.key)

    def stored(self, stored: Incoming) -> InboxItem:
        """The item for a package the ledger holds (what was signed, read again from the stored bytes);
        :class:`~vbdt.errors.BodyDropped` when retention dropped them."""
        return InboxItem.stored(self.reporter, read(body_of(stored)), stored)

    async def handle(self, delivery: Delivery) -> InboxItem | None:
        """Process one delivery: the whole receiving pipeline. Returns what to hand to the application."""
        try:
            try:
                admitted = await self.workers.admit(self.admission, delivery.body, me=self.organ_id,
                                                    publisher=delivery.user_id, answering=self._answering,
                                                    key=self.reporter.key)
            except WorkerCrashed as exc:  # it kills the worker even alone: never handed to one again
                raise MessageRejected(str(exc), stage="worker") from None
            if isinstance(admitted, Refusal):
                raise admitted.error()
            if admitted.kind == "status":
                return await self._status(delivery, admitted)
            return await self._document(delivery, admitted)
        except MessageRejected as exc:
            await self._refuse(delivery, exc)
            await _call(self.on_refused, exc, delivery.user_id)
            return None

    async def _write(self, write: Callable[[], T]) -> T:
        """A ledger write, committed (in a group commit when the client has one) before it returns."""
        return await self.commits.run(write) if self.commits is not None else write()

    async def _document(self, delivery: Delivery, admitted: Accepted) -> InboxItem | None:
        kind = "document"
        sender, document_id = admitted.sender, admitted.document_id
        package = admitted.package
        assert isinstance(package, Document)
        receipt = self.reporter.entry(sender, document_id, StatusCode.ARRIVED, await self._arrival_receipt(admitted))

        def store() -> bool:
            # One transaction: the package, and its 01 in the outbox unless one was sent already (a redelivery).
            self._store(delivery, admitted, kind)
            if self.ledger.receipt_sent(sender, document_id, kind):
                return False
            self.ledger.record_outgoing_unique([receipt])
            self.ledger.mark_incoming(sender, document_id, kind, receipt_sent=True, state=StatusCode.ARRIVED.value)
            return True

        outbox = self.reporter.outbox
        with self._settling((sender, document_id, kind)), outbox.in_hand([receipt]):
            if await self._write(store):
                # stored with its 01 in the outbox: acknowledge, and publish the 01 (left in the outbox,
                # and retried, if the broker is away)
                await asyncio.gather(delivery.ack(), outbox.publish([receipt], document_id, [sender]))
            else:
                await delivery.ack()
            log.info("%s received %s %s from %s", self.organ_id, kind, document_id, sender)
            return InboxItem.of(self.reporter, package, sender, document_id, kind, verdict=admitted.verdict)

    @contextlib.contextmanager
    def _settling(self, key: tuple[str, str, str]) -> Iterator[None]:
        self.settling.add(key)
        try:
            yield
        finally:
            self.settling.discard(key)

    async def _arrival_receipt(self, admitted: Accepted) -> bytes:
        """The signed 01 for a document: the one its worker signed, unless this process signed one
        for the same document as late already (then a new one, a second later)."""
        key = (self.organ_id, admitted.sender, admitted.document_id, StatusCode.ARRIVED.value)
        if admitted.receipt is not None and admitted.receipt_at is not None:
            if not self.workers.processes or claim_stamp(key, admitted.receipt_at):
                return admitted.receipt
        package = admitted.package
        assert isinstance(package, Document)
        status = arrival_receipt(self._answering, package, admitted.sender, admitted.document_id, signing_stamp(key))
        return await self.workers.sign(self.reporter.key, status)

    def _store(self, delivery: Delivery, admitted: Accepted, kind: str) -> None:
        """Keep the package; a redelivery is fine, other content under a used DocumentId is refused."""
        arrival = self.ledger.store_incoming(admitted.sender, admitted.document_id, kind, delivery.message_id,
                                             delivery.body, admitted.digest, admitted.verdict.to_json())
        if arrival is Arrival.CONFLICT:
            raise MessageRejected(
                f"{admitted.document_id} was already received from {admitted.sender} with other content: "
                "a DocumentId names one document (send a change as an update or a replacement)",
                stage="conflict", sender=admitted.sender, document_id=admitted.document_id,
            )

    async def _status(self, delivery: Delivery, admitted: Accepted) -> InboxItem | None:
        status = admitted.package
        assert isinstance(status, StatusMessage)
        if status.status_code is StatusCode.RECALL_REQUESTED:  # about a document we received
            key = f"recall:{status.timestamp:%Y%m%d%H%M%S}"
            with self._settling((admitted.sender, admitted.document_id, key)):
                await self._write(lambda: self._store(delivery, admitted, key))
                await delivery.ack()
                log.info("%s received a recall request for %s from %s", self.organ_id, admitted.document_id,
                         admitted.sender)
                return InboxItem(self.reporter, status, admitted.sender, admitted.document_id, "recall", stored_as=key,
                                 verdict=admitted.verdict)
        # the signed time has whole seconds: the signed content's digest tells apart two receipts with the
        # same code within one second (a redelivery or a republish has the same digest, and is a repeat)
        receipt_key = (f"{admitted.sender}|{admitted.document_id}|{status.status_code.value}|{status.timestamp.isoformat()}"
                       f"|{admitted.digest}")
        try:
            applied = await self._write(lambda: self.ledger.apply(admitted.document_id, admitted.sender, status.status_code,
                                                                  receipt_key=receipt_key, note=status.description))
        except InvalidTransition as exc:
            # never answer a receipt with a receipt (no loops): keep it, with the reason
            log.warning("%s: receipt %s from %s about %s not applied: %s", self.organ_id, status.status_code.value,
                        admitted.sender, admitted.document_id, exc)
            await delivery.dead_letter(f"receipt not applied: {exc}")
            return None
        await delivery.ack()
        if applied is not None:  # once per receipt that moved a delivery; repeats and stale ones are silent
            log.info("%s: %s answered %s about %s", self.organ_id, admitted.sender, status.status_code.value,
                     admitted.document_id)
            await _call(self.on_receipt, status)
        return None

    async def _refuse(self, delivery: Delivery, rejection: MessageRejected) -> None:
        reason = f"{rejection.stage}: {rejection.reason}"
        sender, document_id = rejection.sender, rejection.document_id
        if sender is None or document_id is None or sender == self.organ_id or sender not in self.admission.directory:
            # Nothing signed names a document to answer: an answer would address what a peer made up.
            log.warning("%s refused %s from broker user %s (no 02: nothing authenticated to answer): %s",
                        self.organ_id, delivery.message_id, delivery.user_id, reason)
            await delivery.dead_letter(_with_note(reason, " [no 02 sent: nothing authenticated names a document to answer]"))
            return
        log.warning("%s refused %s of %s: %s", self.organ_id, document_id, sender, reason)
        try:
            await self.reporter.report(sender, ResponseFor(organ_id=sender, document_id=document_id), StatusCode.REJECTED,
                                       f"Từ chối tiếp nhận: {reason}"[:_DESCRIPTION_MAX])
        except TransportError as exc:  # the 02 stays in the outbox; the dead letter must still happen
            log.warning("%s: rejection of %s not sent yet: %s", self.organ_id, document_id, exc)
        await delivery.dead_letter(reason)


async def _call(hook: Callable[..., Awaitable[None] | None] | None, *args: object) -> None:
    """Run an application hook, sync or async; its failure is logged, never stops the inbox."""
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("an application hook (%s) failed", getattr(hook, "__name__", hook))


def _with_note(reason: str, note: str) -> str:
    """The reason, cut so that the note still fits in the 255-byte reason header."""
    room = SHORTSTR_MAX - len(note.encode())
    return reason.encode()[:room].decode("utf-8", "ignore") + note
