"""The host of many agencies (vbdt.exchange.host): one reading connection, each agency publishing as itself."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import vbdt
from conftest import H14, H54, H54_COMMUNES, H54_DISTRICT, admin_url, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.errors import AccessRefused, PublishRefused, SignerMismatch, UnknownAgency, UsageError
from vbdt.exchange.client import AgencyClient, InboxItem
from vbdt.exchange.host import AgencyHost, HostedAgency
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.trust.pki import TestPki

HOST_USER = "hosts/h14"


@pytest.fixture(scope="module")
def many(example_directory: vbdt.Directory, tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, Path, list[str]]:
    """300 agencies of the example directory (every commune and two districts) and the province H14, EC keys."""
    ids = [a.organ_id for a in example_directory.select("**:commune")]
    ids += [a.organ_id for a in example_directory.select("**:district")][: 300 - len(ids)]
    assert len(ids) == 300 and H14 not in ids
    pki = TestPki.create([(o, example_directory.get(o).name) for o in [H14, *ids]], kind="ec")
    folder = tmp_path_factory.mktemp("host-pki")
    pki.write(folder)
    return pki, folder, ids


def _memory(ids: list[str]) -> tuple[str, MemoryBroker]:
    name = f"host-{uuid.uuid4().hex[:8]}"
    broker = MemoryBroker.named(name)
    broker.provision([H14, *ids])
    broker.provision_host(HOST_USER, ids)
    return name, broker


def _hosted(pki: TestPki, ids: list[str], tmp: Path, url_of: Any) -> list[HostedAgency]:
    return [HostedAgency(o, key=pki.agencies[o], ledger=tmp / f"{o}.db", url=url_of(o)) for o in ids]


@pytest.mark.slow
async def test_300_agencies_on_one_connection(many: tuple[TestPki, Path, list[str]], example_directory: vbdt.Directory,
                                              tmp_path: Path) -> None:
    pki, folder, ids = many
    name, broker = _memory(ids)
    got: list[tuple[str, str]] = []

    async def register(client: AgencyClient, item: InboxItem) -> None:  # the application's commit
        got.append((client.organ_id, item.document_id))

    province = AgencyClient(H14, transport=await vbdt.connect(f"memory://{H14}@{name}"), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                            key=pki.agencies[H14], trust=folder / "ca.pem", directory=example_directory)
    host = AgencyHost(f"memory://{quote(HOST_USER, safe='')}@{name}", _hosted(pki, ids, tmp_path, lambda o: f"memory://{o}@{name}"),
                      # unsigned PDFs, reported: the scale of the host is measured here, not PAdES
                      trust=folder / "ca.pem", directory=example_directory, pdf_policy="report", on_item=register,
                      idle_close=0.3)
    async with province, host:
        assert host.shared is not None and host.shared.user == HOST_USER
        doc = compose(example_directory, H14, ids, number="12", notation="CT-UBND", type_name="Chỉ thị",
                      subject="Về việc phòng, chống thiên tai", issued=date.today())
        result = await province.send(doc)
        assert len(result.recipients) == 300 and not result.pending

        async def arrived() -> None:
            while len(got) < 300 or any(d.state is not DeliveryState.ARRIVED for d in province.status(result.document_id)):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(arrived(), 120)
        assert Counter(got) == Counter({(o, result.document_id): 1 for o in ids})  # each agency once, none twice
        # handed over and acknowledged: nothing waits in any hosted ledger
        assert all(not host.client(o).received(unacknowledged=True) for o in ids[:20])

        # a hosted agency answers later, by id; the 03 is published as the agency itself
        commune = host.client(ids[0])
        await commune.item(H14, result.document_id).accept(staff=vbdt.StaffInfo(staff="Văn thư xã"))

        async def accepted() -> None:
            while {d.recipient: d.state for d in province.status(result.document_id)}[ids[0]] is not DeliveryState.ACCEPTED:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(accepted(), 20)
        # publishing connections are opened on demand and closed when idle
        await asyncio.wait_for(_until(lambda: host.publishing_connections == 0), 10)
    assert host.shared is None and broker.queue_depth(ids[0]) == 0


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.05)


async def test_host_user_reads_only_hosted_inboxes_and_publishes_nothing(many: tuple[TestPki, Path, list[str]]) -> None:
    _, _, ids = many
    _, broker = _memory(ids[:2])
    host = broker.connect(HOST_USER)
    with pytest.raises(AccessRefused):
        await anext(host.consume(H14))
    with pytest.raises(PublishRefused):
        await host.publish(Outgoing(routing_key(ids[0]), b"<x/>", "m1"))
    with pytest.raises(UsageError):
        broker.provision_host("guest", ids)  # an operator is no host
    assert (await host.inbox_status(ids[1])).ready == 0
    await host.close()


async def test_host_refuses_bad_configuration(many: tuple[TestPki, Path, list[str]], example_directory: vbdt.Directory,
                                              tmp_path: Path) -> None:
    pki, folder, ids = many
    name, broker = _memory(ids[:2])
    url = f"memory://{quote(HOST_USER, safe='')}@{name}"
    agencies = _hosted(pki, ids[:2], tmp_path, lambda o: f"memory://{o}@{name}")
    options: dict[str, Any] = {"trust": folder / "ca.pem", "directory": example_directory}
    with pytest.raises(UsageError, match="at least one"):
        AgencyHost(url, [], **options)
    with pytest.raises(UsageError, match="twice"):
        AgencyHost(url, [agencies[0], agencies[0]], **options)
    with pytest.raises(UnknownAgency):
        AgencyHost(url, [HostedAgency("000.99.99.Z99", key=pki.agencies[ids[0]], ledger=tmp_path / "z.db", url=url)], **options)
    # another agency's key: refused at start, and nothing is left open
    wrong = AgencyHost(url, [agencies[0], HostedAgency(ids[1], key=pki.agencies[ids[0]], ledger=tmp_path / "w.db", url=url)],
                       **options)
    with pytest.raises(SignerMismatch):
        await wrong.start()
    assert wrong.shared is None and wrong.clients() == []
    with pytest.raises(UsageError, match="not started"):
        wrong.client(ids[0])
    # a host user that may not read one of the inboxes: refused at start, nothing left open
    broker.provision_host(HOST_USER, ids[:1])
    partial = AgencyHost(url, agencies, **options)
    with pytest.raises(AccessRefused):
        async with partial:
            await partial.wait()
    assert partial.shared is None


# -- over RabbitMQ ---------------------------------------------------------------------------------

@pytest.mark.broker
async def test_host_over_rabbitmq(exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    from vbdt.exchange.broker import host_user, provision_host

    pki, folder = exchange_pki
    hosted = [H54_DISTRICT, *H54_COMMUNES]
    with fresh_vhost([H54, *hosted]) as done:
        host_url = provision_host("h54", hosted, vhost=done.vhost)
        assert host_url is not None and provision_host("h54", hosted, vhost=done.vhost) is None  # kept, not re-keyed
        got: list[tuple[str, InboxItem]] = []
        province = AgencyClient(H54, transport=await vbdt.connect(done.urls[H54]), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                                key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                                person=pki.signer, seal=pki.agencies[H54])
        host = AgencyHost(host_url, [HostedAgency(o, key=pki.agencies[o], ledger=tmp_path / f"{o}.db", url=done.urls[o],
                                                  person=pki.signer, seal=pki.agencies[o]) for o in hosted],
                          trust=folder / "ca.pem", directory=example_directory, on_item=lambda c, i: got.append((c.organ_id, i)))
        async with province, host:
            assert host.shared is not None and host.shared.user == host_user(done.vhost, "h54")
            doc = compose(example_directory, H54, hosted, number="31", notation="UBND-VP", type_name="Công văn",
                          subject="Về việc báo cáo", issued=date.today())
            result = await province.send(doc)
            await asyncio.wait_for(_until(lambda: len(got) == 3 and all(
                d.state is DeliveryState.ARRIVED for d in province.status(result.document_id))), 60)
            assert sorted(o for o, _ in got) == sorted(hosted)
            # the district reports up, as itself: the province checks the publisher and accepts it
            report = compose(example_directory, H54_DISTRICT, [H54], number="7", notation="BC-UBND", type_name="Báo cáo",
                             subject="Báo cáo kết quả", issued=date.today())
            await host.client(H54_DISTRICT).send(report)
            items = province.inbox()
            item = await asyncio.wait_for(anext(items), 30)
            assert item.sender == H54_DISTRICT and item.document_id == report.document_id
            await item.ack()
            await items.aclose()  # type: ignore[attr-defined]
            # the host's own user may neither publish nor read an inbox it does not host
            shared = host.shared
            with pytest.raises(PublishRefused):
                await shared.publish(Outgoing(routing_key(H54), b"<x/>", "forged"))
            with pytest.raises(AccessRefused):
                await anext(shared.consume(H54))
        admin = await vbdt.connect(admin_url(done.vhost))
        try:
            statuses = [await admin.inbox_status(o) for o in hosted]
            assert [(s.ready, s.consumers) for s in statuses] == [(0, 0)] * 3  # all taken; the host is gone
        finally:
            await admin.close()
    from vbdt.exchange.rabbitadmin import RabbitAdmin

    assert host_user(done.vhost, "h54") not in RabbitAdmin().users()  # deprovisioned with its vhost
