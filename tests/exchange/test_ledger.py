"""The SQLite ledger: outbox before publish, receipts once, overdue, survives reopening."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import InvalidTransition, LedgerError, UsageError
from vbdt.exchange.ledger import Arrival, FailedMessage, OutboxEntry, SentDocument, SqliteLedger
from vbdt.exchange.receipts import DeliveryState

DOC = "000.00.00.H14,2026/11/23,05/CT-UBND"
R1, R2 = "000.00.01.H14", "000.00.02.H14"


def _send(ledger: SqliteLedger, promulgated: dt.date = dt.date(2026, 11, 23), due: dt.date | None = None) -> list[OutboxEntry]:
    body = b"<edXML/>" * 100
    entries = [OutboxEntry(f"{DOC}>{r}", DOC, r, "document", body) for r in (R1, R2)]
    ledger.record_send(SentDocument(DOC, "000.00.00.H14", "05/CT-UBND", "Chỉ thị", promulgated, due), entries)
    return entries


def test_outbox_survives_a_restart_and_stores_one_body(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.close()
    again = SqliteLedger(tmp_path / "l.db")
    pending = again.pending()
    assert [e.recipient for e in pending] == [R1, R2] and pending[0].body == b"<edXML/>" * 100
    assert again._file.query("SELECT count(*) FROM bodies")[0][0] == 1
    assert {d.state for d in again.deliveries(DOC)} == {DeliveryState.QUEUED}
    again.published([f"{DOC}>{R1}"])
    again.unroutable(f"{DOC}>{R2}", "no inbox")
    assert again.pending() == []
    states = {d.recipient: (d.state, d.reason) for d in again.deliveries(DOC)}
    assert states == {R1: (DeliveryState.SENT, None), R2: (DeliveryState.UNDELIVERABLE, "no inbox")}


def test_receipts_apply_once_and_stale_ones_are_history(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    assert ledger.apply(DOC, R1, StatusCode.ACCEPTED, receipt_key="k1") is DeliveryState.ACCEPTED
    assert ledger.apply(DOC, R1, StatusCode.ACCEPTED, receipt_key="k1") is None  # the same receipt again
    assert ledger.apply(DOC, R1, StatusCode.ARRIVED, receipt_key="k0") is None  # overtaken: stale
    assert ledger.deliveries(DOC)[0].state is DeliveryState.ACCEPTED
    history = ledger._file.query("SELECT event, applied FROM history WHERE recipient = ? ORDER BY id", (R1,))
    assert history[-1] == ("01", 0)
    with pytest.raises(InvalidTransition, match="no delivery"):
        ledger.apply("other", R1, StatusCode.ARRIVED, receipt_key="k9")


def test_state_counts_say_what_the_deliveries_say_without_a_row_each(tmp_path: Path) -> None:
    from vbdt.exchange.ledger import Ledger

    ledger = SqliteLedger(tmp_path / "l.db")
    assert ledger.state_counts(DOC) == {}
    _send(ledger)
    assert ledger.state_counts(DOC) == {DeliveryState.QUEUED: 2}
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    ledger.apply(DOC, R1, StatusCode.ACCEPTED, receipt_key="k1")
    counted = ledger.state_counts(DOC)
    assert counted == {DeliveryState.ACCEPTED: 1, DeliveryState.SENT: 1}
    assert counted == Ledger.state_counts(ledger, DOC)  # the generic count, from deliveries()
    assert ledger.state_counts("no such document") == {}


def _sent_at(ledger: SqliteLedger, when: dt.datetime) -> None:
    """Back-date the sending of every delivery (the ledger records the real clock)."""
    with ledger._file.transaction() as db:
        db.execute("UPDATE deliveries SET sent_at = ?", (when.astimezone(dt.UTC).isoformat(),))


def test_overdue_counts_working_days_from_when_it_was_sent(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    # promulgated long before: the deadline counts from the sending, not from the document's date
    _send(ledger, promulgated=dt.date(2025, 12, 1), due=dt.date(2026, 2, 24))
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    ledger.apply(DOC, R1, StatusCode.ACCEPTED, receipt_key="a")
    _sent_at(ledger, dt.datetime(2026, 2, 13, 21, 0, tzinfo=VIETNAM_TZ))  # Friday evening before Tết (16-20 Feb)
    # all through the Tết week nobody is late: the arrival is due at the end of Monday 23 Feb
    assert ledger.overdue(dt.datetime(2026, 2, 20, 16, 0, tzinfo=VIETNAM_TZ)) == []
    assert ledger.overdue(dt.datetime(2026, 2, 23, 23, 0, tzinfo=VIETNAM_TZ)) == []
    (late,) = ledger.overdue(dt.datetime(2026, 2, 24, 9, 0, tzinfo=VIETNAM_TZ))
    assert (late.recipient, late.state, late.late_by) == (R2, DeliveryState.SENT, 1)
    assert late.deadline == dt.datetime(2026, 2, 23, 23, 59, 59, tzinfo=VIETNAM_TZ) and late.why.startswith("chưa xác nhận")
    # the due date passed (Tuesday 24): R1 accepted but not completed; R2 still reported once, for its arrival
    after_due = ledger.overdue(dt.datetime(2026, 2, 27, 9, 0, tzinfo=VIETNAM_TZ))
    assert {(o.recipient, o.why.split()[0], o.late_by) for o in after_due} == {(R2, "chưa", 4), (R1, "quá", 3)}
    ledger.apply(DOC, R1, StatusCode.COMPLETED, receipt_key="b")
    assert {o.recipient for o in ledger.overdue(dt.datetime(2026, 2, 27, 9, 0, tzinfo=VIETNAM_TZ))} == {R2}


def test_overdue_counts_from_the_new_attempt_after_a_resend(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    _sent_at(ledger, dt.datetime(2026, 3, 2, 9, 0, tzinfo=VIETNAM_TZ))  # Monday
    ledger.apply(DOC, R1, StatusCode.REJECTED, receipt_key="r", note="x")
    ledger.resend(DOC, [R1], _attempt_id)  # today: the clock starts again for R1
    now = dt.datetime(2026, 3, 5, 9, 0, tzinfo=VIETNAM_TZ)
    assert {o.recipient for o in ledger.overdue(now)} == {R2}
    sent = {d.recipient: d.sent_at for d in ledger.deliveries(DOC)}
    assert sent[R2] == dt.datetime(2026, 3, 2, 9, 0, tzinfo=VIETNAM_TZ) and sent[R1] is not None
    assert abs(sent[R1] - dt.datetime.now(VIETNAM_TZ)) < dt.timedelta(minutes=5)


def test_incoming_is_kept_once(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    assert ledger.store_incoming("A", "D", "document", "m", b"<x/>", "d1") is Arrival.NEW
    assert ledger.store_incoming("A", "D", "document", "m", b"<x/>", "d1") is Arrival.REDELIVERY
    # other content under the same (sender, DocumentId): a conflict, and the first one is kept
    assert ledger.store_incoming("A", "D", "document", "m2", b"<y/>", "d2") is Arrival.CONFLICT
    assert ledger.incoming("A", "D", "document").body == b"<x/>"  # type: ignore[union-attr]
    assert [i.document_id for i in ledger.unhanded()] == ["D"]
    ledger.mark_incoming("A", "D", "document", handed=True, receipt_sent=True, state="01")
    stored = ledger.incoming("A", "D", "document")
    assert stored is not None and stored.handed and stored.receipt_sent and stored.state == "01"
    assert ledger.unhanded() == []


def test_unusable_path_is_a_ledger_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerError):
        SqliteLedger(tmp_path / "file" / "l.db")
    (tmp_path / "garbage.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(LedgerError):
        SqliteLedger(tmp_path / "garbage.db")


def test_a_refused_message_is_failed_with_its_reason_and_never_retried(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.failed(f"{DOC}>{R1}", "over the maximum message size")
    ledger.record_outgoing([OutboxEntry("s1", DOC, R2, "status", b"<status/>")])
    ledger.failed("s1", "message id too long")
    assert [e.message_id for e in ledger.pending()] == [f"{DOC}>{R2}"]  # the refused ones are not retried
    states = {d.recipient: (d.state, d.reason) for d in ledger.deliveries(DOC)}
    assert states[R1] == (DeliveryState.FAILED, "over the maximum message size")
    assert states[R2] == (DeliveryState.QUEUED, None)
    assert ledger.failures() == [FailedMessage(f"{DOC}>{R1}", DOC, R1, "document", "over the maximum message size"),
                                 FailedMessage("s1", DOC, R2, "status", "message id too long")]
    # the failure survives a restart, and the other recipient is still published normally
    ledger.close()
    again = SqliteLedger(tmp_path / "l.db")
    again.published([f"{DOC}>{R2}"])
    assert again.pending() == [] and len(again.failures()) == 2
    assert {d.recipient: d.state for d in again.deliveries(DOC)} == {R1: DeliveryState.FAILED, R2: DeliveryState.SENT}


def test_the_sent_documents_content_digest_is_kept(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    ledger.record_send(SentDocument(DOC, "000.00.00.H14", "05/CT-UBND", "Chỉ thị", dt.date(2026, 11, 23), content_digest="abc"), [])
    assert ledger.document(DOC).content_digest == "abc"  # type: ignore[union-attr]


def test_a_ledger_of_the_first_release_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE documents (document_id TEXT PRIMARY KEY, sender TEXT NOT NULL, code TEXT NOT NULL, subject TEXT NOT NULL,"
        " promulgated TEXT NOT NULL, due_date TEXT, kind TEXT NOT NULL, replaces TEXT, created_at TEXT NOT NULL);"
        "CREATE TABLE bodies (digest TEXT PRIMARY KEY, body BLOB NOT NULL);"
        "CREATE TABLE outbox (message_id TEXT PRIMARY KEY, document_id TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,"
        " digest TEXT NOT NULL, created_at TEXT NOT NULL, published_at TEXT);"
        "CREATE TABLE incoming (sender TEXT NOT NULL, document_id TEXT NOT NULL, kind TEXT NOT NULL, message_id TEXT NOT NULL,"
        " digest TEXT NOT NULL, received_at TEXT NOT NULL, receipt_sent INTEGER NOT NULL DEFAULT 0,"
        " handed INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'received', PRIMARY KEY (sender, document_id, kind));"
        "INSERT INTO bodies VALUES ('x', X'3c782f3e');"
        "INSERT INTO incoming (sender, document_id, kind, message_id, digest, received_at) VALUES ('A', 'D', 'document', 'm', 'x', 'now');"
    )
    old.close()
    ledger = SqliteLedger(path)
    # a row stored before digests existed cannot be told apart: it counts as the same document
    assert ledger.store_incoming("A", "D", "document", "m", b"<x/>", "d") is Arrival.REDELIVERY
    _send(ledger)
    ledger.failed(f"{DOC}>{R1}", "too large")
    assert [f.recipient for f in ledger.failures()] == [R1]


def _attempt_id(recipient: str, attempt: int) -> str:
    return f"{DOC}>{recipient}#{attempt}"


def test_a_rejected_delivery_is_sent_again_as_a_new_attempt(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    ledger.apply(DOC, R1, StatusCode.REJECTED, receipt_key="r1", note="thiếu chữ ký")
    # only rejected (or undeliverable) deliveries: R2 is still open, nothing changes at all
    with pytest.raises(InvalidTransition, match="only a rejected"):
        ledger.resend(DOC, [R1, R2], _attempt_id)
    assert [e.message_id for e in ledger.pending()] == []
    (entry,) = ledger.resend(DOC, [R1], _attempt_id)
    assert entry.message_id == _attempt_id(R1, 2) and entry.body == b"<edXML/>" * 100  # the same signed bytes
    assert ledger._file.query("SELECT count(*) FROM bodies")[0][0] == 1
    first = {d.recipient: d for d in ledger.deliveries(DOC)}[R1]
    assert (first.state, first.attempt, first.reason) == (DeliveryState.QUEUED, 2, None)
    assert [e.message_id for e in ledger.pending()] == [entry.message_id]
    # the receipts of the new attempt apply (before: the 01 after a 02 was an InvalidTransition)
    ledger.published([entry.message_id])
    assert ledger.apply(DOC, R1, StatusCode.ARRIVED, receipt_key="a2") is DeliveryState.ARRIVED
    assert ledger.apply(DOC, R1, StatusCode.REJECTED, receipt_key="r1") is None  # the old 02 again: seen
    assert {d.recipient: d.state for d in ledger.deliveries(DOC)}[R1] is DeliveryState.ARRIVED
    events = [(h.event, h.state, h.note) for h in ledger.history(DOC, R1)]
    assert ("resent", "queued", "attempt 2") in events
    # once arrived, it is not resent again; a third attempt needs a new rejection
    with pytest.raises(InvalidTransition):
        ledger.resend(DOC, [R1], _attempt_id)
    ledger.apply(DOC, R1, StatusCode.REJECTED, receipt_key="r2", note="again")
    (third,) = ledger.resend(DOC, [R1], _attempt_id)
    assert third.message_id == _attempt_id(R1, 3)
    with pytest.raises(InvalidTransition, match="no delivery"):
        ledger.resend(DOC, ["000.00.09.H14"], _attempt_id)


def test_the_outbox_as_an_operator_sees_it(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger)
    ledger.published([f"{DOC}>{R1}"])
    ledger.failed(f"{DOC}>{R2}", "too large")
    assert ledger.outbox_records() == []
    records = ledger.outbox_records(pending_only=False)
    assert [(r.recipient, r.size, r.pending, r.failure) for r in records] == [(R1, 800, False, None), (R2, 800, False, "too large")]
    assert records[0].published_at is not None and records[1].failed_at is not None
    assert records[0].created_at.utcoffset() == dt.timedelta(hours=7)


def test_a_document_rejected_here_is_taken_again_when_its_sender_resends_it(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    assert ledger.store_incoming("A", "D", "document", "m1", b"<x/>", "d1") is Arrival.NEW
    ledger.mark_incoming("A", "D", "document", receipt_sent=True, handed=True, state="01")
    ledger.acknowledge("A", "D", "document")
    # republished (same message id) or the same attempt again: a redelivery, whatever was answered
    ledger.record_answer("A", "D", "document", StatusCode.REJECTED, "thiếu chữ ký", "Văn thư")
    assert ledger.store_incoming("A", "D", "document", "m1", b"<x/>", "d1") is Arrival.REDELIVERY
    # a new attempt (new message id) of what was rejected: open again, to answer 01 and hand over
    assert ledger.store_incoming("A", "D", "document", "m2", b"<x/>", "d1") is Arrival.RESENT
    stored = ledger.incoming("A", "D", "document")
    assert stored is not None and (stored.state, stored.receipt_sent, stored.handed, stored.acknowledged) == ("received", False, False, False)
    assert [i.document_id for i in ledger.unhanded()] == ["D"]
    # other content is still a conflict, and a document not rejected is not reopened by a new id
    assert ledger.store_incoming("A", "D", "document", "m3", b"<y/>", "d2") is Arrival.CONFLICT
    ledger.record_answer("A", "D", "document", StatusCode.ACCEPTED, None, None)
    assert ledger.store_incoming("A", "D", "document", "m4", b"<x/>", "d1") is Arrival.REDELIVERY


# -- retention: the bodies of acknowledged items go, their records stay ------------------------------------------

def _later() -> dt.datetime:
    """A cut-off after every acknowledgement made so far (nothing depends on the clock's pace)."""
    return dt.datetime.now(VIETNAM_TZ) + dt.timedelta(seconds=1)


def _received(ledger: SqliteLedger, sender: str, body: bytes, *, handed: bool = True, acked: bool = True) -> None:
    assert ledger.store_incoming(sender, DOC, "document", f"m-{sender}", body, f"d-{sender}", '{"agency": "x"}') is Arrival.NEW
    ledger.mark_incoming(sender, DOC, "document", receipt_sent=True, handed=handed, state="01")
    if acked:
        ledger.acknowledge(sender, DOC, "document")


def test_retention_drops_only_acknowledged_bodies_and_keeps_every_record(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _received(ledger, "A", b"<a/>" * 10)
    ledger.record_answer("A", DOC, "document", StatusCode.ACCEPTED, None, "Văn thư")
    _received(ledger, "B", b"<b/>", acked=False)  # handed, never acknowledged: handed again after a restart
    _received(ledger, "C", b"<c/>", handed=False, acked=False)  # stored, not handed yet (a crash in between)
    before = ledger.incoming("A", DOC, "document")
    assert before is not None and before.size == 40 and before.dropped_at is None

    # a cut-off before the acknowledgement takes nothing
    assert ledger.drop_bodies(dt.datetime.now(VIETNAM_TZ) - dt.timedelta(days=1)).bodies == 0
    dropped = ledger.drop_bodies(_later())
    assert (dropped.items, dropped.bodies, dropped.bytes) == ((("A", DOC, "document"),), 1, 40)
    after = ledger.incoming("A", DOC, "document")
    assert after is not None and after.body is None and after.size == 40 and after.dropped_at is not None
    assert (after.state, after.verdict, after.received_at, after.acknowledged) == ("03", before.verdict, before.received_at, True)
    assert [h.event for h in ledger.history(DOC, "A")] == ["03"]
    assert [i.sender for i in ledger.received()] == ["A", "B", "C"]  # listed still, body or not
    # what a restart hands over again keeps its bytes
    assert {i.sender: i.body for i in ledger.unacknowledged()} == {"B": b"<b/>", "C": b"<c/>"}
    assert [i.body for i in ledger.unhanded()] == [b"<c/>"]
    assert ledger.drop_bodies(_later()) == type(dropped)((), 0, 0)  # nothing left to drop
    with pytest.raises(UsageError):
        ledger.drop_bodies(dt.datetime(2026, 1, 1))  # naive: which zone?
    # the record survives a reopening, without its body
    ledger.close()
    reopened = SqliteLedger(tmp_path / "l.db").incoming("A", DOC, "document")
    assert reopened is not None and reopened.body is None and reopened.size == 40


def test_retention_keeps_a_body_another_row_still_needs(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    shared = b"<edXML>same bytes</edXML>"
    # the same bytes in the outbox (a message this agency sends): kept whatever the incoming rows say
    ledger.record_outgoing([OutboxEntry("out-1", DOC, "Z", "document", shared)])
    _received(ledger, "A", shared)
    assert ledger.drop_bodies(_later()).bodies == 0
    assert ledger.incoming("A", DOC, "document").body == shared  # type: ignore[union-attr]
    assert [e.body for e in ledger.pending()] == [shared]

    # two received items with one body: kept while one of them is not acknowledged, then dropped once
    other = b"<edXML>received twice</edXML>"
    _received(ledger, "B", other)
    _received(ledger, "C", other, acked=False)
    assert ledger.drop_bodies(_later()).bodies == 0
    assert ledger.incoming("B", DOC, "document").body == other  # type: ignore[union-attr]
    ledger.acknowledge("C", DOC, "document")
    dropped = ledger.drop_bodies(_later())
    assert (sorted(s for s, _, _ in dropped.items), dropped.bodies, dropped.bytes) == (["B", "C"], 1, len(other))
    assert ledger.incoming("A", DOC, "document").body == shared  # type: ignore[union-attr]


def test_a_rejected_item_whose_body_was_dropped_gets_it_back_when_resent(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _received(ledger, "A", b"<x/>")
    ledger.record_answer("A", DOC, "document", StatusCode.REJECTED, "thiếu chữ ký", None)
    assert ledger.drop_bodies(_later()).bodies == 1
    assert ledger.store_incoming("A", DOC, "document", "m-A", b"<x/>", "d-A") is Arrival.REDELIVERY  # the same message
    assert ledger.store_incoming("A", DOC, "document", "m-A2", b"<x/>", "d-A") is Arrival.RESENT
    stored = ledger.incoming("A", DOC, "document")
    assert stored is not None and stored.body == b"<x/>" and stored.dropped_at is None and not stored.acknowledged


def test_retention_on_a_ledger_written_before_it_existed(tmp_path: Path) -> None:
    """A ledger of an earlier release (no size, acknowledgement or retention columns) opens, gains them,
    and its old rows are retained like new ones; the digest stays on the row, only the body goes."""
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE documents (document_id TEXT PRIMARY KEY, sender TEXT NOT NULL, code TEXT NOT NULL, subject TEXT NOT NULL,"
        " promulgated TEXT NOT NULL, due_date TEXT, kind TEXT NOT NULL, replaces TEXT, created_at TEXT NOT NULL);"
        "CREATE TABLE bodies (digest TEXT PRIMARY KEY, body BLOB NOT NULL);"
        "CREATE TABLE outbox (message_id TEXT PRIMARY KEY, document_id TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,"
        " digest TEXT NOT NULL, created_at TEXT NOT NULL, published_at TEXT);"
        "CREATE TABLE incoming (sender TEXT NOT NULL, document_id TEXT NOT NULL, kind TEXT NOT NULL, message_id TEXT NOT NULL,"
        " digest TEXT NOT NULL, received_at TEXT NOT NULL, receipt_sent INTEGER NOT NULL DEFAULT 0,"
        " handed INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'received', PRIMARY KEY (sender, document_id, kind));"
        "INSERT INTO bodies VALUES ('x', X'3c782f3e');"
        "INSERT INTO incoming (sender, document_id, kind, message_id, digest, received_at, handed)"
        " VALUES ('A', 'D', 'document', 'm', 'x', '2025-01-02T03:04:05+00:00', 1);"
    )
    old.close()
    ledger = SqliteLedger(path)
    stored = ledger.incoming("A", "D", "document")
    assert stored is not None and stored.body == b"<x/>" and stored.size == 4 and not stored.acknowledged
    assert ledger.drop_bodies(_later()).bodies == 0  # never acknowledged: kept
    ledger.acknowledge("A", "D", "document")
    assert ledger.drop_bodies(_later()).bytes == 4
    stored = ledger.incoming("A", "D", "document")
    assert stored is not None and stored.body is None and stored.size == 4  # the size kept from the body it had
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT digest FROM incoming").fetchall() == [("x",)]
        assert db.execute("SELECT count(*) FROM bodies").fetchone() == (0,)
