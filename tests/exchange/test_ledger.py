"""The SQLite ledger: outbox before publish, receipts once, overdue, survives reopening."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vbdt.codes import StatusCode
from vbdt.errors import InvalidTransition, LedgerError
from vbdt.ledger import OutboxEntry, SentDocument, SqliteLedger
from vbdt.model import VIETNAM_TZ
from vbdt.receipts import DeliveryState

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
    assert again._query("SELECT count(*) FROM bodies")[0][0] == 1
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
    history = ledger._query("SELECT event, applied FROM history WHERE recipient = ? ORDER BY id", (R1,))
    assert history[-1] == ("01", 0)
    with pytest.raises(InvalidTransition, match="no delivery"):
        ledger.apply("other", R1, StatusCode.ARRIVED, receipt_key="k9")


def test_overdue(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    _send(ledger, promulgated=dt.date(2026, 11, 20), due=dt.date(2026, 11, 22))
    ledger.published([f"{DOC}>{R1}", f"{DOC}>{R2}"])
    ledger.apply(DOC, R1, StatusCode.ACCEPTED, receipt_key="a")
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=VIETNAM_TZ)
    overdue = {(o.recipient, o.why.split()[0]) for o in ledger.overdue(now)}
    assert overdue == {(R2, "chưa"), (R1, "quá")}
    same_day = dt.datetime(2026, 11, 20, 16, 0, tzinfo=VIETNAM_TZ)
    assert ledger.overdue(same_day) == []
    ledger.apply(DOC, R1, StatusCode.COMPLETED, receipt_key="b")
    assert {o.recipient for o in ledger.overdue(now)} == {R2}


def test_incoming_is_kept_once(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    assert ledger.store_incoming("A", "D", "document", "m", b"<x/>")
    assert not ledger.store_incoming("A", "D", "document", "m", b"<x/>")
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
