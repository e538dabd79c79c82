"""The receiving loop's looks at the ledger (for items no handler handed): once a second while things
happen, less and less often while nothing does — a host idles thousands of inboxes, and at one look
a second each, ten idle hosts of 1,000 agencies burned most of a core between them."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import vbdt
from conftest import EXCHANGE_AGENCIES, H54, H54_DISTRICT
from vbdt.cli.demo import compose
from vbdt.exchange import inbox as inbox_module
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import Incoming, SqliteLedger
from vbdt.exchange.memory import MemoryBroker


class LookingLedger(SqliteLedger):
    """A real ledger that counts the receiving loop's looks for unhanded items."""

    looks = 0

    def unhanded(self) -> list[Incoming]:
        self.looks += 1
        return super().unhanded()


async def test_an_idle_inbox_looks_less_and_less_often_and_an_arrival_is_handed_at_once(
        monkeypatch: pytest.MonkeyPatch, exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    monkeypatch.setattr(inbox_module, "_SWEEP_EVERY", 0.01)  # the production pace (1 s … 30 s), a hundred times faster
    monkeypatch.setattr(inbox_module, "_SWEEP_IDLE", 0.16)
    pki, folder = exchange_pki
    broker = MemoryBroker()
    broker.provision(EXCHANGE_AGENCIES)
    ledger = LookingLedger(tmp_path / "district.db")
    common = {"trust": folder / "ca.pem", "directory": example_directory}
    async with AgencyClient(H54_DISTRICT, transport=broker.connect(H54_DISTRICT), ledger=ledger,
                            key=pki.agencies[H54_DISTRICT], **common) as district, \
            AgencyClient(H54, transport=broker.connect(H54), ledger=SqliteLedger(tmp_path / "province.db"),
                         key=pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54], **common) as province:
        items = district.inbox().__aiter__()
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(1.0)
        # 0.01 + 0.02 + 0.04 + 0.08, then every 0.16 s: about 9 looks, where a fixed pace made 100
        assert 3 <= ledger.looks <= 14  # each pause counts from the last look: a stalled loop makes fewer
        document = compose(example_directory, H54, [H54_DISTRICT], number="7", notation="UBND-VP", type_name="Công văn",
                           subject="Về việc thử nhịp nhìn sổ", issued=date.today())
        sent = await province.send(document)
        item = await asyncio.wait_for(waiting, 10)
        assert item.document_id == sent.document_id
        await item.ack()


async def test_an_arrival_is_handed_when_handled_not_at_the_next_look(
        monkeypatch: pytest.MonkeyPatch, exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    monkeypatch.setattr(inbox_module, "_SWEEP_EVERY", 120.0)  # no look at the ledger would come in time
    monkeypatch.setattr(inbox_module, "_SWEEP_IDLE", 120.0)
    pki, folder = exchange_pki
    broker = MemoryBroker()
    broker.provision(EXCHANGE_AGENCIES)
    common = {"trust": folder / "ca.pem", "directory": example_directory}
    async with AgencyClient(H54_DISTRICT, transport=broker.connect(H54_DISTRICT), ledger=SqliteLedger(tmp_path / "d.db"),
                            key=pki.agencies[H54_DISTRICT], **common) as district, \
            AgencyClient(H54, transport=broker.connect(H54), ledger=SqliteLedger(tmp_path / "p.db"),
                         key=pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54], **common) as province:
        items = district.inbox().__aiter__()
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0.2)  # the loop has looked once and waits
        for number in ("8", "9"):
            document = compose(example_directory, H54, [H54_DISTRICT], number=number, notation="UBND-VP",
                               type_name="Công văn", subject="Về việc giao ngay", issued=date.today())
            sent = await province.send(document)
            item = await asyncio.wait_for(waiting, 20)
            assert item.document_id == sent.document_id
            await item.ack()
            waiting = asyncio.ensure_future(items.__anext__())
        waiting.cancel()


async def test_after_a_crash_only_the_item_the_application_saw_comes_back_as_redelivered(
        exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    """Items that arrived together are claimed one by one as they are handed: claimed together, a
    crash after the first would have marked the others handed, and they would come back flagged
    ``redelivered`` although the application never saw them (the DMS example caught it)."""
    pki, folder = exchange_pki
    broker = MemoryBroker()
    broker.provision(EXCHANGE_AGENCIES)
    common = {"trust": folder / "ca.pem", "directory": example_directory}

    def district_client() -> AgencyClient:
        return AgencyClient(H54_DISTRICT, transport=broker.connect(H54_DISTRICT), ledger=SqliteLedger(tmp_path / "d.db"),
                            key=pki.agencies[H54_DISTRICT], **common)

    def document(number: str) -> vbdt.Document:
        return compose(example_directory, H54, [H54_DISTRICT], number=number, notation="UBND-VP", type_name="Công văn",
                       subject=f"Về việc số {number}", issued=date.today())

    async with AgencyClient(H54, transport=broker.connect(H54), ledger=SqliteLedger(tmp_path / "p.db"),
                            key=pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54], **common) as province:
        async with district_client() as district:
            items = district.inbox().__aiter__()
            await province.send(document("1"))
            first = await asyncio.wait_for(items.__anext__(), 20)
            await province.send(document("2"))
            await province.send(document("3"))
            for _ in range(400):  # both stored and waiting in hand while the application holds the first
                if len(district.ledger.received()) == 3:
                    break
                await asyncio.sleep(0.05)
            await first.ack()
            seen = await asyncio.wait_for(items.__anext__(), 20)  # then the application dies holding it
            await items.aclose()  # type: ignore[attr-defined]
        async with district_client() as district:  # started again on the same ledger
            items = district.inbox().__aiter__()
            again = [await asyncio.wait_for(items.__anext__(), 20) for _ in range(2)]
            assert {(i.document_id, i.redelivered) for i in again} == {
                (seen.document_id, True), *((d, False) for d in {i.document_id for i in again} - {seen.document_id})}
            assert len({i.document_id for i in again}) == 2
            for item in again:
                await item.ack()
            await items.aclose()  # type: ignore[attr-defined]
