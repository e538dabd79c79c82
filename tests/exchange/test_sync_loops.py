"""The synchronous client over the embedded broker: each client owns a loop thread, so one
:class:`~vbdt.exchange.memory.MemoryBroker` is used from several event loops, and an inbox that ends
by its timeout must close cleanly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import vbdt
from vbdt.exchange.sync import SyncAgencyClient
from vbdt.testing import TestExchange, make_document

PROVINCE, DISTRICT = "000.00.00.H14", "000.00.01.H14"


def _client(exchange: TestExchange, organ_id: str, folder: Path) -> SyncAgencyClient:
    async def build() -> vbdt.AgencyClient:
        key = exchange.key(organ_id)
        return vbdt.AgencyClient(organ_id, transport=await vbdt.connect(exchange.url(organ_id)),
                                 ledger=vbdt.SqliteLedger(folder / f"{organ_id}.db"), key=key, trust=exchange.trust,
                                 directory=exchange.directory, person=exchange.pki.signer, seal=key)

    return SyncAgencyClient.connect(build)


def test_two_loops_share_the_embedded_broker_and_an_inbox_ends_by_its_timeout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exchange = TestExchange.embedded(tmp_path)
    with _client(exchange, PROVINCE, tmp_path) as province:
        sent = [province.send(make_document(exchange.directory, PROVINCE, [DISTRICT])).document_id for _ in range(2)]
    # The district's loop is another thread's; then a third loop waits on the same inbox queue.
    with _client(exchange, DISTRICT, tmp_path) as district:
        first = next(iter(district.inbox(timeout=10)))
        district.ack(first)
    with caplog.at_level(logging.ERROR), _client(exchange, DISTRICT, tmp_path) as district:
        rest = []
        for item in district.inbox(timeout=1):  # ends by its timeout: no "generator already running"
            district.ack(item)
            rest.append(item.document_id)
    assert sorted([first.document_id, *rest]) == sorted(sent)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_consumer_on_a_second_loop_is_woken_by_a_publish_on_the_first(tmp_path: Path) -> None:
    exchange = TestExchange.embedded(tmp_path)
    with _client(exchange, DISTRICT, tmp_path) as district:
        def first_item() -> list[vbdt.InboxItem]:
            for item in district.inbox(timeout=15):
                district.ack(item)
                return [item]
            return []

        waiting = asyncio.get_running_loop().run_in_executor(None, first_item)
        await asyncio.sleep(0.5)  # the district's loop is now waiting on its inbox
        with _client(exchange, PROVINCE, tmp_path) as province:
            doc_id = province.send(make_document(exchange.directory, PROVINCE, [DISTRICT])).document_id
        (item,) = await asyncio.wait_for(waiting, 30)
        assert item.document_id == doc_id
