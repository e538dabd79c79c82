"""A receiving agency process that the acknowledgement crash tests kill with SIGKILL (run as a script).

    python ack_agent.py URL KEYS LEDGER ORGANID OUT MODE

For each item handed over it appends ``handed <DocumentId>`` (``handed <DocumentId> redelivered``
when an earlier run handed it and never acknowledged it) to OUT, flushed and fsynced: that is the
application's own commit. Then, by MODE:

- ``ack``: acknowledge, append ``acked <DocumentId>``, take the next item;
- ``hold-before-ack``: wait forever without acknowledging (the test kills it there);
- ``hold-after-ack``: acknowledge, append ``acked <DocumentId>``, then wait forever.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import vbdt
from vbdt.edxml.resources import example_directory_path


def _write(out: Path, line: str) -> None:
    with out.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


async def receive(url: str, keys: Path, ledger: str, organ_id: str, out: Path, mode: str) -> None:
    key = vbdt.SigningKey.from_pem(keys / f"{organ_id}.key.pem", keys / f"{organ_id}.cert.pem")
    client = vbdt.AgencyClient(organ_id, transport=await vbdt.connect(url), ledger=vbdt.SqliteLedger(ledger), key=key,
                               trust=keys / "ca.pem", directory=vbdt.Directory.load(example_directory_path()),
                               pdf_policy="ignore")
    async with client:
        async for item in client.inbox():
            _write(out, f"handed {item.document_id}" + (" redelivered" if item.redelivered else ""))
            if mode == "hold-before-ack":
                await asyncio.Event().wait()
            await item.ack()
            _write(out, f"acked {item.document_id}")
            if mode == "hold-after-ack":
                await asyncio.Event().wait()


if __name__ == "__main__":
    url, keys, ledger, organ_id, out, mode = sys.argv[1:]
    if mode not in {"ack", "hold-before-ack", "hold-after-ack"}:
        sys.exit(f"ack_agent: unknown mode {mode!r}")
    asyncio.run(receive(url, Path(keys), ledger, organ_id, Path(out), mode))
