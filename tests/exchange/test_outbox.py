"""The outbox's background flush: retried every few seconds while something is pending, and an idle
outbox looked at less and less often (a host runs thousands of agencies: at one look every two
seconds each, ten idle hosts of 1,000 agencies burned most of a core between them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vbdt.exchange.ledger import OutboxEntry, SqliteLedger
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.outbox import Outbox
from vbdt.exchange.transport import QueueLimits

A, B = "000.00.00.H14", "000.00.01.H14"


class LookingLedger(SqliteLedger):
    """A real ledger that counts how often the outbox asks it what is pending."""

    looks = 0

    def pending(self) -> list[OutboxEntry]:
        self.looks += 1
        return super().pending()


def _entry(n: int) -> OutboxEntry:
    return OutboxEntry(f"m-{n}", f"doc-{n}", B, "status", f"<m{n}/>".encode())


async def test_an_idle_outbox_is_looked_at_less_and_less_often(tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.provision([A, B])
    ledger = LookingLedger(tmp_path / "ledger.db")
    flusher = asyncio.create_task(Outbox(A, broker.connect(A), ledger).keep_flushing(every=0.01, idle=0.16))
    await asyncio.sleep(1.0)
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    # 0.01 + 0.02 + 0.04 + 0.08, then every 0.16 s: about 9 looks, where a fixed pace made 100
    # (each pause counts from the last look: a stalled loop makes fewer, never a burst)
    assert 3 <= ledger.looks <= 14


async def test_a_publish_left_pending_is_retried_at_once_pace_even_after_a_long_idle(tmp_path: Path) -> None:
    broker = MemoryBroker(queue_limits=QueueLimits(inbox_messages=1))
    broker.provision([A, B])
    ledger = LookingLedger(tmp_path / "ledger.db")
    outbox = Outbox(A, broker.connect(A), ledger)
    flusher = asyncio.create_task(outbox.keep_flushing(every=0.05, idle=60.0))
    try:
        await asyncio.sleep(1.6)  # idle: the pause has grown to 1.6 s (next look near 3.1 s)
        # as a quorum queue, the bound is passed by the last one accepted: the third is refused
        results = [await outbox.record_and_publish([_entry(n)], f"doc-{n}", [B]) for n in (1, 2, 3)]
        assert [bool(r.pending) for r in results] == [False, False, True]
        reader = broker.connect(B).consume(B).__aiter__()
        for n in (1, 2):  # room again
            got = await asyncio.wait_for(reader.__anext__(), 5)
            assert got.message_id == f"m-{n}"
            await got.ack()
        # the refused publish set the pace back to 0.05 s: the flush gets it through long before the idle pause
        got = await asyncio.wait_for(reader.__anext__(), 1.0)
        assert got.message_id == "m-3"
        await got.ack()
        for _ in range(40):
            if not ledger.pending():
                break
            await asyncio.sleep(0.05)
        assert ledger.pending() == []
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)


async def test_a_pending_entry_found_by_an_idle_look_is_flushed(tmp_path: Path) -> None:
    """An entry left by a crash, or by a send cancelled between its record and its publish, sets
    nothing off: the idle look finds it."""
    broker = MemoryBroker()
    broker.provision([A, B])
    ledger = LookingLedger(tmp_path / "ledger.db")
    outbox = Outbox(A, broker.connect(A), ledger)
    flusher = asyncio.create_task(outbox.keep_flushing(every=0.02, idle=0.1))
    try:
        await asyncio.sleep(0.3)
        ledger.record_outgoing_unique([_entry(3)])  # recorded, never published by this process
        reader = broker.connect(B).consume(B).__aiter__()
        got = await asyncio.wait_for(reader.__anext__(), 2)
        assert got.message_id == "m-3"
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
