"""Status messages this agency signs and sends, and the received items the application answers.

:class:`Reporter` signs a status message (01-06, 02 with its reason, 13, 15, 16) and hands it to
the outbox; :class:`InboxItem` is what the application gets from the inbox, with one method per
answer the standard allows, the :class:`Verdict` computed at receipt, and :meth:`InboxItem.ack`.

Hand-over is at least once: an item stays the application's to take until it is acknowledged
(``await item.ack()`` after the application's own commit, or ``async with item:``). An item handed
over and never acknowledged is handed again after a restart, with :attr:`InboxItem.redelivered`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field
from types import TracebackType

from vbdt.edxml.codes import BusinessDocType, StatusCode
from vbdt.edxml.model import VIETNAM_TZ, Document, Organization, ResponseFor, StaffInfo, StatusMessage
from vbdt.errors import BodyDropped, UsageError
from vbdt.exchange.ledger import HistoryEvent, Incoming, Ledger, OutboxEntry
from vbdt.exchange.outbox import Outbox, message_id
from vbdt.exchange.workers import Workers
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import Unpacked


@dataclass(frozen=True)
class PdfVerdict:
    """What the PDF verifier said about one PDF attachment at receipt."""

    original_valid: bool
    reasons: list[str]
    signatures: list[dict[str, str | None]]
    """Per signature: ``role`` (person, agency, timestamp), ``signer``, ``organ_id``, ``signing_time`` (ISO 8601)."""


@dataclass(frozen=True)
class Verdict:
    """The verification verdict computed when a package was received, stored with it: a restart
    (or a certificate that has since expired) does not mean verifying again."""

    agency: str
    """The OrganId the envelope's certificate is bound to (= From)."""
    signer: str
    """The certificate subject (RFC 4514)."""
    chain: list[str]
    """Subjects from the signer to the trust anchor."""
    binding: str
    """``uid`` or ``pinned``."""
    signing_time: dt.datetime | None
    warnings: list[str]
    pdfs: dict[str, PdfVerdict] = field(default_factory=dict)
    """Attachment name → verdict (empty when PDFs were not checked)."""

    @classmethod
    def of(cls, unpacked: Unpacked) -> Verdict:
        """The verdict of a package that unpacked."""
        v = unpacked.verified
        pdfs = {
            name: PdfVerdict(p.original_valid, list(p.reasons), [
                {"role": s.role, "signer": s.signer, "organ_id": s.organ_id,
                 "signing_time": s.signing_time.isoformat() if s.signing_time else None} for s in p.signatures])
            for name, p in unpacked.pdfs.items()
        }
        return cls(v.agency, v.signer, list(v.chain), v.binding, v.signing_time, list(v.warnings), pdfs)

    def to_json(self) -> str:
        """Stable JSON, as the ledger stores it."""
        data = asdict(self)
        data["signing_time"] = self.signing_time.isoformat() if self.signing_time else None
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        pdfs = {name: PdfVerdict(**p) for name, p in data.pop("pdfs").items()}
        at = data.pop("signing_time")
        return cls(**data, signing_time=dt.datetime.fromisoformat(at) if at else None, pdfs=pdfs)

__all__ = ["KIND_OF", "InboxItem", "PdfVerdict", "Reporter", "Verdict", "body_of"]


def body_of(stored: Incoming) -> bytes:
    """The bytes of a stored item; :class:`~vbdt.errors.BodyDropped` when retention dropped them."""
    if stored.body is None:
        raise BodyDropped(stored.sender, stored.document_id, stored.kind,
                          None if stored.dropped_at is None else f"{stored.dropped_at:%d/%m/%Y}")
    return stored.body

# The last signed timestamp per (me, recipient, DocumentId, code) in this process: edXML timestamps
# have whole seconds and receivers know a receipt by them, so two answers with the same code within
# one second get consecutive seconds instead of the same one.
_STAMPS: dict[tuple[str, str, str, str], dt.datetime] = {}
_STAMPS_LOCK = threading.Lock()


def signing_stamp(key: tuple[str, str, str, str]) -> dt.datetime:
    """Now to the second (Vietnam time), later than any timestamp this process signed for ``key``
    (this agency, the recipient, the DocumentId, the status code)."""
    now = dt.datetime.now(VIETNAM_TZ).replace(microsecond=0)
    with _STAMPS_LOCK:
        last = _STAMPS.get(key)
        stamp = last + dt.timedelta(seconds=1) if last is not None and now <= last else now
        _STAMPS[key] = stamp
        if len(_STAMPS) > 4096:  # only recent ones matter: forget those the clock has passed
            for old in [k for k, v in _STAMPS.items() if v < now]:
                del _STAMPS[old]
    return stamp


def claim_stamp(key: tuple[str, str, str, str], stamp: dt.datetime) -> bool:
    """Record ``stamp``, signed for ``key`` in a worker process, as this process's last one; False
    (nothing recorded) when this process already signed one as late for ``key``: sign again then."""
    with _STAMPS_LOCK:
        last = _STAMPS.get(key)
        if last is not None and stamp <= last:
            return False
        _STAMPS[key] = stamp
    return True


class _Unique:
    """A random token per process (drawn again in a forked child) and a counter."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.token = secrets.token_hex(8)
        self.counter = itertools.count()


_UNIQUE = _Unique()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_UNIQUE.reseed)


def _unique_suffix() -> str:
    """Never the same twice in this run of this process, nor in another process (random token)."""
    return f"{_UNIQUE.token}.{next(_UNIQUE.counter)}"


KIND_OF = {
    BusinessDocType.NEW: "document",
    BusinessDocType.REVOKE: "revoke",
    BusinessDocType.UPDATE: "update",
    BusinessDocType.REPLACE: "replace",
}
"""BussinessDocType → the kind of an :class:`InboxItem`."""


class Reporter:
    """Signs status messages as this agency and sends them through the outbox."""

    def __init__(self, me: Organization, key: SigningKey, outbox: Outbox, ledger: Ledger, staff: StaffInfo | None = None,
                 workers: Workers | None = None) -> None:
        self.me = me
        self.key = key
        self.outbox = outbox
        self.ledger = ledger
        self.staff = staff
        self.workers = workers or Workers(1)
        """Where status messages are signed (a thread by default)."""

    async def report(self, to: str, about: ResponseFor, code: StatusCode, description: str | None = None, *,
                     staff: StaffInfo | None = None) -> None:
        """Sign a status ``code`` about a document and send it to ``to`` (in the outbox first).
        ``staff`` names who answers (default: the client's)."""
        me = str(self.me.organ_id)
        document_id = str(about.document_id)
        now = signing_stamp((me, to, document_id, code.value))
        status = StatusMessage(sender=self.me, response_for=about, status_code=code, description=description,
                               timestamp=now, staff_info=staff or self.staff)
        body = await self.workers.sign(self.key, status)
        entry = self.entry(to, document_id, code, body)
        await self.outbox.record_and_publish([entry], document_id, [to])

    def entry(self, to: str, document_id: str, code: StatusCode, body: bytes) -> OutboxEntry:
        """The outbox entry of a signed status ``code`` about ``document_id`` to ``to``."""
        # unique whatever the clock says: microseconds plus this process's random token and a counter
        # (the outbox refuses a reused id); no system call per message on the event loop
        unique = f"{dt.datetime.now(dt.UTC).isoformat()}|{_unique_suffix()}"
        me = str(self.me.organ_id)
        return OutboxEntry(message_id("status", document_id, me, code.value, to, unique), document_id, to, "status", body)

    async def answer(self, item: InboxItem, code: StatusCode, description: str | None = None, *,
                     about_original: bool = False, staff: StaffInfo | None = None) -> None:
        """Answer a received item to its sender and remember what was reported."""
        document_id = (item.concerns or item.document_id) if about_original else item.document_id
        owner = item.sender
        if isinstance(item.package, Document):
            package = item.package
            about = ResponseFor(organ_id=owner, code=package.code, promulgation_date=package.promulgation.date,
                                document_id=document_id)
        else:
            about = ResponseFor(organ_id=owner, document_id=document_id)
        await self.report(owner, about, code, description, staff=staff)
        who = staff or self.staff
        self.ledger.record_answer(item.sender, item.document_id, item.stored_as, code, description,
                                  who.staff if who else None)


class InboxItem:
    """A received document (or a recall request) handed to the application, with its answers."""

    def __init__(self, answers: Reporter, package: Document | StatusMessage, sender: str, document_id: str, kind: str,
                 stored_as: str = "document", *, verdict: Verdict | None = None, redelivered: bool = False,
                 received_at: dt.datetime | None = None) -> None:
        self._answers = answers
        self.verdict = verdict
        """The verification verdict computed at receipt (None only for items stored by an older vbdt)."""
        self.redelivered = redelivered
        """Handed over before, never acknowledged (the application may have it already: check by id)."""
        self.received_at = received_at
        """When it was stored (Vietnam time)."""
        self.stored_as = stored_as
        """The ledger's key for it (``document``, or ``recall:<time>`` for a recall request)."""
        self.package = package
        """What was signed."""
        self.sender = sender
        self.document_id = document_id
        """The document's DocumentId (for a recall request: the document to recall)."""
        self.kind = kind
        """``document``, ``update``, ``replace``, ``revoke`` or ``recall``."""

    @classmethod
    def of(cls, answers: Reporter, package: Document | StatusMessage, sender: str, document_id: str,
           stored_as: str, *, verdict: Verdict | None = None, redelivered: bool = False,
           received_at: dt.datetime | None = None) -> InboxItem:
        """The item for a package, its kind read from the package."""
        kind = KIND_OF[package.business.doc_type] if isinstance(package, Document) else "recall"
        return cls(answers, package, sender, document_id, kind, stored_as, verdict=verdict, redelivered=redelivered,
                   received_at=received_at)

    @classmethod
    def stored(cls, answers: Reporter, package: Document | StatusMessage, stored: Incoming) -> InboxItem:
        """The item for a package the ledger holds."""
        verdict = Verdict.from_json(stored.verdict) if stored.verdict else None
        return cls.of(answers, package, stored.sender, stored.document_id, stored.kind, verdict=verdict,
                      redelivered=stored.handed and not stored.acknowledged, received_at=stored.received_at)

    async def ack(self) -> None:
        """The application has committed this item to its own records: it is never handed again."""
        await asyncio.to_thread(self._answers.ledger.acknowledge, self.sender, self.document_id, self.stored_as)

    async def __aenter__(self) -> InboxItem:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Acknowledge when the block ends without an exception; otherwise it is handed again later."""
        if kind is None:
            await self.ack()

    def history(self) -> list[HistoryEvent]:
        """Every answer this agency sent about the item (code, note, staff, time)."""
        return self._answers.ledger.history(self.document_id, self.sender)

    @property
    def body(self) -> bytes:
        """The package exactly as received (signed bytes); :class:`~vbdt.errors.BodyDropped` once
        retention dropped it (long after the item was acknowledged)."""
        stored = self._answers.ledger.incoming(self.sender, self.document_id, self.stored_as)
        if stored is None:
            raise UsageError(f"{self.document_id} from {self.sender} is no longer in the ledger")
        return body_of(stored)

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

    async def accept(self, *, staff: StaffInfo | None = None) -> None:
        """03: registered in the incoming-document book."""
        await self._answers.answer(self, StatusCode.ACCEPTED, staff=staff)

    async def assign(self, description: str | None = None, *, staff: StaffInfo | None = None) -> None:
        """04: a leader assigned who handles it (``staff``: the person assigned)."""
        await self._answers.answer(self, StatusCode.ASSIGNED, description, staff=staff)

    async def processing(self, description: str | None = None, *, staff: StaffInfo | None = None) -> None:
        """05: being handled."""
        await self._answers.answer(self, StatusCode.PROCESSING, description, staff=staff)

    async def complete(self, description: str | None = None, *, staff: StaffInfo | None = None) -> None:
        """06: handled, with a note."""
        await self._answers.answer(self, StatusCode.COMPLETED, description, staff=staff)

    async def reject(self, reason: str, *, staff: StaffInfo | None = None) -> None:
        """02: returned to the sender, with the reason."""
        if not reason.strip():
            raise UsageError("a rejection needs a reason")
        await self._answers.answer(self, StatusCode.REJECTED, reason, staff=staff)

    async def agree(self, *, staff: StaffInfo | None = None) -> None:
        """15: agree to the recall, update or replacement (of :attr:`concerns`)."""
        await self._answers.answer(self, StatusCode.CHANGE_ACCEPTED, about_original=True, staff=staff)

    async def refuse(self, reason: str, *, staff: StaffInfo | None = None) -> None:
        """16: refuse the recall, update or replacement, with the reason."""
        await self._answers.answer(self, StatusCode.CHANGE_REFUSED, reason, about_original=True, staff=staff)
