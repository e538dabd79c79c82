"""A stand-in for a vendor's document management system (DMS), embedding vbdt.

It keeps its own incoming-document book (``register``), answers 03 once a document is in it, and
sends letters. A real DMS would do the same with its own database and user interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import vbdt


class Dms:
    """One agency's DMS on the exchange."""

    def __init__(self, client: vbdt.AgencyClient) -> None:
        self.client = client
        self.register: dict[str, vbdt.Document] = {}  # the incoming-document book, by DocumentId

    async def send(self, document: vbdt.Document) -> str:
        """Send a letter; its DocumentId."""
        return (await self.client.send(document)).document_id

    def state(self, document_id: str, recipient: str) -> str:
        """Where a sent letter stands at a recipient, as the clerk sees it."""
        delivered = next(d for d in self.client.status(document_id) if d.recipient == recipient)
        return delivered.state.label + (f": {delivered.reason}" if delivered.reason else "")

    async def receive_forever(self) -> None:
        async for item in self.client.inbox():
            async with item:  # acknowledged once it is in the book
                if item.kind == "recall":
                    await item.agree()
                    continue
                self.register[item.document_id] = item.document
                await item.accept()


@contextlib.asynccontextmanager
async def open_dms(organ_id: str, *, url: str, keys: Path, directory: vbdt.Directory, ledger: Path) -> AsyncIterator[Dms]:
    """The DMS of ``organ_id``, connected with its broker URL and the keys in ``keys`` (as `vbdt pki init` writes them)."""
    key = vbdt.SigningKey.from_pem(keys / f"{organ_id}.key.pem", keys / f"{organ_id}.cert.pem")
    person = vbdt.SigningKey.from_pem(keys / "signer.key.pem", keys / "signer.cert.pem")
    client = vbdt.AgencyClient(organ_id, transport=await vbdt.connect(url), ledger=vbdt.SqliteLedger(ledger), key=key,
                               trust=keys / "ca.pem", directory=directory, person=person, seal=key)
    async with client:
        dms = Dms(client)
        receiving = asyncio.create_task(dms.receive_forever())
        try:
            yield dms
        finally:
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)
