"""A host of several agencies with one pool of worker processes for all of them (issue 13)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import vbdt
from conftest import H54, H54_COMMUNES, H54_DISTRICT
from vbdt.cli.demo import compose
from vbdt.exchange.client import AgencyClient, InboxItem
from vbdt.exchange.host import AgencyHost, HostedAgency
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.receipts import DeliveryState

HOSTED = [H54_DISTRICT, *H54_COMMUNES]


async def test_hosted_agencies_share_one_pool_of_workers_across_restarts(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                         tmp_path: Path) -> None:
    pki, folder = exchange_pki
    name = f"host-{uuid.uuid4().hex[:8]}"
    broker = MemoryBroker.named(name)
    broker.provision([H54, *HOSTED])
    broker.provision_host("hosts/h54", HOSTED)
    got: list[tuple[str, str]] = []

    def register(client: AgencyClient, item: InboxItem) -> None:
        got.append((client.organ_id, item.document_id))

    province = AgencyClient(H54, transport=await vbdt.connect(f"memory://{H54}@{name}"),
                            ledger=vbdt.SqliteLedger(tmp_path / "p.db"), key=pki.agencies[H54], trust=folder / "ca.pem",
                            directory=example_directory)
    host = AgencyHost(f"memory://{quote('hosts/h54', safe='')}@{name}",
                      [HostedAgency(o, key=pki.agencies[o], ledger=tmp_path / f"{o}.db", url=f"memory://{o}@{name}")
                       for o in HOSTED],
                      trust=folder / "ca.pem", directory=example_directory, pdf_policy="report", on_item=register,
                      workers=2)
    async with province:
        for round_, number in enumerate(("31", "32")):
            async with host:
                pool = host.workers
                assert all(host.client(o).workers is pool for o in HOSTED)  # one pool for the host
                assert len(pool.pids()) == 2
                doc = compose(example_directory, H54, HOSTED, number=number, notation="UBND-VP", type_name="Công văn",
                              subject=f"Về việc số {number}", issued=date.today())
                sent = await province.send(doc)

                async def arrived(document_id: str = sent.document_id, items: int = 3 * (round_ + 1)) -> None:
                    while len(got) < items or \
                            any(d.state is not DeliveryState.ARRIVED for d in province.status(document_id)):
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(arrived(), 60)
            assert pool.closed and pool.pids() == []  # stopped with the host, started afresh with it
    assert sorted(got) == sorted((o, d) for d in {d for _, d in got} for o in HOSTED)
