"""Publishing what the ledger recorded: the outbox, its retries, and what became of each message.

Every message is in the ledger before it is published (:mod:`vbdt.exchange.ledger`). An outcome
is one of: confirmed (published), unroutable (no inbox: UNDELIVERABLE), refused for good
(:class:`~vbdt.errors.PublishRefused`, e.g. too large: FAILED with the reason, never retried), or
anything else (broker away, :class:`~vbdt.errors.QueueFull`): it stays pending and
:meth:`Outbox.flush` publishes it again.

Message ids are derived by :func:`message_id` from a hash: bounded (an AMQP message id is at
most 255 bytes) whatever the DocumentIds, and never taken from anything a peer sent unsigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from vbdt.errors import PublishRefused, TransportError, Unroutable
from vbdt.exchange.ledger import Ledger, OutboxEntry
from vbdt.exchange.routing import HEADER_FROM, HEADER_KIND, routing_key
from vbdt.exchange.transport import Outgoing, Transport
from vbdt.exchange.waiting import wait_event

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vbdt.exchange.groupcommit import GroupCommit

__all__ = ["Outbox", "SendResult", "attempt_message_id", "message_id"]

_IDLE_LOOK = 30.0  # seconds: the longest pause between looks at an empty outbox

log = logging.getLogger("vbdt.exchange.outbox")

T = TypeVar("T")


def message_id(kind: str, *parts: str) -> str:
    """A message id of fixed length (71 characters) for a message of ``kind`` identified by ``parts``.

    The same parts give the same id, so a republished outbox entry keeps its id."""
    digest = hashlib.sha256("\x1f".join((kind, *parts)).encode("utf-8", "surrogatepass")).hexdigest()
    return f"vbdt-{kind[:1]}-{digest}"


def attempt_message_id(document_id: str, recipient: str, attempt: int) -> str:
    """The message id of one delivery attempt of a document: the first is the one a send publishes;
    each later one differs, so the receiver tells a new attempt from a republished message."""
    if attempt <= 1:
        return message_id("document", document_id, recipient)
    return message_id("document", document_id, recipient, f"attempt {attempt}")


@dataclass(frozen=True)
class SendResult:
    """What became of one send."""

    document_id: str
    recipients: list[str]
    unroutable: dict[str, str] = field(default_factory=dict)
    """Recipient → reason: the broker has no inbox for it (recorded as UNDELIVERABLE)."""
    pending: dict[str, str] = field(default_factory=dict)
    """Recipient → reason: not confirmed yet (broker down, inbox full); still in the outbox, retried."""
    failed: dict[str, str] = field(default_factory=dict)
    """Recipient → reason: the broker will never take it (recorded as FAILED, not retried)."""


class Outbox:
    """Publishes outbox entries for one agency and records each outcome in its ledger."""

    def __init__(self, organ_id: str, transport: Transport, ledger: Ledger, commits: GroupCommit | None = None) -> None:
        self.organ_id = organ_id
        self.transport = transport
        self.ledger = ledger
        self.commits = commits
        """When given, the hot writes (records, confirms) share transactions with concurrent ones."""
        self._in_hand: set[str] = set()  # message ids being published by this process: flush leaves them
        self._stranded = asyncio.Event()  # a publish left something pending: keep_flushing looks again soon

    @contextlib.contextmanager
    def in_hand(self, entries: Sequence[OutboxEntry]) -> Iterator[None]:
        """While the block runs, :meth:`flush` leaves these entries to it (recorded, about to be
        published): no second copy of a message on its way."""
        ids = {e.message_id for e in entries} - self._in_hand
        self._in_hand |= ids
        try:
            yield
        finally:
            self._in_hand -= ids

    async def write(self, write: Callable[[], T]) -> T:
        """Run a ledger write: in the next group commit when there is one, else now."""
        return await self.commits.run(write) if self.commits is not None else write()

    def outgoing(self, entry: OutboxEntry) -> Outgoing:
        """The broker message for an entry (the headers name only this agency and the kind)."""
        return Outgoing(routing_key(entry.recipient), entry.body, entry.message_id,
                        {HEADER_KIND: entry.kind, HEADER_FROM: self.organ_id})

    async def publish(self, entries: Sequence[OutboxEntry], document_id: str, recipients: list[str]) -> SendResult:
        """Publish recorded entries concurrently; record confirms, unroutables and refusals."""
        with self.in_hand(entries):
            try:
                outcomes = await self.transport.publish_many([self.outgoing(e) for e in entries])
            except BaseException:  # cancelled (a caller's timeout) or failed: recorded, maybe not published
                self._stranded.set()
                raise
        confirmed = [o.message.message_id for o in outcomes if o.ok]
        if confirmed:
            await self.write(lambda: self.ledger.published(confirmed))
        unroutable: dict[str, str] = {}
        pending: dict[str, str] = {}
        failed: dict[str, str] = {}
        for entry, outcome in zip(entries, outcomes, strict=True):
            error = outcome.error
            if error is None:
                continue
            if isinstance(error, Unroutable):
                log.warning("%s: %s unroutable: %s", self.organ_id, entry.message_id, error)
                self.ledger.unroutable(entry.message_id, str(error))
                unroutable[entry.recipient] = str(error)
            elif isinstance(error, PublishRefused):
                log.error("%s: %s to %s refused for good: %s", self.organ_id, entry.message_id, entry.recipient, error)
                self.ledger.failed(entry.message_id, str(error))
                failed[entry.recipient] = str(error)
            else:
                pending[entry.recipient] = str(error)
        if pending:
            self._stranded.set()
        return SendResult(document_id, recipients, unroutable, pending, failed)

    async def record_and_publish(self, entries: Sequence[OutboxEntry], document_id: str, recipients: list[str]) -> SendResult:
        """Outbox rows for messages that are not deliveries (status messages), then publish them.

        :class:`~vbdt.errors.LedgerError` (nothing recorded or published) when a message id is already in
        the outbox with another body: a message is never silently dropped for another one."""
        with self.in_hand(entries):
            await self.write(lambda: self.ledger.record_outgoing_unique(entries))
            return await self.publish(entries, document_id, recipients)

    async def resend(self, document_id: str, recipients: Sequence[str]) -> SendResult:
        """A new delivery attempt to recipients that rejected the document (02) or had no inbox: the
        same signed bytes under a new message id (:meth:`Ledger.resend`), recorded, then published.

        :class:`~vbdt.errors.InvalidTransition` when one of them cannot be sent again (nothing is)."""
        entries = self.ledger.resend(document_id, recipients, lambda recipient, attempt: attempt_message_id(document_id, recipient, attempt))
        return await self.publish(entries, document_id, [e.recipient for e in entries])

    async def flush(self) -> SendResult:
        """Publish every outbox entry the broker has not confirmed yet (after a crash or an outage),
        but those this process is publishing right now."""
        entries = [e for e in self.ledger.pending() if e.message_id not in self._in_hand]
        if not entries:
            return SendResult("", [])
        return await self.publish(entries, "", [e.recipient for e in entries])

    async def keep_flushing(self, every: float = 2.0, idle: float = _IDLE_LOOK) -> None:
        """Publish what an outage left in the outbox (receipts included) as soon as the broker is back:
        every ``every`` seconds while something is pending; while nothing is, the ledger is looked at
        less and less often (up to every ``idle`` seconds: a host runs thousands of agencies), and a
        publish that leaves something pending brings the pace back at once."""
        loop = asyncio.get_running_loop()
        pause = every
        while True:
            deadline = loop.time() + pause
            while (left := deadline - loop.time()) > 0:
                if not await wait_event(self._stranded, left):
                    break
                self._stranded.clear()  # left pending just now: look again `every` from now at the latest
                pause = every
                deadline = min(deadline, loop.time() + every)
            if not self.ledger.pending():
                pause = min(pause * 2, idle)
                continue
            pause = every
            try:
                await self.flush()
            except TransportError as exc:
                log.warning("%s: outbox not flushed yet: %s", self.organ_id, exc)
