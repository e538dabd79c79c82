"""One agency's DMS on the exchange: register what arrives, answer it, relay directives, collect reports.

The whole integration with vbdt is this module. The work on each registered document is a small
state machine kept in the DMS's own book (:mod:`register`), so that it resumes after a restart
from the book alone, answering by id (``client.item(sender, document_id)``):

- every document is registered, then acknowledged to vbdt, then accepted (03);
- a directive from the superior agency, at an agency with subordinates (a district): assigned (04),
  in processing (05), relayed to the subordinates (:meth:`vbdt.AgencyClient.relay`), and completed
  (06) once every subordinate has reported;
- the same at an agency without subordinates (a commune): assigned, in processing, a report sent
  back (a document whose ResponseFor names what it answers), completed;
- a report from a subordinate: completed (06) at once, and the directive it answers checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from register import Entry, Register

import vbdt
from vbdt.trust.samplepdf import make_pdf

log = logging.getLogger("dms")

CLERK = vbdt.StaffInfo(department="Văn phòng", staff="Văn thư")
LEADER = vbdt.StaffInfo(department="Lãnh đạo", staff="Phó Chủ tịch")


class Crash(Exception):
    """Raised by a DMS told to die between its own commit and the acknowledgement (a power cut)."""


class Dms:
    """The DMS of one agency: its vbdt client and its book."""

    def __init__(self, client: vbdt.AgencyClient, register: Register, *, crash_before_ack: str | None = None) -> None:
        self.client = client
        self.register = register
        self.crash_before_ack = crash_before_ack
        """A kind of document (``report``...): die after registering the first one, before acknowledging it."""
        self.me = client.organ_id
        parent = client.directory.parent(self.me)
        self.parent = str(parent.organ_id) if parent is not None else None
        self.children = sorted(str(a.organ_id) for a in client.directory.select(f"{self.me}/*"))
        self.redelivered: list[str] = []
        """DocumentIds handed over again after a restart (registered already, or not)."""

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Finish what the book says is unfinished, then take what arrives, until cancelled."""
        for entry in self.register.entries():
            await self.work(entry)
        async for item in self.client.inbox():
            if item.kind == "recall":  # the issuer takes a document back: agree, nothing to register
                async with item:
                    await item.agree(staff=CLERK)
                continue
            entry = self.take(item)
            if self.crash_before_ack == entry.kind:
                self.crash_before_ack = None
                raise Crash(f"{self.me} died after registering {entry.document_id}, before acknowledging it")
            await item.ack()  # committed in the book: never handed again
            await self.work(entry)

    def take(self, item: vbdt.InboxItem) -> Entry:
        """Register an item (once, whatever the redeliveries) and return its row."""
        if item.redelivered:
            self.redelivered.append(item.document_id)
        document = item.document
        answers = next((r.document_id for r in document.response_for if r.document_id), None)
        pdfs = item.verdict.pdfs if item.verdict is not None else {}
        seals = sorted({str(s["organ_id"]) for p in pdfs.values() for s in p.signatures
                        if s["role"] == "agency" and s["organ_id"]})
        if answers is not None and self.register.relayed_as(answers) is not None:
            kind = "report"
        elif item.sender == self.parent:
            kind = "directive"
        else:
            kind = "letter"
        self.register.enter(sender=item.sender, document_id=item.document_id, code=str(document.code),
                            subject=document.subject, kind=kind, answers=answers,
                            pdf_ok=all(p.original_valid for p in pdfs.values()), sealed_by=",".join(seals),
                            received_at=item.received_at or dt.datetime.now(vbdt.VIETNAM_TZ))
        entry = self.register.get(item.sender, item.document_id)
        assert entry is not None
        return entry

    # -- the work on one document --------------------------------------------------------------
    async def work(self, entry: Entry) -> None:
        """Take a registered document as far as it can go now (every step recorded in the book)."""
        item = self.client.item(entry.sender, entry.document_id)  # answerable by id, after a restart too
        state = entry.state
        if state == "registered":
            await item.accept(staff=CLERK)
            state = self._step(entry, "03")
        if entry.kind == "report":
            if state == "03":
                await item.complete("Đã tiếp nhận báo cáo", staff=CLERK)
                self._step(entry, "06")
            original = self.register.relayed_as(entry.answers or "")
            if original is not None:
                await self.work(original)
            return
        if entry.kind != "directive":
            return
        if state == "03":
            await item.assign("Giao phòng chuyên môn chủ trì", staff=LEADER)
            state = self._step(entry, "04", handler=LEADER.staff)
        if state == "04":
            await item.processing("Đang triển khai", staff=CLERK)
            state = self._step(entry, "05")
        if state == "05" and self.children:
            await self._relay(entry, item)
        elif state == "05":
            await self._report(entry, item)
            await item.complete("Đã báo cáo kết quả", staff=CLERK)
            self._step(entry, "06", note="báo cáo đã gửi")
        elif state == "relayed":
            await self._complete_when_reported(entry, item)

    async def _relay(self, entry: Entry, item: vbdt.InboxItem) -> None:
        # The number is the book's: relaying again after a crash sends the same document, a no-op.
        sent = await self.client.relay(item, to=self.children, code=vbdt.Code(number=str(entry.number), notation="UBND-VP"),
                                       signer=vbdt.SignerInfo(competence="TL. CHỦ TỊCH", position="Chánh Văn phòng"))
        self._step(entry, "relayed", relayed_as=sent.document_id)
        log.info("%s relayed %s as %s to %s", self.me, entry.document_id, sent.document_id, ", ".join(sent.recipients))

    async def _complete_when_reported(self, entry: Entry, item: vbdt.InboxItem) -> None:
        reported = {r.sender for r in self.register.answering(entry.relayed_as or "")}
        if reported >= set(self.children):
            await item.complete(f"Đã tổng hợp báo cáo của {len(reported)} đơn vị", staff=LEADER)
            self._step(entry, "06", note=f"{len(reported)} báo cáo")

    async def _report(self, entry: Entry, item: vbdt.InboxItem) -> None:
        original = item.document
        report = vbdt.Document(
            sender=self.client.me,
            recipients=[self.client.directory.organization(entry.sender)],
            code=vbdt.Code(number=str(entry.number), notation="BC-UBND"),
            promulgation=vbdt.PromulgationInfo(date=dt.datetime.now(vbdt.VIETNAM_TZ).date()),
            document_type=vbdt.DocumentType(type=1, type_name="Báo cáo"),
            subject=f"Báo cáo kết quả thực hiện văn bản số {original.code}",
            signer=vbdt.SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch"),
            response_for=[vbdt.ResponseFor(organ_id=original.sender.organ_id, code=original.code,
                                           promulgation_date=original.promulgation.date,
                                           document_id=original.document_id)],
            attachments=[vbdt.Attachment.from_bytes(f"BC-{entry.number}.pdf", make_pdf(["BAO CAO", f"So: {entry.number}/BC-UBND"]),
                                                    content_id="cid:1")],
        )
        await self.client.send(report)  # the same report again after a crash is a no-op

    def _step(self, entry: Entry, state: str, *, handler: str | None = None, relayed_as: str | None = None,
              note: str | None = None) -> str:
        self.register.advance(entry.sender, entry.document_id, state, handler=handler, relayed_as=relayed_as, note=note)
        return state


@contextlib.asynccontextmanager
async def open_client(organ_id: str, *, url: str, keys: Path, directory: vbdt.Directory, ledger: Path,
                      register: Register | None = None) -> AsyncIterator[vbdt.AgencyClient]:
    """An agency's vbdt client: its key and person, the trust anchor, its broker URL and ledger; what
    the exchange refuses on its behalf goes into ``register``."""
    key = vbdt.SigningKey.from_pem(keys / f"{organ_id}.key.pem", keys / f"{organ_id}.cert.pem")
    person = vbdt.SigningKey.from_pem(keys / "signer.key.pem", keys / "signer.cert.pem")

    def refused(rejection: vbdt.MessageRejected, publisher: str | None) -> None:
        if register is not None:
            register.refuse(publisher, rejection.stage, rejection.reason)

    async with vbdt.AgencyClient(organ_id, transport=await vbdt.connect(url), ledger=vbdt.SqliteLedger(ledger), key=key,
                                 trust=keys / "ca.pem", directory=directory, person=person, seal=key,
                                 on_refused=refused) as client:
        yield client
