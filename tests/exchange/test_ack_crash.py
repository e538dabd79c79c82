"""The application's acknowledgement survives a SIGKILL: a receiver killed after its own commit but
before ``item.ack()`` is handed the item again, marked redelivered; one killed after ``item.ack()``
is never handed it again. Each test runs on its own vhost of the shared RabbitMQ."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import fresh_vhost
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.connect import connect
from vbdt.exchange.ledger import SqliteLedger
from vbdt.testing import make_document

H14, C1 = "000.00.00.H14", "000.00.01.H14"
AGENT = Path(__file__).parent / "ack_agent.py"


@pytest.fixture
def urls() -> Iterator[dict[str, str]]:
    with fresh_vhost([H14, C1]) as done:
        yield dict(done.urls)


class Receiver:
    """The receiving agency, run as a process the test starts and kills."""

    def __init__(self, urls: dict[str, str], folder: Path, tmp: Path) -> None:
        self.args = [urls[C1], str(folder), str(tmp / "c1.db"), C1]
        self.out = tmp / "handed.txt"
        self.process: subprocess.Popen[str] | None = None

    def start(self, mode: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(AGENT), *self.args, str(self.out), mode], cwd=AGENT.parent,
                                        text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no finally block, no close, nothing flushed but what was committed
        self.process.wait(30)
        self.process = None

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    async def until(self, check: Callable[[list[str]], bool], what: str, timeout: float = 60) -> list[str]:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check(self.lines()):
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent died: {self.process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached in {timeout:.0f} s: {what}; lines: {self.lines()}")
            await asyncio.sleep(0.05)
        return self.lines()


async def _sender(urls: dict[str, str], pki: Any, folder: Path, directory: Any, tmp: Path) -> AgencyClient:
    sender = AgencyClient(H14, transport=await connect(urls[H14]), ledger=SqliteLedger(tmp / "h14.db"),
                          key=pki.agencies[H14], trust=folder / "ca.pem", directory=directory, pdf_policy="ignore")
    await sender.open()
    sender.serve()
    return sender


async def test_killed_before_the_ack_the_item_is_handed_again_marked_redelivered(
        urls: dict[str, str], exchange_pki: Any, example_directory: Any, tmp_path: Path) -> None:
    pki, folder = exchange_pki
    sender = await _sender(urls, pki, folder, example_directory, tmp_path)
    receiver = Receiver(urls, folder, tmp_path)
    try:
        first = (await sender.send(make_document(example_directory, H14, [C1]))).document_id
        receiver.start("hold-before-ack")
        await receiver.until(lambda lines: f"handed {first}" in lines, "the document handed over")
        receiver.kill()  # committed by the application, never acknowledged
        assert receiver.lines() == [f"handed {first}"]
        stored = SqliteLedger(tmp_path / "c1.db")
        (incoming,) = stored.received(unacknowledged=True)
        assert (incoming.document_id, incoming.handed, incoming.acknowledged) == (first, True, False)
        stored.close()

        receiver.start("ack")
        await receiver.until(lambda lines: f"acked {first}" in lines, "handed again and acknowledged")
        second = (await sender.send(make_document(example_directory, H14, [C1]))).document_id
        lines = await receiver.until(lambda lines: f"acked {second}" in lines, "the next document")
        assert lines == [f"handed {first}", f"handed {first} redelivered", f"acked {first}",
                         f"handed {second}", f"acked {second}"]
    finally:
        if receiver.process is not None:
            receiver.kill()
        await sender.close()


async def test_killed_after_the_ack_the_item_is_never_handed_again(
        urls: dict[str, str], exchange_pki: Any, example_directory: Any, tmp_path: Path) -> None:
    pki, folder = exchange_pki
    sender = await _sender(urls, pki, folder, example_directory, tmp_path)
    receiver = Receiver(urls, folder, tmp_path)
    try:
        first = (await sender.send(make_document(example_directory, H14, [C1]))).document_id
        receiver.start("hold-after-ack")
        await receiver.until(lambda lines: f"acked {first}" in lines, "the document acknowledged")
        receiver.kill()

        receiver.start("ack")
        second = (await sender.send(make_document(example_directory, H14, [C1]))).document_id
        lines = await receiver.until(lambda lines: f"acked {second}" in lines, "the next document")
        # had the first come again, it would have come before the second (unacknowledged items first)
        assert lines == [f"handed {first}", f"acked {first}", f"handed {second}", f"acked {second}"]
        stored = SqliteLedger(tmp_path / "c1.db")
        assert stored.received(unacknowledged=True) == []
        assert {i.document_id for i in stored.received()} == {first, second}
        stored.close()
    finally:
        if receiver.process is not None:
            receiver.kill()
        await sender.close()
