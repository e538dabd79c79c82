"""A host of more agencies than one connection reads: one reading connection per ``agencies_per_connection``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from own_broker import CTL, OwnBroker

import vbdt
from conftest import H14_COMMUNES, H54, H54_COMMUNES, H54_DISTRICT, UNDER_CI, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.cli.exits import EXIT_USAGE
from vbdt.cli.main import main
from vbdt.errors import BrokerUnreachable, TransportError, UsageError
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.host import DEFAULT_AGENCIES_PER_CONNECTION, AgencyHost, HostedAgency
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.routing import organ_id_for_queue
from vbdt.exchange.transport import Transport

HOSTED = [*H14_COMMUNES, H54_DISTRICT, *H54_COMMUNES]  # five agencies: on 3 connections of 2
SHARDS = [set(HOSTED[0:2]), set(HOSTED[2:4]), set(HOSTED[4:5])]
HOST_USER = "hosts/shards"


def _hosted(pki: Any, tmp: Path, url_of: Callable[[str], str]) -> list[HostedAgency]:
    return [HostedAgency(o, key=pki.agencies[o], ledger=tmp / f"{o}.db", url=url_of(o), person=pki.signer, seal=pki.agencies[o])
            for o in HOSTED]


async def _until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def _document(directory: vbdt.Directory, number: str) -> vbdt.Document:
    return compose(directory, H54, HOSTED, number=number, notation="UBND-VP", type_name="Công văn",
                   subject=f"Về việc chia các kết nối đọc ({number})", issued=date.today())


async def _send_and_answer(province: AgencyClient, host: AgencyHost, directory: vbdt.Directory, number: str,
                           got: list[tuple[str, str]]) -> str:
    """Province → the five hosted agencies; each receives it (its 01 comes back) and accepts it (03)."""
    result = await province.send(_document(directory, number))
    assert sorted(result.recipients) == sorted(HOSTED) and not result.pending
    document_id = result.document_id

    def states() -> set[DeliveryState]:
        return {d.state for d in province.status(document_id)}

    await _until(lambda: sum(1 for _, d in got if d == document_id) == len(HOSTED) and states() == {DeliveryState.ARRIVED})
    for organ_id in HOSTED:  # each answers as itself, on its own publishing connection
        await host.client(organ_id).item(H54, document_id).accept(staff=vbdt.StaffInfo(staff="Văn thư"))
    await _until(lambda: states() == {DeliveryState.ACCEPTED})
    return document_id


def test_agencies_per_connection_must_be_at_least_one(exchange_pki: Any, example_directory: vbdt.Directory,
                                                       tmp_path: Path) -> None:
    pki, folder = exchange_pki
    agencies = _hosted(pki, tmp_path, lambda o: f"memory://{o}@nowhere")
    for bad in (0, -1, True, 2.5, "2"):
        with pytest.raises(UsageError, match="agencies_per_connection"):
            AgencyHost("memory://h@nowhere", agencies, trust=folder / "ca.pem", directory=example_directory,
                       agencies_per_connection=bad)  # type: ignore[arg-type]
    host = AgencyHost("memory://h@nowhere", agencies, trust=folder / "ca.pem", directory=example_directory)
    assert host.agencies_per_connection == DEFAULT_AGENCIES_PER_CONNECTION == 1000 and host.reading_connections == 0


def _memory() -> tuple[str, MemoryBroker]:
    name = f"shards-{uuid.uuid4().hex[:8]}"
    broker = MemoryBroker.named(name)
    broker.provision([H54, *HOSTED])
    broker.provision_host(HOST_USER, HOSTED)
    return name, broker


async def test_five_agencies_on_three_connections_of_the_embedded_broker(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                         tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki, folder = exchange_pki
    name, broker = _memory()
    got: list[tuple[str, str]] = []
    province = AgencyClient(H54, transport=await vbdt.connect(f"memory://{H54}@{name}"), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                            key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                            person=pki.signer, seal=pki.agencies[H54])
    host = AgencyHost(f"memory://{quote(HOST_USER, safe='')}@{name}", _hosted(pki, tmp_path, lambda o: f"memory://{o}@{name}"),
                      trust=folder / "ca.pem", directory=example_directory, agencies_per_connection=2,
                      on_item=lambda c, i: got.append((c.organ_id, i.document_id)))
    caplog.set_level(logging.INFO, logger="vbdt.exchange.host")
    async with province, host:
        assert host.reading_connections == 3 and len({id(r) for r in host.readers}) == 3
        assert host.shared is host.readers[0] and all(r.user == HOST_USER for r in host.readers)
        # stable assignment, in agency order: 2, 2, 1
        assert [{o for o in HOSTED if host.reader_of(o) is r} for r in host.readers] == SHARDS
        assert "serving 5 agencies on 3 connections as hosts/shards" in caplog.text
        document_id = await _send_and_answer(province, host, example_directory, "51", got)
        assert Counter(got) == Counter({(o, document_id): 1 for o in HOSTED})
        readers = list(host.readers)
    assert host.reading_connections == 0 and host.shared is None
    for reader in readers:  # every reading connection was closed with the host
        with pytest.raises(TransportError, match="closed"):
            await reader.inbox_status(HOSTED[0])
    assert all(broker.queue_depth(o) == 0 for o in HOSTED)


async def test_as_many_agencies_as_one_connection_takes_stay_on_one(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                     tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki, folder = exchange_pki
    name, _ = _memory()
    caplog.set_level(logging.INFO, logger="vbdt.exchange.host")
    for per, shards in ((len(HOSTED), [set(HOSTED)]), (3, [set(HOSTED[:3]), set(HOSTED[3:])])):
        host = AgencyHost(f"memory://{quote(HOST_USER, safe='')}@{name}", _hosted(pki, tmp_path, lambda o: f"memory://{o}@{name}"),
                          trust=folder / "ca.pem", directory=example_directory, agencies_per_connection=per)
        for _ in range(2):  # the same assignment at every start
            async with host:
                assert [{o for o in HOSTED if host.reader_of(o) is r} for r in host.readers] == shards
                assert host.shared is host.readers[0]
            assert host.reading_connections == 0
    assert "serving 5 agencies on 1 connection as hosts/shards" in caplog.text
    assert "serving 5 agencies on 2 connections as hosts/shards" in caplog.text


async def test_a_reading_connection_that_cannot_open_closes_the_others(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                      tmp_path: Path) -> None:
    pki, folder = exchange_pki
    name, _ = _memory()
    opened: list[Transport] = []
    calls = 0

    async def opener(url: str) -> Transport:
        nonlocal calls
        calls += 1
        if calls == 2 and "hosts" in url:  # the second reading connection: the broker refuses it
            raise BrokerUnreachable("connection refused (the test's second reading connection)")
        transport = await vbdt.connect(url)
        opened.append(transport)
        return transport

    host = AgencyHost(f"memory://{quote(HOST_USER, safe='')}@{name}", _hosted(pki, tmp_path, lambda o: f"memory://{o}@{name}"),
                      trust=folder / "ca.pem", directory=example_directory, agencies_per_connection=2, opener=opener)
    with pytest.raises(BrokerUnreachable):
        await host.start()
    assert calls == 3 and len(opened) == 2 and host.reading_connections == 0 and host.shared is None and host.clients() == []
    for transport in opened:
        with pytest.raises(TransportError, match="closed"):
            await transport.inbox_status(HOSTED[0])


def test_host_table_takes_agencies_per_connection(tmp_path: Path, exchange_pki: Any) -> None:
    from vbdt.cli.serve import build_host, load_host_settings
    from vbdt.exchange.transport import DEFAULT_RECONNECT

    _, folder = exchange_pki
    (tmp_path / "agencies.json").write_text(json.dumps({o: f"amqp://u:p@127.0.0.1:1/v{o}" for o in HOSTED}))
    base = f"""[host]
url = "amqp://u:p@127.0.0.1:1/v"
credentials = "agencies.json"
agencies = {json.dumps(HOSTED)}
keys = "{folder}"
"""
    config = tmp_path / "host.toml"
    config.write_text(base + "agencies_per_connection = 2\n")
    settings = load_host_settings(config)
    assert settings.agencies_per_connection == 2
    assert build_host(settings, policy=DEFAULT_RECONNECT, on_item=lambda c, i: None).agencies_per_connection == 2
    config.write_text(base)
    assert build_host(load_host_settings(config), policy=DEFAULT_RECONNECT,
                      on_item=lambda c, i: None).agencies_per_connection == DEFAULT_AGENCIES_PER_CONNECTION
    for bad in ("0", "-3", "true", '"2"', "1.5"):
        config.write_text(base + f"agencies_per_connection = {bad}\n")
        result = CliRunner().invoke(main, ["--config", str(config), "serve"])
        assert result.exit_code == EXIT_USAGE and "host.agencies_per_connection" in result.stderr, (bad, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# -- over RabbitMQ ---------------------------------------------------------------------------------

def _ctl(*args: str) -> list[dict[str, str]]:
    """rabbitmqctl's answer as rows (tab-separated with a header: its pids are the ones close_connection takes)."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(ctl).exists():
        pytest.skip("rabbitmqctl is needed to look at and close the broker's connections")
    done = subprocess.run([ctl, *args, "--quiet"], capture_output=True, text=True, timeout=60, check=True)
    lines = [line.split("\t") for line in done.stdout.splitlines() if line.strip()]
    return [dict(zip(lines[0], row, strict=True)) for row in lines[1:]]


def _connections(vhost: str, user: str) -> dict[str, str]:
    """The broker's connections of ``user`` on ``vhost``: Erlang pid -> name."""
    return {c["pid"]: c["name"] for c in _ctl("list_connections", "pid", "name", "user", "vhost")
            if c["vhost"] == vhost and c["user"] == user}


def _reading(vhost: str, user: str) -> dict[str, set[str]]:
    """The broker's view: each connection of ``user`` on ``vhost`` (by name) and the inboxes it consumes."""
    connections = _connections(vhost, user)
    channels = {c["pid"]: c["connection"] for c in _ctl("list_channels", "pid", "connection")}
    seen: dict[str, set[str]] = {name: set() for name in connections.values()}
    for consumer in _ctl("list_consumers", "-p", vhost, "queue_name", "channel_pid"):
        connection = channels.get(consumer["channel_pid"])
        organ_id = organ_id_for_queue(consumer["queue_name"])
        if connection in connections and organ_id is not None:
            seen[connections[connection]].add(organ_id)
    return seen


@pytest.mark.broker
@pytest.mark.slow
async def test_three_reading_connections_and_one_lost(exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from vbdt.exchange.broker import host_user, provision_host

    pki, folder = exchange_pki
    with fresh_vhost([H54, *HOSTED]) as done:
        host_url = provision_host("shards", HOSTED, vhost=done.vhost)
        assert host_url is not None
        user = host_user(done.vhost, "shards")
        got: list[tuple[str, str]] = []
        province = AgencyClient(H54, transport=await vbdt.connect(done.urls[H54]), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                                key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                                person=pki.signer, seal=pki.agencies[H54])
        host = AgencyHost(host_url, _hosted(pki, tmp_path, lambda o: done.urls[o]), trust=folder / "ca.pem",
                          directory=example_directory, agencies_per_connection=2,
                          on_item=lambda c, i: got.append((c.organ_id, i.document_id)))
        async with province, host:
            assert host.reading_connections == 3 and all(r.user == user for r in host.readers)
            first = await _send_and_answer(province, host, example_directory, "61", got)

            # on the broker: three connections of the host's user, reading 2, 2 and 1 inboxes in agency order
            before = await asyncio.to_thread(_reading, done.vhost, user)
            assert sorted(map(sorted, before.values())) == sorted(map(sorted, SHARDS)), before
            victim = next(name for name, inboxes in before.items() if inboxes == SHARDS[1])

            # the broker drops the connection of the middle two while a document comes in (rabbitmqctl
            # takes a second or two to act), and another document is sent after it
            caplog.set_level(logging.WARNING, logger="vbdt.exchange")
            caplog.clear()
            pid = next(p for p, name in (await asyncio.to_thread(_connections, done.vhost, user)).items() if name == victim)
            closing = asyncio.ensure_future(asyncio.to_thread(_ctl, "close_connection", pid, "test: one reading connection lost"))
            await asyncio.sleep(1.0)
            second = await _send_and_answer(province, host, example_directory, "62", got)
            await closing
            third = await _send_and_answer(province, host, example_directory, "63", got)

            # the other two connections were never touched; the lost one was replaced by one new connection
            after = await asyncio.to_thread(_reading, done.vhost, user)
            assert victim not in after and len(after) == 3, after
            assert {n: after.get(n) for n in before if n != victim} == {n: i for n, i in before.items() if n != victim}
            assert sorted(map(sorted, after.values())) == sorted(map(sorted, SHARDS))
            # only the inboxes read on the lost connection were interrupted (and said so)
            interrupted = {o for o in HOSTED for r in caplog.records if r.name == "vbdt.exchange.inbox" and o in r.getMessage()}
            assert interrupted == SHARDS[1], caplog.text
            # nothing lost and nothing handed twice
            assert Counter(got) == Counter({(o, d): 1 for o in HOSTED for d in (first, second, third)})
        assert host.reading_connections == 0

        async def gone() -> bool:  # closing the host closed every reading connection
            return not await asyncio.to_thread(_connections, done.vhost, user)

        deadline = time.monotonic() + 20
        while not await gone():
            assert time.monotonic() < deadline, "the host's reading connections outlived it"
            await asyncio.sleep(0.5)


@pytest.fixture
def capped_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private RabbitMQ node whose connections may open 4 channels (channel_max): the cap of 2,047, scaled down."""
    if not OwnBroker.available():
        if UNDER_CI:
            pytest.fail("rabbitmq-server is not installed (python3 dev.py test installs it)")
        pytest.skip("rabbitmq-server is not installed")
    node = OwnBroker(tmp_path / "broker")
    with (node.base / "rabbitmq.conf").open("a") as conf:
        conf.write("channel_max = 4\n")
    node.start()
    yield node
    node.stop()


@pytest.mark.slow
async def test_more_agencies_than_channels_of_one_connection(capped_broker: OwnBroker, exchange_pki: Any,
                                                             example_directory: vbdt.Directory, tmp_path: Path) -> None:
    from vbdt.exchange.broker import provision, provision_host

    pki, folder = exchange_pki
    node = capped_broker
    where: dict[str, Any] = {"port": node.port, "node": node.node, "env": node.env, "ctl": CTL}
    urls = provision([H54, *HOSTED], vhost="vbdt", **where).urls
    host_url = provision_host("shards", HOSTED, vhost="vbdt", **where)
    assert host_url is not None
    options: dict[str, Any] = {"trust": folder / "ca.pem", "directory": example_directory}
    # five inboxes on one connection need more channels than the broker allows it: refused at start
    (tmp_path / "alone").mkdir()
    alone = AgencyHost(host_url, _hosted(pki, tmp_path / "alone", lambda o: urls[o]), **options)
    with pytest.raises(TransportError, match="channel_max"):
        await alone.start()
    assert alone.reading_connections == 0
    # two per connection: three connections, each within the cap, and every agency receives and answers
    got: list[tuple[str, str]] = []
    province = AgencyClient(H54, transport=await vbdt.connect(urls[H54]), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                            key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                            person=pki.signer, seal=pki.agencies[H54])
    host = AgencyHost(host_url, _hosted(pki, tmp_path, lambda o: urls[o]), agencies_per_connection=2,
                      on_item=lambda c, i: got.append((c.organ_id, i.document_id)), **options)
    async with province, host:
        assert host.reading_connections == 3
        document_id = await _send_and_answer(province, host, example_directory, "71", got)
        assert Counter(got) == Counter({(o, document_id): 1 for o in HOSTED})


@pytest.mark.broker
async def test_serve_logs_its_reading_connections(exchange_pki: Any, tmp_path: Path) -> None:
    from vbdt.exchange.broker import provision_host

    _, folder = exchange_pki
    with fresh_vhost(HOSTED) as done:
        host_url = provision_host("shards", HOSTED, vhost=done.vhost)
        assert host_url is not None
        (tmp_path / "agencies.json").write_text(json.dumps(done.urls))
        config = tmp_path / "host.toml"
        config.write_text(f"""[host]
url = "{host_url}"
credentials = "agencies.json"
agencies = {json.dumps(HOSTED)}
keys = "{folder}"
log_format = "json"
agencies_per_connection = 2
""")
        serve = subprocess.Popen([sys.executable, "-m", "vbdt", "--config", str(config), "serve"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            started = await asyncio.to_thread(_first_event, serve, "started")
            assert started["agencies"] == 5 and started["connections"] == 3
            assert re.search(r"serving 5 agencies on 3 connections as broker user", started["message"]), started
            serve.terminate()
            await asyncio.to_thread(serve.communicate, timeout=30)
        finally:
            serve.kill()
        assert serve.returncode == 0


def _first_event(process: subprocess.Popen[str], name: str, timeout: float = 60) -> dict[str, Any]:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"serve ended before {name!r}: {seen}")
        seen.append(line)
        record = json.loads(line)
        if record.get("event") == name:
            return record  # type: ignore[no-any-return]
    raise AssertionError(f"no {name!r} event in time: {seen}")


async def test_publishing_connections_are_opened_a_few_at_a_time(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directive to every hosted agency makes each open its publishing connection to answer at
    once: on a broker of 10,000 inboxes those thousands of handshakes timed out together. The host
    opens at most OPENING at a time; the others wait, and every answer still arrives."""
    from vbdt.exchange import host as hosting

    monkeypatch.setattr(hosting, "OPENING", 2)
    pki, folder = exchange_pki
    name, _ = _memory()
    opening = peak = 0

    async def opener(url: str) -> Transport:
        nonlocal opening, peak
        if "hosts" in url:
            return await vbdt.connect(url)
        opening += 1
        peak = max(peak, opening)
        try:
            await asyncio.sleep(0.05)  # a handshake that takes a while
            return await vbdt.connect(url)
        finally:
            opening -= 1

    got: list[tuple[str, str]] = []
    province = AgencyClient(H54, transport=await vbdt.connect(f"memory://{H54}@{name}"), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                            key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                            person=pki.signer, seal=pki.agencies[H54])
    host = AgencyHost(f"memory://{quote(HOST_USER, safe='')}@{name}", _hosted(pki, tmp_path, lambda o: f"memory://{o}@{name}"),
                      trust=folder / "ca.pem", directory=example_directory, opener=opener,
                      on_item=lambda c, i: got.append((c.organ_id, i.document_id)))
    async with province, host:
        await _send_and_answer(province, host, example_directory, "52", got)
    assert peak == 2  # five agencies answered; never more than two handshakes at once
