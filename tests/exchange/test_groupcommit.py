"""Group commit of ledger writes (issue 13).

Concurrent writes share one transaction; a write that fails is undone alone; a commit that fails
fails every write of its group and leaves nothing of it; a receipt is acknowledged to the broker
only once the transaction that applied it committed (on the embedded broker and on RabbitMQ), and
a receipt whose write fails is not acknowledged at all. The SQLite durability option is checked.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import H54, H54_DISTRICT, Network
from vbdt.cli.demo import compose
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import StatusMessage
from vbdt.edxml.validation import read
from vbdt.errors import InvalidTransition, LedgerError
from vbdt.exchange.groupcommit import GroupCommit
from vbdt.exchange.ledger import OutboxEntry, SentDocument, SqliteLedger
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.transport import Delivery, WrappedDelivery

N = 12


def _ledger_with_sends(path: Path, n: int = N) -> SqliteLedger:
    """A ledger that sent n documents to one recipient, confirmed by the broker."""
    ledger = SqliteLedger(path)
    for i in range(n):
        doc_id = f"{H54},2026/11/23,{i}/UBND-VP"
        entry = OutboxEntry(f"m{i}", doc_id, H54_DISTRICT, "document", f"<body {i}/>".encode())
        ledger.record_send(SentDocument(doc_id, H54, f"{i}/UBND-VP", "s", date(2026, 11, 23)), [entry])
        ledger.published([entry.message_id])
    return ledger


def _apply(ledger: SqliteLedger, i: int, document_id: str | None = None) -> Any:
    return lambda: ledger.apply(document_id or f"{H54},2026/11/23,{i}/UBND-VP", H54_DISTRICT, StatusCode.ARRIVED,
                                receipt_key=f"receipt {i}")


def _states(path: Path) -> list[DeliveryState]:
    """What another connection sees: only committed transactions."""
    other = SqliteLedger(path)
    try:
        return [other.deliveries(f"{H54},2026/11/23,{i}/UBND-VP")[0].state for i in range(N)]
    finally:
        other.close()


@pytest.mark.parametrize("thread", [False, True], ids=["on-the-loop", "writer-thread"])
async def test_writes_waiting_together_share_one_transaction(tmp_path: Path, thread: bool) -> None:
    ledger = _ledger_with_sends(tmp_path / "l.db")
    commits = GroupCommit(ledger, thread=thread)
    results = await asyncio.gather(*(commits.run(_apply(ledger, i)) for i in range(N)))
    assert results == [DeliveryState.ARRIVED] * N
    assert (commits.groups, commits.writes) == (1, N)
    assert _states(tmp_path / "l.db") == [DeliveryState.ARRIVED] * N
    # a repeat is recognised inside a group too: applied once
    again = await asyncio.gather(commits.run(_apply(ledger, 0)), commits.run(_apply(ledger, 0)))
    assert again == [None, None]
    await commits.close()
    ledger.close()


@pytest.mark.parametrize("thread", [False, True], ids=["on-the-loop", "writer-thread"])
async def test_a_failing_write_is_undone_alone(tmp_path: Path, thread: bool) -> None:
    ledger = _ledger_with_sends(tmp_path / "l.db")
    commits = GroupCommit(ledger, thread=thread)

    def half_done() -> None:  # writes, then fails: its own savepoint is rolled back
        ledger.apply(f"{H54},2026/11/23,0/UBND-VP", H54_DISTRICT, StatusCode.ARRIVED, receipt_key="half")
        raise InvalidTransition("after a first write")

    results = await asyncio.gather(commits.run(half_done), *(commits.run(_apply(ledger, i)) for i in range(1, N)),
                                   commits.run(_apply(ledger, 99, document_id="unknown")), return_exceptions=True)
    assert isinstance(results[0], InvalidTransition) and isinstance(results[-1], InvalidTransition)
    assert results[1:-1] == [DeliveryState.ARRIVED] * (N - 1)
    assert commits.groups == 1
    assert _states(tmp_path / "l.db") == [DeliveryState.SENT] + [DeliveryState.ARRIVED] * (N - 1)
    await commits.close()
    ledger.close()


@pytest.mark.parametrize("thread", [False, True], ids=["on-the-loop", "writer-thread"])
async def test_a_failing_commit_fails_every_write_of_its_group(tmp_path: Path, thread: bool) -> None:
    ledger = _ledger_with_sends(tmp_path / "l.db")
    # A deferred foreign key is checked at COMMIT: one write of the group breaks it, so the commit
    # itself fails (as a full disk or an I/O error would), after every statement succeeded.
    ledger._file.query("PRAGMA foreign_keys = ON")
    ledger._file.query("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    ledger._file.query("CREATE TEMP TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    commits = GroupCommit(ledger, thread=thread)
    poison = commits.run(lambda: ledger._file.query("INSERT INTO child VALUES (1)"))
    results = await asyncio.gather(*(commits.run(_apply(ledger, i)) for i in range(N)), poison, return_exceptions=True)
    assert all(isinstance(r, LedgerError) and "FOREIGN KEY" in str(r) for r in results)
    assert commits.groups == 0
    assert _states(tmp_path / "l.db") == [DeliveryState.SENT] * N  # nothing of the group
    # the next group, without the poison, applies them (nothing was marked seen)
    assert await asyncio.gather(*(commits.run(_apply(ledger, i)) for i in range(N))) == [DeliveryState.ARRIVED] * N
    await commits.close()
    ledger.close()


def test_durability(tmp_path: Path) -> None:
    normal, full = SqliteLedger(tmp_path / "n.db"), SqliteLedger(tmp_path / "f.db", durability="full")
    assert normal._file.query("PRAGMA synchronous") == [(1,)] and full._file.query("PRAGMA synchronous") == [(2,)]
    assert GroupCommit(normal).thread and GroupCommit(full).thread  # the event loop never waits for the disk
    normal.close(), full.close()
    with pytest.raises(LedgerError, match="durability"):
        SqliteLedger(tmp_path / "x.db", durability="fast")  # type: ignore[arg-type]


# -- the receiver: acknowledged after the commit ------------------------------------------------------

class _Watched(WrappedDelivery):
    """A broker delivery (a 01) whose acknowledgement notes whether another connection to the ledger
    sees the receipt applied at that moment, i.e. committed."""

    def __init__(self, inner: Delivery, seen: list[tuple[str, bool]], path: Path) -> None:
        super().__init__(inner)
        status = read(inner.body)
        assert isinstance(status, StatusMessage) and status.response_for.document_id
        self.document_id = status.response_for.document_id
        self._seen, self._path = seen, path

    async def ack(self) -> None:
        (state,) = _arrived_states(self._path, [self.document_id])
        self._seen.append((self.document_id, state is DeliveryState.ARRIVED))
        await super().ack()


async def _receipts_waiting(network: Network, n: int) -> tuple[Any, list[Delivery], list[str], Any]:
    """An agency that sent n documents, and its n 01s taken from its inbox by a consumer that stays
    open (closing it gives back what was not acknowledged)."""
    sender = await network.agency(H54, pump=False)
    await network.agency(H54_DISTRICT)  # receives, stores, answers 01
    ids = []
    for i in range(n):
        sent = await sender.send(compose(network.directory, H54, [H54_DISTRICT], number=str(i + 1), notation="UBND-VP",
                                         type_name="Công văn", subject=f"Về việc số {i + 1}", issued=date.today()))
        ids.append(sent.document_id)
    consumer = sender.transport.consume(H54, prefetch=n + 1)
    async with asyncio.timeout(60):
        deliveries = [await anext(consumer) for _ in range(n)]
    return sender, deliveries, ids, consumer


async def test_receipts_are_acknowledged_only_after_their_commit(network: Network) -> None:
    sender, deliveries, ids, consumer = await _receipts_waiting(network, 6)
    path = Path(sender.ledger.path)
    seen: list[tuple[str, bool]] = []
    await asyncio.gather(*(sender.handle(_Watched(d, seen, path)) for d in deliveries))
    await consumer.aclose()
    assert sorted(d for d, _ in seen) == sorted(ids) and all(committed for _, committed in seen)
    assert _arrived_states(path, ids) == [DeliveryState.ARRIVED] * 6
    assert sender.commits.writes >= 6 and sender.commits.groups <= sender.commits.writes


async def test_a_receipt_whose_write_fails_is_not_acknowledged(network: Network) -> None:
    sender, deliveries, ids, consumer = await _receipts_waiting(network, 3)
    sender.ledger._file.query("PRAGMA query_only = ON")  # every write fails, as on a read-only disk
    seen: list[tuple[str, bool]] = []
    results = await asyncio.gather(*(sender.handle(_Watched(d, seen, Path(sender.ledger.path))) for d in deliveries),
                                   return_exceptions=True)
    assert all(isinstance(r, LedgerError) for r in results)
    assert seen == []  # none acknowledged: the broker gives them again
    await consumer.aclose()
    sender.ledger._file.query("PRAGMA query_only = OFF")
    assert _arrived_states(Path(sender.ledger.path), ids) == [DeliveryState.SENT] * 3


def _arrived_states(path: Path, ids: list[str]) -> list[DeliveryState]:
    other = SqliteLedger(path)
    try:
        return [other.deliveries(i)[0].state for i in ids]
    finally:
        other.close()


def test_nested_groups_are_savepoints(tmp_path: Path) -> None:
    ledger = _ledger_with_sends(tmp_path / "l.db", 2)
    with ledger.batch():
        _apply(ledger, 0)()
        with pytest.raises(InvalidTransition), ledger.batch():
            _apply(ledger, 1)()
            raise InvalidTransition("undo only this one")
        assert ledger.deliveries(f"{H54},2026/11/23,1/UBND-VP")[0].state is DeliveryState.SENT
    assert [d.state for i in range(2) for d in ledger.deliveries(f"{H54},2026/11/23,{i}/UBND-VP")] == \
           [DeliveryState.ARRIVED, DeliveryState.SENT]
    ledger.close()
