"""One directive to every commune of Cao Bằng, signed once, with progress, receipts and the HTML report.

    python examples/bulk_send.py                       # the embedded exchange (nothing to install)
    python examples/bulk_send.py --amqp amqp://guest:guest@127.0.0.1:5672/vbdt-example   # a RabbitMQ vhost

Only the first ``--inboxes`` communes have an inbox (and a running receiver): the others are
reported as without an inbox, which is what a first national run usually looks like. Over
RabbitMQ the example connects every agency with the URL's user (an operator), so publishers are
not checked; a deployment gives each agency its own user (``vbdt broker provision``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import date
from pathlib import Path

import vbdt
from vbdt.cli.demo import build_directive
from vbdt.edxml.resources import example_directory_path
from vbdt.exchange.bulk import BulkEvent
from vbdt.exchange.bulk_report import render_html
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import SqliteLedger
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.transport import Transport
from vbdt.trust.pki import TestPki

PROVINCE = "000.00.00.H14"


async def main(amqp: str | None, inboxes: int, out: Path) -> None:
    directory = vbdt.Directory.load(example_directory_path())
    communes = [str(a.organ_id) for a in directory.select(f"{PROVINCE}/**:commune")]
    online = communes[:inboxes]
    pki = TestPki.create([(o, directory.get(o).name) for o in [PROVINCE, *online]])
    work = Path(tempfile.mkdtemp(prefix="vbdt-bulk-"))
    pki.write(work)
    broker = MemoryBroker()
    broker.provision([PROVINCE, *online])

    async def transport(organ_id: str) -> Transport:
        if amqp is None:
            return broker.connect(organ_id)
        from vbdt.exchange.amqp import AmqpTransport

        connected = await AmqpTransport.connect(amqp)  # the operator's user: declares the inbox below
        await connected.declare_inbox(organ_id)
        return connected

    checked = amqp is None  # one operator user for all over RabbitMQ: the publisher cannot be checked
    clients = []
    for organ_id in online:  # receivers: each verifies, stores and sends a signed 01 back
        receiver = AgencyClient(organ_id, transport=await transport(organ_id), ledger=SqliteLedger(":memory:"),
                                key=pki.agencies[organ_id], trust=work / "ca.pem", directory=directory, check_publisher=checked)
        await receiver.__aenter__()
        clients.append(receiver)
    async with AgencyClient(PROVINCE, transport=await transport(PROVINCE), ledger=SqliteLedger(work / "h14.db"),
                            key=pki.agencies[PROVINCE], trust=work / "ca.pem", directory=directory, person=pki.signer,
                            seal=pki.agencies[PROVINCE], check_publisher=checked) as agency:

        def progress(event: BulkEvent) -> None:
            print(f"{event.kind:>8}: {event.confirmed} confirmed, {event.unroutable} without an inbox, "
                  f"{event.pending} pending of {event.total}")

        doc = build_directive(directory, issued=date.today())
        run = await agency.bulk_send(doc, to=[f"{PROVINCE}/**:commune", "000.00.00.H99"], on_event=progress)
        print(f"run {run.run_id}: left out {run.problems}")
        print(f"receipts: {await run.wait_arrived(timeout=120)} copies arrived")
        report = run.report()
        print("totals:", report.totals())
        out.write_text(render_html(report), encoding="utf-8")
        print(f"report written to {out}")
    for receiver in clients:
        await receiver.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", metavar="URL", help="RabbitMQ URL of an operator user on a vhost (default: embedded exchange)")
    parser.add_argument("--inboxes", type=int, default=8, help="communes with an inbox and a receiver")
    parser.add_argument("--out", type=Path, default=Path("bulk-report.html"))
    arguments = parser.parse_args()
    asyncio.run(main(arguments.amqp, arguments.inboxes, arguments.out))
