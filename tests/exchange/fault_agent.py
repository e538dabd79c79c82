"""An agency process that the fault tests kill at the worst moment (run as a script).

    python fault_agent.py receive URL KEYS LEDGER ORGANID OUT [--crash-at N]
        receive; append each document id handed over to OUT (with " redelivered" when the item says
        an earlier run handed it without an ack); with --crash-at N, die (os._exit)
        when acknowledging the Nth document: stored and receipted, not yet acked
    python fault_agent.py send URL KEYS LEDGER ORGANID TO NUMBER
        send one document, dying right after the ledger recorded it and before publishing
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

from vbdt.cli.demo import compose
from vbdt.directory.agencies import Directory
from vbdt.edxml.resources import example_directory_path
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.client import Agency
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.keys import SigningKey


async def agency(url: str, keys: Path, ledger: str, organ_id: str) -> Agency:
    directory = Directory.load(example_directory_path())
    key = SigningKey.from_pem(keys / f"{organ_id}.key.pem", keys / f"{organ_id}.cert.pem")
    a = Agency(organ_id, transport=await AmqpTransport.connect(url, declare=False), ledger=SqliteLedger(ledger), key=key,
               trust=keys / "ca.pem", directory=directory, pdf_policy="ignore")
    await a.open()
    return a


async def receive(url: str, keys: Path, ledger: str, organ_id: str, out: str, crash_at: int | None) -> None:
    a = await agency(url, keys, ledger, organ_id)
    documents = 0
    original = a.receiver._document

    async def document(delivery, admitted):  # type: ignore[no-untyped-def]
        nonlocal documents
        documents += 1
        if documents == crash_at:
            async def die() -> None:
                os._exit(9)
            delivery.ack = die
        return await original(delivery, admitted)

    a.receiver._document = document  # type: ignore[method-assign]
    with open(out, "a") as handed:
        async for item in a.inbox():
            handed.write(item.document_id + (" redelivered" if item.redelivered else "") + "\n")
            handed.flush()
            await item.ack()


async def send(url: str, keys: Path, ledger: str, organ_id: str, to: str, number: str) -> None:
    a = await agency(url, keys, ledger, organ_id)

    async def die(messages):  # type: ignore[no-untyped-def]
        os._exit(9)

    a.transport.publish_many = die  # type: ignore[method-assign]
    doc = compose(a.directory, organ_id, [to], number=number, notation="UBND-VP", type_name="Công văn",
                  subject="Gửi trước khi tiến trình bị dừng", issued=dt.date.today())
    await a.send(doc)


if __name__ == "__main__":
    mode, url, keys, ledger, organ_id, *rest = sys.argv[1:]
    if mode == "receive":
        crash = int(rest[2]) if len(rest) > 2 and rest[1] == "--crash-at" else None
        asyncio.run(receive(url, Path(keys), ledger, organ_id, rest[0], crash))
    else:
        asyncio.run(send(url, Path(keys), ledger, organ_id, rest[0], rest[1]))
