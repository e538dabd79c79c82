"""The agency's durable ledger: what it sent and where each copy stands, what it received.

Sending side: a document and one delivery row per recipient are written **before** anything is
published, together with an outbox row per message; a message leaves the outbox only when the
broker confirmed it. A process that dies in between finds the rows on restart and publishes them
again (same message ids, so receivers de-duplicate). Receipts move deliveries through the state
machine of :mod:`vbdt.exchange.receipts` and nothing else; each receipt is applied once.

Receiving side: each incoming package is stored (bytes and all) before the broker is told it was
handled, keyed by sender and DocumentId with the digest of what was signed, so a redelivery (same
digest) is recognised, a different document under a used DocumentId is a conflict
(:class:`Arrival`), and the application sees each document once. Retention
(:meth:`Ledger.drop_bodies`) deletes the bytes of items acknowledged long enough ago, never their
record; an item not yet acknowledged always keeps its bytes.

A message the broker will never take (too large, an invalid property) is recorded as failed with
its reason and leaves the outbox: it is not retried.

Delivery attempts: a delivery the recipient rejected (02), or that had no inbox, can be sent again
(:meth:`Ledger.resend`): the same signed bytes under a new message id, the delivery back to QUEUED
with its attempt number raised, and the receipts of the new attempt move it as the first one's did.
The receiving side recognises the new attempt of a document it had rejected by its message id and
takes it again (:attr:`Arrival.RESENT`); a republished message (same id) stays a redelivery.

Deadlines (:meth:`Ledger.overdue`) follow Decree 30 on the working-day calendar of
:mod:`vbdt.exchange.deadlines`, counted from when the delivery was sent.

:class:`Ledger` is the interface; :class:`SqliteLedger` the implementation (one file per agency,
WAL journal). A PostgreSQL ledger would implement the same methods.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import InvalidTransition, LedgerError, UsageError
from vbdt.exchange.deadlines import DEFAULT_CALENDAR, WorkCalendar
from vbdt.exchange.receipts import RESENDABLE, TERMINAL, DeliveryState, Event, is_stale, next_state
from vbdt.exchange.sqlite import Durability, SqliteFile

__all__ = ["Arrival", "Delivered", "DroppedBodies", "FailedMessage", "HistoryEvent", "Incoming", "Ledger", "OutboxEntry", "OutboxRecord", "Overdue",
           "SentDocument", "SqliteLedger"]


@dataclass(frozen=True)
class SentDocument:
    """What the ledger keeps of a document it sends."""

    document_id: str
    sender: str
    code: str
    subject: str
    promulgated: dt.date
    due_date: dt.date | None = None
    kind: str = "new"
    """``new``, ``revoke``, ``update`` or ``replace`` (BussinessDocType)."""
    replaces: str | None = None
    """For update/replace/revoke: the DocumentId it concerns."""
    content_digest: str | None = None
    """SHA-256 of the document as the application gave it: a second send under the same DocumentId
    must be the same document (:meth:`vbdt.exchange.client.Agency.send` refuses another one)."""


@dataclass(frozen=True)
class OutboxEntry:
    """A message recorded before publishing."""

    message_id: str
    document_id: str
    recipient: str
    kind: str
    """``document`` or ``status``."""
    body: bytes


@dataclass(frozen=True)
class Delivered:
    """One document at one recipient."""

    document_id: str
    recipient: str
    state: DeliveryState
    reason: str | None
    updated_at: dt.datetime
    attempt: int = 1
    """The delivery attempt its state belongs to (1, then one more per :meth:`Ledger.resend`)."""
    sent_at: dt.datetime | None = None
    """When the current attempt was recorded for sending (Vietnam time); deadlines count from it."""


@dataclass(frozen=True)
class Overdue:
    """A delivery past a deadline."""

    document_id: str
    recipient: str
    state: DeliveryState
    why: str
    deadline: dt.datetime | None = None
    """The deadline passed (Vietnam time)."""
    late_by: int = 0
    """Working days past the deadline (at least 1)."""


@dataclass(frozen=True)
class OutboxRecord:
    """One outbox row as an operator looks at it (the body left out)."""

    message_id: str
    document_id: str
    recipient: str
    kind: str
    size: int
    """Bytes of the message body."""
    created_at: dt.datetime
    published_at: dt.datetime | None
    failed_at: dt.datetime | None
    failure: str | None

    @property
    def pending(self) -> bool:
        """Neither confirmed by the broker nor refused for good: the outbox publishes it again."""
        return self.published_at is None and self.failed_at is None


@dataclass(frozen=True)
class FailedMessage:
    """An outbox message the broker refused for good, with the reason."""

    message_id: str
    document_id: str
    recipient: str
    kind: str
    reason: str


class Arrival(StrEnum):
    """What a received package is, next to what the ledger already holds under its key."""

    NEW = "new"
    REDELIVERY = "redelivery"
    """The same signed content again (a redelivery, a re-publish): nothing to do but acknowledge."""
    CONFLICT = "conflict"
    """Other content under a (sender, DocumentId) already received: refused, never dropped silently."""
    RESENT = "resent"
    """The same content as a document this agency rejected (02), under a new message id: the
    sender's new delivery attempt. The stored item is open again (to answer 01, to hand over)."""


@dataclass(frozen=True)
class Incoming:
    """A package this agency received and stored."""

    sender: str
    document_id: str
    kind: str
    message_id: str
    body: bytes | None
    """The package as received (signed bytes); ``None`` once retention dropped it
    (:meth:`Ledger.drop_bodies`): only ever for an item acknowledged long enough ago."""
    receipt_sent: bool
    handed: bool
    """Given to the application at least once."""
    state: str
    """What this agency last reported about it: a status code, or ``received``."""
    received_at: dt.datetime | None = None
    """When it was stored (Vietnam time)."""
    acknowledged: bool = False
    """The application acknowledged it (committed it to its own records)."""
    verdict: str | None = None
    """The verification verdict computed at receipt, as JSON (:class:`vbdt.exchange.answers.Verdict`)."""
    size: int | None = None
    """Bytes of the package as received, kept when its body is dropped (None: dropped by a ledger
    that did not record it)."""
    dropped_at: dt.datetime | None = None
    """When retention dropped the body (Vietnam time); None while the ledger holds it."""


@dataclass(frozen=True)
class DroppedBodies:
    """What :meth:`Ledger.drop_bodies` deleted."""

    items: tuple[tuple[str, str, str], ...]
    """(sender, DocumentId, kind) of each received item whose body went, oldest first."""
    bodies: int
    """Distinct bodies deleted (items sharing one body count once)."""
    bytes: int
    """Their size: space the ledger file reuses for what it stores next (the file does not shrink)."""


@dataclass(frozen=True)
class HistoryEvent:
    """One event in the life of a delivery: a receipt applied (or ignored), an answer sent."""

    document_id: str
    agency: str
    """The recipient (sending side) or the sender (receiving side)."""
    event: str
    """A status code (``01``…``16``) or a ledger event (``published``, ``unroutable``, ``failed``…)."""
    state: str
    """The delivery's state after the event (sending side), or the code sent (receiving side)."""
    note: str | None
    staff: str | None
    applied: bool
    """False for a receipt that arrived stale or repeated and changed nothing."""
    at: dt.datetime


class Ledger(abc.ABC):
    """What the exchange layer needs from durable storage."""

    # -- sending ---------------------------------------------------------------------------
    @abc.abstractmethod
    def record_send(self, document: SentDocument, entries: Sequence[OutboxEntry]) -> None:
        """The document, a QUEUED delivery per document entry, and the outbox rows: one transaction."""

    @abc.abstractmethod
    def record_deliveries(self, document: SentDocument, body: bytes, recipients: Sequence[str]) -> None:
        """A document its caller publishes itself (a bulk run, whose journal is its outbox): the
        document, its signed body and a QUEUED delivery per recipient, **no outbox row** (the outbox
        would publish each copy on its own); one transaction. A recipient already recorded keeps its
        delivery as it is. The caller records the broker's word with :meth:`move_deliveries`;
        :meth:`resend` sends such a delivery again from the body kept here. Called again for the
        same document with another body (a bulk run signs one envelope per group of recipients),
        each recipient keeps the body it was recorded with."""

    @abc.abstractmethod
    def move_deliveries(self, document_id: str, recipients: Sequence[str], event: Event,
                        reason: str | None = None) -> list[str]:
        """Apply one ledger event (:attr:`~Event.PUBLISHED`, :attr:`~Event.UNROUTABLE`,
        :attr:`~Event.REFUSED`, with ``reason``) to many deliveries of a document, each by the table of
        :mod:`vbdt.exchange.receipts`, with its history: one transaction. A delivery the table does not
        let the event move (an unroutable after a receipt took it on) keeps its state; those
        recipients are returned. :class:`~vbdt.errors.InvalidTransition` (nothing changed) when a
        recipient has no delivery of the document; :class:`~vbdt.errors.UsageError` for
        :attr:`~Event.RESENT` (:meth:`resend` records a new attempt)."""

    @abc.abstractmethod
    def record_outgoing(self, entries: Sequence[OutboxEntry]) -> None:
        """Outbox rows for status messages this agency sends (no delivery rows)."""

    @abc.abstractmethod
    def record_outgoing_unique(self, entries: Sequence[OutboxEntry]) -> None:
        """As :meth:`record_outgoing`, but a message id already in the outbox with another body is
        refused (:class:`~vbdt.errors.LedgerError`, nothing recorded) instead of silently kept as it was;
        the same id with the same body is a repeat and records nothing new."""

    @abc.abstractmethod
    def pending(self) -> list[OutboxEntry]:
        """Outbox rows not yet confirmed by the broker, oldest first."""

    @abc.abstractmethod
    def published(self, message_ids: Sequence[str]) -> None:
        """The broker confirmed these messages."""

    @abc.abstractmethod
    def unroutable(self, message_id: str, reason: str) -> None:
        """The broker has no inbox for this message's recipient."""

    @abc.abstractmethod
    def failed(self, message_id: str, reason: str) -> None:
        """The broker will never take this message: out of the outbox, its delivery FAILED, with the reason."""

    @abc.abstractmethod
    def failures(self) -> list[FailedMessage]:
        """Every message recorded as failed, oldest first."""

    @abc.abstractmethod
    def apply(self, document_id: str, recipient: str, code: StatusCode, *, receipt_key: str, note: str | None = None) -> DeliveryState | None:
        """Apply a verified receipt once; return the new state, or None when it was a repeat or stale."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for every write this thread makes inside the block (group commit, see
        :mod:`vbdt.exchange.groupcommit`): a write that fails is undone alone, the others commit
        together when the block ends, or none does. This default commits each write on its own."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def resend(self, document_id: str, recipients: Sequence[str], message_id: Callable[[str, int], str]) -> list[OutboxEntry]:
        """A new delivery attempt to each recipient (each in :data:`~vbdt.exchange.receipts.RESENDABLE`):
        the same signed body under ``message_id(recipient, attempt)``, back to QUEUED; one transaction.
        :class:`~vbdt.errors.InvalidTransition` (nothing changed) when one of them cannot be resent."""

    @abc.abstractmethod
    def outbox_records(self, *, pending_only: bool = True) -> list[OutboxRecord]:
        """Outbox rows, oldest first: those still to publish, or every one (published and failed too)."""

    @abc.abstractmethod
    def request_recall(self, document_id: str, recipients: Sequence[str], reason: str) -> list[str]:
        """Move every open delivery of a document to RECALL_REQUESTED; return those recipients."""

    @abc.abstractmethod
    def deliveries(self, document_id: str) -> list[Delivered]:
        """Every recipient of a document and its state."""

    def state_counts(self, document_id: str) -> dict[DeliveryState, int]:
        """How many recipients of a document are in each state (those with none left out): what
        :meth:`deliveries` says, without a row per recipient of a directive to thousands."""
        counts: dict[DeliveryState, int] = {}
        for delivered in self.deliveries(document_id):
            counts[delivered.state] = counts.get(delivered.state, 0) + 1
        return counts

    @abc.abstractmethod
    def document(self, document_id: str) -> SentDocument | None:
        """A sent document."""

    @abc.abstractmethod
    def documents(self) -> list[SentDocument]:
        """Every document sent, oldest first."""

    @abc.abstractmethod
    def overdue(self, now: dt.datetime | None = None, calendar: WorkCalendar = DEFAULT_CALENDAR) -> list[Overdue]:
        """Deliveries whose arrival is not confirmed by the end of the next working day after they were
        sent, or not completed by the end of the document's due date (Decree 30/2020)."""

    # -- receiving -------------------------------------------------------------------------
    @abc.abstractmethod
    def store_incoming(self, sender: str, document_id: str, kind: str, message_id: str, body: bytes,
                       content_digest: str | None = None, verdict: str | None = None) -> Arrival:
        """Keep a received package, unless one is already here under (sender, DocumentId, kind):
        then say whether it is the same (same ``content_digest``) or a conflict."""

    @abc.abstractmethod
    def incoming(self, sender: str, document_id: str, kind: str) -> Incoming | None:
        """A received package."""

    @abc.abstractmethod
    def mark_incoming(self, sender: str, document_id: str, kind: str, *, receipt_sent: bool | None = None,
                      handed: bool | None = None, state: str | None = None) -> None:
        """Record that the receipt was sent, that the application has it, or what was last reported."""

    @abc.abstractmethod
    def receipt_sent(self, sender: str, document_id: str, kind: str) -> bool:
        """Whether the arrival receipt of a stored package was sent (cheap: no body read)."""

    @abc.abstractmethod
    def claim_handover(self, sender: str, document_id: str, kind: str) -> bool:
        """Atomically mark a stored package as handed to the application; False if it already was."""

    @abc.abstractmethod
    def unhanded(self) -> list[Incoming]:
        """Received and stored, but not yet given to the application (a crash in between)."""

    @abc.abstractmethod
    def unacknowledged(self) -> list[Incoming]:
        """Received and stored, and not yet acknowledged by the application, oldest first."""

    @abc.abstractmethod
    def acknowledge(self, sender: str, document_id: str, kind: str) -> bool:
        """The application has committed the item; False if it already had (or it is unknown)."""

    @abc.abstractmethod
    def received(self, *, state: str | None = None, sender: str | None = None, since: dt.datetime | None = None,
                 unacknowledged: bool | None = None, limit: int | None = None) -> list[Incoming]:
        """Stored items matching every filter given, oldest first."""

    @abc.abstractmethod
    def record_answer(self, sender: str, document_id: str, kind: str, code: StatusCode, note: str | None,
                      staff: str | None) -> None:
        """An answer this agency sent about a received item (its history), and its new state."""

    @abc.abstractmethod
    def history(self, document_id: str, agency: str | None = None) -> list[HistoryEvent]:
        """Sent side: every event of the document's deliveries (to ``agency`` only, if given);
        received side: every answer about a document received (from ``agency``)."""

    @abc.abstractmethod
    def drop_bodies(self, acknowledged_before: dt.datetime) -> DroppedBodies:
        """Retention: delete the bodies of received items the application acknowledged before
        ``acknowledged_before`` (aware), unless another row still needs the same bytes (an outbox
        message, another received item not yet that old). An item not acknowledged, or not handed
        over, never loses its body (a restart hands it again from it). Every record stays: state,
        answers, verdict, when it was received; its :attr:`Incoming.body` becomes None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the storage."""


_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY, sender TEXT NOT NULL, code TEXT NOT NULL, subject TEXT NOT NULL,
    promulgated TEXT NOT NULL, due_date TEXT, kind TEXT NOT NULL, replaces TEXT, created_at TEXT NOT NULL,
    content_digest TEXT);
CREATE TABLE IF NOT EXISTS deliveries (
    document_id TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, before_recall TEXT,
    reason TEXT, updated_at TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1, sent_at TEXT, body_digest TEXT,
    PRIMARY KEY (document_id, recipient));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, recipient TEXT NOT NULL, event TEXT NOT NULL,
    state TEXT NOT NULL, note TEXT, applied INTEGER NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (digest TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY, document_id TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES bodies(digest), created_at TEXT NOT NULL, published_at TEXT,
    failed_at TEXT, failure TEXT);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (published_at) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS document_bodies (
    document_id TEXT PRIMARY KEY, digest TEXT NOT NULL REFERENCES bodies(digest));
CREATE TABLE IF NOT EXISTS receipts_seen (receipt_key TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incoming (
    sender TEXT NOT NULL, document_id TEXT NOT NULL, kind TEXT NOT NULL, message_id TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES bodies(digest), received_at TEXT NOT NULL,
    receipt_sent INTEGER NOT NULL DEFAULT 0, handed INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'received',
    content_digest TEXT, acked_at TEXT, verdict TEXT, size INTEGER, dropped_at TEXT, PRIMARY KEY (sender, document_id, kind));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, sender TEXT NOT NULL, document_id TEXT NOT NULL, kind TEXT NOT NULL, code TEXT NOT NULL,
    note TEXT, staff TEXT, at TEXT NOT NULL);
"""
# Columns added after the first release (name, declaration): a ledger written by it gains them on opening.
_ADDED_COLUMNS = {
    "documents": (("content_digest", "TEXT"),),
    "outbox": (("failed_at", "TEXT"), ("failure", "TEXT")),
    "incoming": (("content_digest", "TEXT"), ("acked_at", "TEXT"), ("verdict", "TEXT"), ("size", "INTEGER"),
                 ("dropped_at", "TEXT")),
    "deliveries": (("attempt", "INTEGER NOT NULL DEFAULT 1"), ("sent_at", "TEXT"), ("body_digest", "TEXT")),
}


_SENT_COLUMNS = "document_id, sender, code, subject, promulgated, due_date, kind, replaces, content_digest"
_WITH_REASON = (DeliveryState.REJECTED, DeliveryState.UNDELIVERABLE, DeliveryState.FAILED)
"""Delivery states that keep the reason of the event that led to them."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _local(stored: object) -> dt.datetime:
    """A stored UTC time as an aware datetime in Vietnam time (what every API returns)."""
    return dt.datetime.fromisoformat(str(stored)).astimezone(VIETNAM_TZ)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


class SqliteLedger(Ledger):
    """The ledger in one SQLite file (``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path, *, durability: Durability = "normal") -> None:
        """``durability``: ``normal`` (a commit survives the process dying) or ``full`` (a power loss
        too, one fsync per commit); see :mod:`vbdt.exchange.sqlite`."""
        self._file = SqliteFile(path, _SCHEMA, what="ledger", added_columns=_ADDED_COLUMNS, durability=durability)
        self.durability: Durability = durability
        self.path = self._file.path

    @staticmethod
    def _body(db: sqlite3.Connection, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        db.execute("INSERT OR IGNORE INTO bodies (digest, body) VALUES (?, ?)", (digest, body))
        return digest

    # -- sending ---------------------------------------------------------------------------
    def record_send(self, document: SentDocument, entries: Sequence[OutboxEntry]) -> None:
        now = _now()
        with self._file.transaction() as db:
            self._document(db, document, now)
            self._outbox(db, entries, now)
            for entry in entries:
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (document_id, recipient, state, updated_at, sent_at) VALUES (?, ?, ?, ?, ?)",
                    (entry.document_id, entry.recipient, DeliveryState.QUEUED.value, now, now),
                )

    @staticmethod
    def _document(db: sqlite3.Connection, document: SentDocument, now: str) -> None:
        """The sent document's row (kept as it is when it exists)."""
        db.execute(
            "INSERT OR IGNORE INTO documents (document_id, sender, code, subject, promulgated, due_date, kind, replaces, "
            "created_at, content_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.document_id, document.sender, document.code, document.subject, document.promulgated.isoformat(),
             document.due_date.isoformat() if document.due_date else None, document.kind, document.replaces, now,
             document.content_digest),
        )

    def _outbox(self, db: sqlite3.Connection, entries: Sequence[OutboxEntry], now: str) -> None:
        digests: dict[int, str] = {}
        for entry in entries:
            digest = digests.get(id(entry.body)) or self._body(db, entry.body)  # one body for N recipients
            digests[id(entry.body)] = digest
            db.execute(
                "INSERT OR IGNORE INTO outbox (message_id, document_id, recipient, kind, digest, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.message_id, entry.document_id, entry.recipient, entry.kind, digest, now),
            )

    def record_deliveries(self, document: SentDocument, body: bytes, recipients: Sequence[str]) -> None:
        now = _now()
        with self._file.transaction() as db:
            self._document(db, document, now)
            digest = self._body(db, body)
            db.execute("INSERT OR IGNORE INTO document_bodies (document_id, digest) VALUES (?, ?)",
                       (document.document_id, digest))
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (document_id, recipient, state, updated_at, sent_at, body_digest) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(document.document_id, r, DeliveryState.QUEUED.value, now, now, digest) for r in recipients],
            )

    def move_deliveries(self, document_id: str, recipients: Sequence[str], event: Event,
                        reason: str | None = None) -> list[str]:
        if event is Event.RESENT:
            raise UsageError("a new delivery attempt is recorded by resend(), which gives it a message id")
        wanted = list(dict.fromkeys(recipients))
        if not wanted:
            return []
        now = _now()
        kept: list[str] = []
        moves: list[tuple[str, DeliveryState]] = []
        targets: dict[str, DeliveryState | None] = {}  # the table's answer for each state met, asked once
        with self._file.transaction() as db:
            states = [(r, db.execute("SELECT state FROM deliveries WHERE document_id = ? AND recipient = ?",
                                     (document_id, r)).fetchone()) for r in wanted]
            absent = [r for r, row in states if row is None]
            if absent:
                more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
                raise InvalidTransition(f"no delivery of {document_id} to {absent[0]}{more} in this ledger")
            for recipient, (state,) in states:
                if state not in targets:
                    try:
                        targets[state] = next_state(DeliveryState(state), event)
                    except InvalidTransition:
                        targets[state] = None
                new = targets[state]
                if new is None:
                    kept.append(recipient)
                else:
                    moves.append((recipient, new))
            db.executemany(
                "UPDATE deliveries SET state = ?, reason = COALESCE(?, reason), updated_at = ? WHERE document_id = ? AND recipient = ?",
                [(new.value, reason if new in _WITH_REASON else None, now, document_id, r) for r, new in moves])
            db.executemany(
                "INSERT INTO history (document_id, recipient, event, state, note, applied, at) VALUES (?, ?, ?, ?, ?, 1, ?)",
                [(document_id, r, event.value, new.value, reason, now) for r, new in moves])
        return kept

    def record_outgoing(self, entries: Sequence[OutboxEntry]) -> None:
        with self._file.transaction() as db:
            self._outbox(db, entries, _now())

    def record_outgoing_unique(self, entries: Sequence[OutboxEntry]) -> None:
        with self._file.transaction() as db:
            for entry in entries:
                row = db.execute("SELECT digest FROM outbox WHERE message_id = ?", (entry.message_id,)).fetchone()
                if row is not None and row[0] != hashlib.sha256(entry.body).hexdigest():
                    raise LedgerError(f"message id {entry.message_id} is already in the outbox with another body "
                                      f"({entry.kind} about {entry.document_id} to {entry.recipient}): not recorded")
            self._outbox(db, entries, _now())

    def pending(self) -> list[OutboxEntry]:
        rows = self._file.query(
            "SELECT o.message_id, o.document_id, o.recipient, o.kind, b.body FROM outbox o JOIN bodies b USING (digest) "
            "WHERE o.published_at IS NULL AND o.failed_at IS NULL ORDER BY o.rowid"
        )
        return [OutboxEntry(str(m), str(d), str(r), str(k), bytes(b)) for m, d, r, k, b in rows]

    def published(self, message_ids: Sequence[str]) -> None:
        now = _now()
        with self._file.transaction() as db:
            for message_id in message_ids:
                row = db.execute("SELECT document_id, recipient, kind FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
                db.execute("UPDATE outbox SET published_at = ? WHERE message_id = ? AND published_at IS NULL", (now, message_id))
                if row and row[2] == "document":
                    self._move(db, row[0], row[1], Event.PUBLISHED, None, now)

    def unroutable(self, message_id: str, reason: str) -> None:
        now = _now()
        with self._file.transaction() as db:
            row = db.execute("SELECT document_id, recipient, kind FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
            db.execute("UPDATE outbox SET published_at = ? WHERE message_id = ?", (now, message_id))
            if row and row[2] == "document":
                self._move(db, row[0], row[1], Event.UNROUTABLE, reason, now)

    def failed(self, message_id: str, reason: str) -> None:
        now = _now()
        with self._file.transaction() as db:
            row = db.execute("SELECT document_id, recipient, kind FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
            db.execute("UPDATE outbox SET failed_at = ?, failure = ? WHERE message_id = ? AND published_at IS NULL",
                       (now, reason, message_id))
            if row and row[2] == "document":
                self._move(db, row[0], row[1], Event.REFUSED, reason, now)

    def failures(self) -> list[FailedMessage]:
        rows = self._file.query("SELECT message_id, document_id, recipient, kind, failure FROM outbox "
                           "WHERE failed_at IS NOT NULL ORDER BY rowid")
        return [FailedMessage(*(str(v) for v in row)) for row in rows]

    def _move(self, db: sqlite3.Connection, document_id: str, recipient: str, event: StatusCode | Event,
              note: str | None, now: str) -> DeliveryState | None:
        row = db.execute("SELECT state, before_recall FROM deliveries WHERE document_id = ? AND recipient = ?",
                         (document_id, recipient)).fetchone()
        if row is None:
            raise InvalidTransition(f"no delivery of {document_id} to {recipient} in this ledger")
        state = DeliveryState(row[0])
        before = DeliveryState(row[1]) if row[1] else None
        if is_stale(state, event):
            db.execute("INSERT INTO history (document_id, recipient, event, state, note, applied, at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                       (document_id, recipient, event.value, state.value, note, now))
            return None
        new = next_state(state, event, before_recall=before)
        recall_from = state.value if new is DeliveryState.RECALL_REQUESTED and state is not new else row[1]
        reason = note if new in _WITH_REASON or event is StatusCode.CHANGE_REFUSED else None
        db.execute(
            "UPDATE deliveries SET state = ?, before_recall = ?, reason = COALESCE(?, reason), updated_at = ? "
            "WHERE document_id = ? AND recipient = ?",
            (new.value, recall_from, reason, now, document_id, recipient),
        )
        db.execute("INSERT INTO history (document_id, recipient, event, state, note, applied, at) VALUES (?, ?, ?, ?, ?, 1, ?)",
                   (document_id, recipient, event.value, new.value, note, now))
        return new if new is not state else None

    def apply(self, document_id: str, recipient: str, code: StatusCode, *, receipt_key: str, note: str | None = None) -> DeliveryState | None:
        now = _now()
        with self._file.transaction() as db:
            if db.execute("SELECT 1 FROM receipts_seen WHERE receipt_key = ?", (receipt_key,)).fetchone():
                return None
            result = self._move(db, document_id, recipient, code, note, now)
            db.execute("INSERT INTO receipts_seen VALUES (?, ?)", (receipt_key, now))
            return result

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return self._file.group()

    def resend(self, document_id: str, recipients: Sequence[str], message_id: Callable[[str, int], str]) -> list[OutboxEntry]:
        now = _now()
        entries: list[OutboxEntry] = []
        with self._file.transaction() as db:
            for recipient in recipients:
                # the body of the first outbox row, else (a document published by its caller,
                # record_deliveries) the one recorded for the recipient (a bulk envelope lists its
                # group of recipients), else (a ledger written before that) the document's own
                row = db.execute("SELECT d.state, d.attempt, COALESCE((SELECT o.digest FROM outbox o WHERE "
                                 "o.document_id = d.document_id AND o.recipient = d.recipient AND o.kind = 'document' "
                                 "ORDER BY o.rowid LIMIT 1), d.body_digest, (SELECT b.digest FROM document_bodies b WHERE "
                                 "b.document_id = d.document_id)) FROM deliveries d WHERE d.document_id = ? AND d.recipient = ?",
                                 (document_id, recipient)).fetchone()
                if row is None or row[2] is None:
                    raise InvalidTransition(f"no delivery of {document_id} to {recipient} in this ledger")
                state, attempt = DeliveryState(row[0]), int(row[1] or 1) + 1
                if state not in RESENDABLE:
                    raise InvalidTransition(f"{document_id} to {recipient} is {state.value} ({state.label}): only a rejected "
                                            "or undeliverable delivery is sent again")
                self._move(db, document_id, recipient, Event.RESENT, f"attempt {attempt}", now)
                db.execute("UPDATE deliveries SET attempt = ?, sent_at = ?, reason = NULL, before_recall = NULL "
                           "WHERE document_id = ? AND recipient = ?", (attempt, now, document_id, recipient))
                body = db.execute("SELECT body FROM bodies WHERE digest = ?", (row[2],)).fetchone()[0]
                entry = OutboxEntry(message_id(recipient, attempt), document_id, recipient, "document", bytes(body))
                db.execute("INSERT INTO outbox (message_id, document_id, recipient, kind, digest, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (entry.message_id, document_id, recipient, "document", row[2], now))
                entries.append(entry)
        return entries

    def outbox_records(self, *, pending_only: bool = True) -> list[OutboxRecord]:
        where = "WHERE o.published_at IS NULL AND o.failed_at IS NULL " if pending_only else ""
        rows = self._file.query("SELECT o.message_id, o.document_id, o.recipient, o.kind, length(b.body), o.created_at, "
                           "o.published_at, o.failed_at, o.failure FROM outbox o JOIN bodies b USING (digest) "
                           f"{where}ORDER BY o.rowid")
        return [OutboxRecord(str(m), str(d), str(r), str(k), int(str(size)), _local(created),
                             None if published is None else _local(published), None if failed is None else _local(failed),
                             _opt(failure)) for m, d, r, k, size, created, published, failed, failure in rows]

    def request_recall(self, document_id: str, recipients: Sequence[str], reason: str) -> list[str]:
        """Move every open delivery of a document to RECALL_REQUESTED; return those recipients."""
        now = _now()
        moved = []
        with self._file.transaction() as db:
            for recipient in recipients:
                state = db.execute("SELECT state FROM deliveries WHERE document_id = ? AND recipient = ?", (document_id, recipient)).fetchone()
                if state and DeliveryState(state[0]) not in TERMINAL:
                    self._move(db, document_id, recipient, StatusCode.RECALL_REQUESTED, reason, now)
                    moved.append(recipient)
        return moved

    def deliveries(self, document_id: str) -> list[Delivered]:
        rows = self._file.query("SELECT d.recipient, d.state, d.reason, d.updated_at, d.attempt, COALESCE(d.sent_at, doc.created_at) "
                           "FROM deliveries d LEFT JOIN documents doc USING (document_id) WHERE d.document_id = ? "
                           "ORDER BY d.recipient", (document_id,))
        return [Delivered(document_id, str(r), DeliveryState(str(s)), _opt(why), _local(at), int(str(attempt or 1)),
                          None if sent is None else _local(sent))
                for r, s, why, at, attempt, sent in rows]

    def state_counts(self, document_id: str) -> dict[DeliveryState, int]:
        rows = self._file.query("SELECT state, COUNT(*) FROM deliveries WHERE document_id = ? GROUP BY state", (document_id,))
        return {DeliveryState(str(state)): int(str(n)) for state, n in rows}

    def _sent(self, row: tuple[object, ...]) -> SentDocument:
        d, sender, code, subject, promulgated, due, kind, replaces, digest = row
        return SentDocument(str(d), str(sender), str(code), str(subject), dt.date.fromisoformat(str(promulgated)),
                            dt.date.fromisoformat(str(due)) if due else None, str(kind), None if replaces is None else str(replaces),
                            None if digest is None else str(digest))

    def document(self, document_id: str) -> SentDocument | None:
        rows = self._file.query(f"SELECT {_SENT_COLUMNS} FROM documents WHERE document_id = ?", (document_id,))
        return self._sent(rows[0]) if rows else None

    def documents(self) -> list[SentDocument]:
        rows = self._file.query(f"SELECT {_SENT_COLUMNS} FROM documents ORDER BY rowid")
        return [self._sent(r) for r in rows]

    def overdue(self, now: dt.datetime | None = None, calendar: WorkCalendar = DEFAULT_CALENDAR) -> list[Overdue]:
        now = (now or dt.datetime.now(VIETNAM_TZ)).astimezone(VIETNAM_TZ)
        rows = self._file.query(
            "SELECT d.document_id, d.recipient, d.state, COALESCE(d.sent_at, doc.created_at), doc.due_date FROM deliveries d "
            "JOIN documents doc USING (document_id) ORDER BY doc.rowid, d.recipient"
        )
        out = []
        for document_id, recipient, state_text, sent_at, due in rows:
            state = DeliveryState(str(state_text))
            if state in (DeliveryState.QUEUED, DeliveryState.SENT):
                deadline = calendar.arrival_deadline(_local(sent_at))
                if now > deadline:
                    late = calendar.late_by(deadline, now)
                    out.append(Overdue(str(document_id), str(recipient), state,
                                       f"chưa xác nhận đã nhận, hạn {deadline:%d/%m/%Y} (ngày làm việc tiếp theo sau khi gửi, "
                                       f"Nghị định 30/2020), trễ {late} ngày làm việc", deadline, late))
                    continue
            if due and state not in TERMINAL:
                deadline = calendar.handling_deadline(dt.date.fromisoformat(str(due)))
                if now > deadline:
                    late = calendar.late_by(deadline, now)
                    out.append(Overdue(str(document_id), str(recipient), state,
                                       f"quá hạn xử lý {deadline:%d/%m/%Y}, chưa hoàn thành, trễ {late} ngày làm việc",
                                       deadline, late))
        return out

    # -- receiving -------------------------------------------------------------------------
    def store_incoming(self, sender: str, document_id: str, kind: str, message_id: str, body: bytes,
                       content_digest: str | None = None, verdict: str | None = None) -> Arrival:
        with self._file.transaction() as db:
            row = db.execute("SELECT content_digest, state, message_id FROM incoming WHERE sender = ? AND document_id = ? "
                             "AND kind = ?", (sender, document_id, kind)).fetchone()
            if row is not None:
                # A row of a ledger older than the digests cannot be told apart: taken as the same.
                same = row[0] is None or content_digest is None or row[0] == content_digest
                if not same:
                    return Arrival.CONFLICT
                if row[1] == StatusCode.REJECTED.value and row[2] != message_id:
                    # rejected here, sent again by its sender as a new attempt: open it again, with
                    # the bytes of this attempt (retention may have dropped the first one's)
                    db.execute("UPDATE incoming SET message_id = ?, state = 'received', receipt_sent = 0, handed = 0, "
                               "acked_at = NULL, received_at = ?, verdict = COALESCE(?, verdict), digest = ?, size = ?, "
                               "dropped_at = NULL WHERE sender = ? AND document_id = ? AND kind = ?",
                               (message_id, _now(), verdict, self._body(db, body), len(body), sender, document_id, kind))
                    return Arrival.RESENT
                return Arrival.REDELIVERY
            digest = self._body(db, body)
            db.execute("INSERT INTO incoming (sender, document_id, kind, message_id, digest, received_at, content_digest, "
                       "verdict, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (sender, document_id, kind, message_id, digest, _now(), content_digest, verdict, len(body)))
            return Arrival.NEW

    def _incoming_rows(self, where: str, args: Sequence[object], limit: int | None = None) -> list[Incoming]:
        # LEFT JOIN: an item whose body retention dropped keeps its record (body None)
        rows = self._file.query(
            "SELECT i.sender, i.document_id, i.kind, i.message_id, b.body, i.receipt_sent, i.handed, i.state, "
            "i.received_at, i.acked_at, i.verdict, COALESCE(i.size, length(b.body)), i.dropped_at "
            f"FROM incoming i LEFT JOIN bodies b USING (digest) WHERE {where} ORDER BY i.rowid"
            + (" LIMIT ?" if limit is not None else ""), [*args, *([limit] if limit is not None else [])])
        return [Incoming(str(s), str(d), str(k), str(m), None if b is None else bytes(b), bool(r), bool(h), str(st),
                         _local(at), acked is not None, None if verdict is None else str(verdict),
                         None if size is None else int(size), None if dropped is None else _local(dropped))
                for s, d, k, m, b, r, h, st, at, acked, verdict, size, dropped in rows]

    def incoming(self, sender: str, document_id: str, kind: str) -> Incoming | None:
        rows = self._incoming_rows("i.sender = ? AND i.document_id = ? AND i.kind = ?", (sender, document_id, kind))
        return rows[0] if rows else None

    def mark_incoming(self, sender: str, document_id: str, kind: str, *, receipt_sent: bool | None = None,
                      handed: bool | None = None, state: str | None = None) -> None:
        with self._file.transaction() as db:
            db.execute(
                "UPDATE incoming SET receipt_sent = COALESCE(?, receipt_sent), handed = COALESCE(?, handed), "
                "state = COALESCE(?, state) WHERE sender = ? AND document_id = ? AND kind = ?",
                (receipt_sent, handed, state, sender, document_id, kind),
            )

    def receipt_sent(self, sender: str, document_id: str, kind: str) -> bool:
        rows = self._file.query("SELECT receipt_sent FROM incoming WHERE sender = ? AND document_id = ? AND kind = ?",
                           (sender, document_id, kind))
        return bool(rows and rows[0][0])

    def claim_handover(self, sender: str, document_id: str, kind: str) -> bool:
        with self._file.transaction() as db:
            cursor = db.execute("UPDATE incoming SET handed = 1 WHERE sender = ? AND document_id = ? AND kind = ? AND handed = 0",
                                (sender, document_id, kind))
            return cursor.rowcount == 1

    def unhanded(self) -> list[Incoming]:
        return self._incoming_rows("i.handed = 0", ())

    def unacknowledged(self) -> list[Incoming]:
        return self._incoming_rows("i.acked_at IS NULL", ())

    def acknowledge(self, sender: str, document_id: str, kind: str) -> bool:
        with self._file.transaction() as db:
            cursor = db.execute("UPDATE incoming SET acked_at = ?, handed = 1 WHERE sender = ? AND document_id = ? "
                                "AND kind = ? AND acked_at IS NULL", (_now(), sender, document_id, kind))
            return cursor.rowcount == 1

    def received(self, *, state: str | None = None, sender: str | None = None, since: dt.datetime | None = None,
                 unacknowledged: bool | None = None, limit: int | None = None) -> list[Incoming]:
        where, args = ["1"], list[object]()
        if state is not None:
            where.append("i.state = ?")
            args.append(state)
        if sender is not None:
            where.append("i.sender = ?")
            args.append(sender)
        if since is not None:
            if since.tzinfo is None:
                raise UsageError("since must be an aware datetime (e.g. in VIETNAM_TZ)")
            where.append("i.received_at >= ?")
            args.append(since.astimezone(dt.UTC).isoformat())
        if unacknowledged is not None:
            where.append("i.acked_at IS NULL" if unacknowledged else "i.acked_at IS NOT NULL")
        return self._incoming_rows(" AND ".join(where), args, limit)

    def record_answer(self, sender: str, document_id: str, kind: str, code: StatusCode, note: str | None,
                      staff: str | None) -> None:
        with self._file.transaction() as db:
            db.execute("INSERT INTO answers (sender, document_id, kind, code, note, staff, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (sender, document_id, kind, code.value, note, staff, _now()))
            db.execute("UPDATE incoming SET state = ? WHERE sender = ? AND document_id = ? AND kind = ?",
                       (code.value, sender, document_id, kind))

    def history(self, document_id: str, agency: str | None = None) -> list[HistoryEvent]:
        sent = self._file.query(
            "SELECT recipient, event, state, note, applied, at FROM history WHERE document_id = ? "
            "AND (? IS NULL OR recipient = ?) ORDER BY id", (document_id, agency, agency))
        answered = self._file.query(
            "SELECT sender, code, note, staff, at FROM answers WHERE document_id = ? "
            "AND (? IS NULL OR sender = ?) ORDER BY id", (document_id, agency, agency))
        return ([HistoryEvent(document_id, str(a), str(e), str(st), _opt(n), None, bool(ok), _local(at))
                 for a, e, st, n, ok, at in sent]
                + [HistoryEvent(document_id, str(a), str(code), str(code), _opt(n), _opt(staff), True, _local(at))
                   for a, code, n, staff, at in answered])

    def drop_bodies(self, acknowledged_before: dt.datetime) -> DroppedBodies:
        if acknowledged_before.tzinfo is None:
            raise UsageError("acknowledged_before must be an aware datetime (e.g. in VIETNAM_TZ)")
        before = acknowledged_before.astimezone(dt.UTC).isoformat()
        now = _now()
        with self._file.transaction() as db:
            # Set-based (NOT IN builds one index): the bodies every outbox row, every sent document
            # (a bulk run's, kept for resend) and every received item retention does not take still need. acked_at < ? is false for a NULL acked_at.
            rows = db.execute(
                "SELECT i.sender, i.document_id, i.kind, i.digest, length(b.body) FROM incoming i JOIN bodies b USING (digest) "
                "WHERE i.acked_at < ? AND i.handed = 1 AND i.digest NOT IN ("
                "SELECT digest FROM outbox UNION SELECT digest FROM document_bodies UNION "
                "SELECT body_digest FROM deliveries WHERE body_digest IS NOT NULL UNION "
                "SELECT digest FROM incoming WHERE acked_at IS NULL OR handed = 0 OR acked_at >= ?) ORDER BY i.rowid",
                (before, before)).fetchall()
            sizes = {str(digest): int(size) for _, _, _, digest, size in rows}
            db.executemany("UPDATE incoming SET size = COALESCE(size, ?), dropped_at = ? "
                           "WHERE sender = ? AND document_id = ? AND kind = ?",
                           [(size, now, s, d, k) for s, d, k, _, size in rows])
            db.executemany("DELETE FROM bodies WHERE digest = ?", [(digest,) for digest in sizes])
        return DroppedBodies(tuple((str(s), str(d), str(k)) for s, d, k, _, _ in rows), len(sizes), sum(sizes.values()))

    def close(self) -> None:
        self._file.close()
