"""The sender process killed (SIGKILL) in the middle of a bulk run, on the shared RabbitMQ in a vhost of
its own; a resume finishes the run and every recipient's application gets the document exactly once.

Copies the journal holds as confirmed when the process died are never published again (their
inbox holds exactly one message); copies in flight may be published twice, and the receivers
recognise the second one (same DocumentId and signed digest) and hand the document once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import vbdt
from conftest import H14, admin_url, fresh_vhost
from vbdt.cli.demo import build_directive
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.journal import BulkJournal, RecipientState, RunState
from vbdt.exchange.ledger import SqliteLedger
from vbdt.exchange.receipts import DeliveryState
from vbdt.trust.pki import TestPki

RECIPIENTS = 40

CHILD = r"""
import asyncio, json, sys, time
from datetime import date
import vbdt
from vbdt.cli.demo import build_directive
from vbdt.edxml.resources import example_directory_path
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.bulk import BulkItem
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.keys import SigningKey

url, folder, ledger, recipients = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
directory = vbdt.Directory.load(example_directory_path())
key = SigningKey.from_pem(f"{folder}/000.00.00.H14.key.pem", f"{folder}/000.00.00.H14.cert.pem")
person = SigningKey.from_pem(f"{folder}/signer.key.pem", f"{folder}/signer.cert.pem")

def event(e):
    print(json.dumps(e.as_dict()), flush=True)
    if e.kind == "progress":
        time.sleep(0.3)  # a slow sender: the parent kills it between two batches, others in flight

async def main():
    transport = await AmqpTransport.connect(url, declare=False)
    agency = AgencyClient("000.00.00.H14", transport=transport, ledger=SqliteLedger(ledger), key=key,
                          trust=f"{folder}/ca.pem", directory=directory, person=person, seal=key)
    await agency.open()
    bulk = agency.bulk()
    bulk.batch, bulk.in_flight = 4, 2
    doc = build_directive(directory, issued=date(2026, 11, 25), number="07")
    await bulk.send([BulkItem(doc, recipients)], on_event=event)
    print(json.dumps({"event": "finished"}), flush=True)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def kill_pki(tmp_path_factory: pytest.TempPathFactory, example_directory: vbdt.Directory):  # type: ignore[no-untyped-def]
    communes = [str(c.organ_id) for c in example_directory.select(f"{H14}/**:commune")][:RECIPIENTS]
    pki = TestPki.create([(o, example_directory.get(o).name) for o in [H14, *communes]])
    folder = tmp_path_factory.mktemp("bulk-kill-pki")
    pki.write(folder)
    return pki, folder, communes


async def test_sender_killed_mid_run_then_resumed_delivers_exactly_once(kill_pki, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    pki, folder, communes = kill_pki
    with fresh_vhost([H14, *communes]) as done:
        ledger = tmp_path / "h14.db"
        child = subprocess.Popen([sys.executable, "-c", CHILD, done.urls[H14], str(folder), str(ledger), json.dumps(communes)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
        progress = 0
        assert child.stdout is not None
        for line in child.stdout:
            if json.loads(line)["event"] == "progress":
                progress += 1
                if progress == 3:
                    child.send_signal(signal.SIGKILL)
                    break
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
        journal = BulkJournal(tmp_path / "h14.bulk.db")
        (info,) = journal.runs()
        assert info.state is RunState.INTERRUPTED  # its process is gone
        assert 0 < info.counts["confirmed"] < RECIPIENTS and info.counts["pending"] > 0
        confirmed_before = {r.recipient for r in journal.recipients(info.run_id) if r.state is RecipientState.CONFIRMED}
        journal.close()

        admin = await AmqpTransport.connect(admin_url(done.vhost))
        clients: list[AgencyClient] = []
        try:
            sender = AgencyClient(H14, transport=await AmqpTransport.connect(done.urls[H14], declare=False),
                                  ledger=SqliteLedger(ledger), key=pki.agencies[H14], trust=folder / "ca.pem",
                                  directory=example_directory)
            clients.append(sender)
            await sender.open()
            run = await sender.bulk_resume(info.run_id)
            assert run.info().state is RunState.DONE and run.info().counts["confirmed"] == RECIPIENTS
            ready = {o: (await admin.inbox_status(o)).ready for o in communes}
            assert all(ready[o] == 1 for o in confirmed_before), ready  # never published again
            assert all(n >= 1 for n in ready.values())
            sender.serve()
            receivers = []
            for organ_id in communes:
                client = AgencyClient(organ_id, transport=await AmqpTransport.connect(done.urls[organ_id], declare=False),
                                      ledger=SqliteLedger(tmp_path / f"{organ_id}.db"), key=pki.agencies[organ_id],
                                      trust=folder / "ca.pem", directory=example_directory)
                clients.append(client)
                await client.open()
                client.serve()
                receivers.append(client)
            await run.wait_arrived(timeout=90)
            assert {d.state for d in run.deliveries()} == {DeliveryState.ARRIVED}
            for _ in range(100):  # every copy, duplicates included, taken off the inboxes
                if sum([(await admin.inbox_status(o)).ready for o in communes]) == 0:
                    break
                await asyncio.sleep(0.1)
            for client in receivers:
                stored = client.received()
                assert len(stored) == 1 and stored[0].document_id == str(build_directive(
                    example_directory, issued=date(2026, 11, 25), number="07").document_id)
            duplicates = sum(ready.values()) - RECIPIENTS
            print(f"copies published twice (in flight at the kill): {duplicates}")
        finally:
            for client in clients:
                await client.close()
            await admin.close()
