"""Handling one received message: admit it, store it, answer it, settle it with the broker.

A document is stored, answered with a signed 01 and acknowledged before it is handed over. A
recall request is stored and handed over. A receipt moves the ledger of a document this agency
sent. Anything refused is dead-lettered with its reason; when what was refused was signed by its
sender (:attr:`MessageRejected.sender <vbdt.errors.MessageRejected>`), the reason also goes back
in a signed 02. Garbage names nothing: it is dead-lettered only, and the reason says so.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.limits import Limits
from vbdt.edxml.model import Document, ResponseFor, StatusMessage
from vbdt.edxml.validation import read
from vbdt.errors import InvalidTransition, MessageRejected, TransportError
from vbdt.exchange.answers import InboxItem, Reporter, Verdict
from vbdt.exchange.ledger import Arrival, Incoming, Ledger
from vbdt.exchange.pipeline import Admitted, admit
from vbdt.exchange.transport import SHORTSTR_MAX, Delivery
from vbdt.trust.packaging import PdfPolicy

__all__ = ["Admission", "OnReceipt", "OnRefused", "Receiver"]

OnReceipt = Callable[[StatusMessage], "Awaitable[None] | None"]
"""Called once per receipt applied to the ledger (sync or async)."""
OnRefused = Callable[[MessageRejected, str | None], "Awaitable[None] | None"]
"""Called once per refused message with the rejection and the broker user that published it."""

log = logging.getLogger("vbdt.exchange.receiving")

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
                 on_receipt: OnReceipt | None = None, on_refused: OnRefused | None = None) -> None:
        self.organ_id = organ_id
        self.admission = admission
        self.ledger = ledger
        self.reporter = reporter
        self.on_receipt = on_receipt
        self.on_refused = on_refused

    def stored(self, stored: Incoming) -> InboxItem:
        """The item for a package the ledger holds (what was signed, read again from the stored bytes)."""
        return InboxItem.stored(self.reporter, read(stored.body), stored)

    async def handle(self, delivery: Delivery) -> InboxItem | None:
        """Process one delivery: the whole receiving pipeline. Returns what to hand to the application."""
        a = self.admission
        try:
            admitted = await asyncio.to_thread(
                admit, delivery.body, me=self.organ_id, publisher=delivery.user_id, trust=a.trust, directory=a.directory,
                pdf_policy=a.pdf_policy, check_publisher=a.check_publisher, limits=a.limits,
            )
            if admitted.kind == "status":
                return await self._status(delivery, admitted)
            return await self._document(delivery, admitted)
        except MessageRejected as exc:
            await self._refuse(delivery, exc)
            await _call(self.on_refused, exc, delivery.user_id)
            return None

    async def _document(self, delivery: Delivery, admitted: Admitted) -> InboxItem | None:
        kind = "document"
        sender, document_id = admitted.sender, admitted.document_id
        self._store(delivery, admitted, kind)
        package = admitted.package
        assert isinstance(package, Document)
        if not self.ledger.receipt_sent(sender, document_id, kind):
            about = ResponseFor(organ_id=sender, code=package.code, promulgation_date=package.promulgation.date,
                                document_id=document_id)
            await self.reporter.report(sender, about, StatusCode.ARRIVED)  # in the outbox first: retried if the broker is away
            self.ledger.mark_incoming(sender, document_id, kind, receipt_sent=True, state=StatusCode.ARRIVED.value)
        await delivery.ack()
        log.info("%s received %s %s from %s", self.organ_id, kind, document_id, sender)
        return InboxItem.of(self.reporter, package, sender, document_id, kind, verdict=Verdict.of(admitted.unpacked))

    def _store(self, delivery: Delivery, admitted: Admitted, kind: str) -> None:
        """Keep the package; a redelivery is fine, other content under a used DocumentId is refused."""
        arrival = self.ledger.store_incoming(admitted.sender, admitted.document_id, kind, delivery.message_id,
                                             delivery.body, admitted.digest, Verdict.of(admitted.unpacked).to_json())
        if arrival is Arrival.CONFLICT:
            raise MessageRejected(
                f"{admitted.document_id} was already received from {admitted.sender} with other content: "
                "a DocumentId names one document (send a change as an update or a replacement)",
                stage="conflict", sender=admitted.sender, document_id=admitted.document_id,
            )

    async def _status(self, delivery: Delivery, admitted: Admitted) -> InboxItem | None:
        status = admitted.package
        assert isinstance(status, StatusMessage)
        if status.status_code is StatusCode.RECALL_REQUESTED:  # about a document we received
            key = f"recall:{status.timestamp:%Y%m%d%H%M%S}"
            self._store(delivery, admitted, key)
            await delivery.ack()
            log.info("%s received a recall request for %s from %s", self.organ_id, admitted.document_id, admitted.sender)
            return InboxItem(self.reporter, status, admitted.sender, admitted.document_id, "recall", stored_as=key,
                             verdict=Verdict.of(admitted.unpacked))
        # the signed time has whole seconds: the signed content's digest tells apart two receipts with the
        # same code within one second (a redelivery or a republish has the same digest, and is a repeat)
        receipt_key = (f"{admitted.sender}|{admitted.document_id}|{status.status_code.value}|{status.timestamp.isoformat()}"
                       f"|{admitted.digest}")
        try:
            applied = self.ledger.apply(admitted.document_id, admitted.sender, status.status_code,
                                        receipt_key=receipt_key, note=status.description)
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
