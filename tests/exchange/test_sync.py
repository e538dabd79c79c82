"""The synchronous client, shared by several threads, over RabbitMQ (each client owns its loop thread)."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import vbdt
from conftest import H54, H54_COMMUNES, H54_DISTRICT, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.sync import SyncAgencyClient

pytestmark = pytest.mark.broker


def _client(organ_id: str, url: str, pki: Any, folder: Path, directory: vbdt.Directory, tmp: Path) -> SyncAgencyClient:
    async def build() -> vbdt.AgencyClient:
        return vbdt.AgencyClient(organ_id, transport=await vbdt.connect(url), ledger=vbdt.SqliteLedger(tmp / f"{organ_id}.db"),
                                 key=pki.agencies[organ_id], trust=folder / "ca.pem", directory=directory,
                                 person=pki.signer, seal=pki.agencies[organ_id])

    return SyncAgencyClient.connect(build)


def test_threads_share_one_sync_client(exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    pki, folder = exchange_pki
    with fresh_vhost([H54, H54_DISTRICT, *H54_COMMUNES]) as done:
        sender = _client(H54, done.urls[H54], pki, folder, example_directory, tmp_path)
        receiver = _client(H54_DISTRICT, done.urls[H54_DISTRICT], pki, folder, example_directory, tmp_path)
        try:
            sent: list[str] = []
            errors: list[BaseException] = []

            def one(n: int) -> None:  # a request handler on a web server's worker thread
                try:
                    doc = compose(example_directory, H54, [H54_DISTRICT], number=f"4{n:02d}", notation="UBND-VP",
                                  type_name="Công văn", subject=f"Về việc gửi từ luồng {n}", issued=date.today())
                    sent.append(sender.send(doc).document_id)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors and len(set(sent)) == 8

            got = []
            for item in receiver.inbox(timeout=10):
                receiver.answer(item, "accept", staff=vbdt.StaffInfo(staff="Văn thư"))
                receiver.ack(item)
                got.append(item.document_id)
                if len(got) == 8:
                    break
            assert sorted(got) == sorted(sent)
            for document_id in sent:
                _eventually(lambda d=document_id: sender.status(d)[0].state is DeliveryState.ACCEPTED)
            assert receiver.received(unacknowledged=True) == []
            with pytest.raises(vbdt.UsageError):
                receiver.answer(receiver.item(H54, sent[0]), "approve")
        finally:
            sender.close()
            receiver.close()


def _eventually(check: Any, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_rejected_delivery_is_resent_from_sync_code(exchange_pki: Any, example_directory: vbdt.Directory,
                                                       tmp_path: Path) -> None:
    pki, folder = exchange_pki
    with fresh_vhost([H54, H54_DISTRICT]) as done:
        sender = _client(H54, done.urls[H54], pki, folder, example_directory, tmp_path)
        receiver = _client(H54_DISTRICT, done.urls[H54_DISTRICT], pki, folder, example_directory, tmp_path)
        try:
            doc = compose(example_directory, H54, [H54_DISTRICT], number="451", notation="UBND-VP",
                          type_name="Công văn", subject="Về việc gửi lại", issued=date.today())
            document_id = sender.send(doc).document_id
            with pytest.raises(vbdt.UsageError):
                sender.resend("000.00.00.H54,2020/01/01,1/NONE")  # not a document this agency sent
            with pytest.raises(vbdt.InvalidTransition):
                sender.resend(document_id, to=[H54_DISTRICT])  # still open: nothing to resend
            item = next(iter(receiver.inbox(timeout=10)))
            receiver.answer(item, "reject", "Thiếu phụ lục")
            receiver.ack(item)
            _eventually(lambda: sender.status(document_id)[0].state is DeliveryState.REJECTED)
            again = sender.resend(document_id)
            assert again.recipients == [H54_DISTRICT] and again.pending == {} and again.unroutable == {}
            second = next(iter(receiver.inbox(timeout=10)))
            assert second.document_id == document_id and not second.redelivered
            receiver.answer(second, "accept")
            receiver.ack(second)
            _eventually(lambda: sender.status(document_id)[0].state is DeliveryState.ACCEPTED)
            events = [e.event for e in sender.history(document_id, H54_DISTRICT)]
            assert events.count("resent") == 1 and events.count("02") == 1
            assert sender.status(document_id)[0].attempt == 2
        finally:
            sender.close()
            receiver.close()
