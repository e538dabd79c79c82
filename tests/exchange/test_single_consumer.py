"""Two consumers on one inbox over RabbitMQ (a leftover process, a second deployment): the second
gets nothing while the first lives, says so in a WARNING, and takes over when the first goes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import fresh_vhost
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.connect import connect
from vbdt.exchange.ledger import SqliteLedger
from vbdt.testing import make_document

H14, C1 = "000.00.00.H14", "000.00.01.H14"


async def _client(url: str, organ_id: str, pki: Any, folder: Path, directory: Any, ledger: Path) -> AgencyClient:
    client = AgencyClient(organ_id, transport=await connect(url), ledger=SqliteLedger(ledger), key=pki.agencies[organ_id],
                          trust=folder / "ca.pem", directory=directory, pdf_policy="ignore")
    await client.open()
    client.serve()
    return client


async def _until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


async def test_a_second_consumer_gets_nothing_while_the_first_lives(
        exchange_pki: Any, example_directory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki, folder = exchange_pki
    with fresh_vhost([H14, C1]) as done:
        urls = dict(done.urls)
        sender = await _client(urls[H14], H14, pki, folder, example_directory, tmp_path / "h14.db")
        first = await _client(urls[C1], C1, pki, folder, example_directory, tmp_path / "first.db")
        caplog.set_level(logging.WARNING, logger="vbdt")
        second = await _client(urls[C1], C1, pki, folder, example_directory, tmp_path / "second.db")
        clients = [sender, first, second]
        try:
            await _until(lambda: any("waiting: another consumer is active on the inbox of " + C1 in r.getMessage()
                                     for r in caplog.records), "the second consumer says it waits")

            sent = [(await sender.send(make_document(example_directory, H14, [C1]))).document_id for _ in range(6)]
            await _until(lambda: {i.document_id for i in first.received()} == set(sent), "the first has all six")
            await asyncio.sleep(1)  # time for a misrouted delivery to show
            assert second.received() == []

            await first.close()  # the first goes: the waiting one becomes the active consumer
            clients.remove(first)
            later = (await sender.send(make_document(example_directory, H14, [C1]))).document_id
            await _until(lambda: [i.document_id for i in second.received()] == [later], "the second takes over")
            assert {i.document_id for i in SqliteLedger(tmp_path / "first.db").received()} == set(sent)
        finally:
            for client in clients:
                await client.close()
