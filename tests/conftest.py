"""Shared fixtures. Tests needing an outside tool or the broker skip locally but FAIL under CI=true."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

import vbdt

DATA = Path(__file__).parent / "data"
INTEROP = DATA / "interop"
INTEROP_FILES = sorted(INTEROP.glob("*.edxml"))
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of a command-line tool; skip (or fail under CI) when it is missing."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        message = f"{name} is not installed (python3 dev.py test installs it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(params=["signxml", "xmlsec"])
def dsig_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Make ``request.param`` the default XML-DSig backend for the test (``verify``, ``unpack``,
    ``admit`` alike); python-xmlsec is a test dependency, so a missing one fails, never skips."""
    from vbdt.trust.dsig_backends import default_backend, get_backend

    monkeypatch.setenv("VBDT_DSIG_BACKEND", request.param)
    backend = default_backend()
    assert backend is get_backend(request.param) and backend.name == request.param
    return backend


@pytest.fixture(scope="session")
def example_directory() -> vbdt.Directory:
    from vbdt.edxml.resources import example_directory_path

    return vbdt.Directory.load(example_directory_path())


@pytest.fixture
def directive(example_directory: vbdt.Directory) -> vbdt.Document:
    from vbdt.cli.demo import build_directive

    return build_directive(example_directory, issued=date(2026, 11, 23))


# -- the exchange ---------------------------------------------------------------------------------

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from vbdt.exchange.transport import Transport  # noqa: E402

G22, H14, H54 = "000.00.00.G22", "000.00.00.H14", "000.00.00.H54"
H14_COMMUNES = ["000.00.01.H14", "000.00.02.H14"]
H54_DISTRICT = "000.00.01.H54"
H54_COMMUNES = ["000.01.01.H54", "000.02.01.H54"]
EXCHANGE_AGENCIES = [G22, H14, *H14_COMMUNES, H54, H54_DISTRICT, *H54_COMMUNES]
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672


def broker_answers(host: str = AMQP_HOST, port: int = AMQP_PORT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_broker() -> None:
    """Skip (or fail under CI=true) when no RabbitMQ answers on 127.0.0.1:5672."""
    if not broker_answers():
        message = "no RabbitMQ at 127.0.0.1:5672 (python3 dev.py test starts one)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def fresh_vhost(organ_ids: list[str], **options: object) -> Iterator[vbdt.exchange.broker.Provisioned]:  # type: ignore[name-defined]
    """Provision a fresh ``vbdt-test-<random>`` vhost on the shared RabbitMQ, then delete it and its users.

    RabbitMQ users are cluster-wide: the users made here are ``vbdt-test-<random>/<OrganId>``, a
    name no deployment has, and they are gone afterwards."""
    from vbdt.exchange.broker import deprovision, provision

    require_broker()
    vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
    try:
        yield provision(organ_ids, vhost=vhost, host=AMQP_HOST, port=AMQP_PORT, **options)  # type: ignore[arg-type]
    finally:
        deprovision(vhost)


def admin_url(vhost: str) -> str:
    """The operator's (guest's) URL on a test vhost."""
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"


@pytest.fixture(scope="session")
def exchange_pki(tmp_path_factory: pytest.TempPathFactory, example_directory: vbdt.Directory):  # type: ignore[no-untyped-def]
    from vbdt.trust.pki import TestPki

    pki = TestPki.create([(o, example_directory.get(o).name) for o in EXCHANGE_AGENCIES])
    folder = tmp_path_factory.mktemp("exchange-pki")
    pki.write(folder)
    return pki, folder


class Pump:
    """An agency's inbox loop running in the background: items land in a queue for the test."""

    def __init__(self, agency: vbdt.exchange.client.Agency) -> None:  # type: ignore[name-defined]
        self.agency = agency
        self.items: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.agency.inbox():
            await self.items.put(item)

    async def take(self, n: int = 1, timeout: float = 15.0) -> list:  # type: ignore[type-arg]
        out = []
        for _ in range(n):
            out.append(await asyncio.wait_for(self.items.get(), timeout))
        return out

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass


@dataclass
class Network:
    """Agencies on one exchange (embedded or RabbitMQ), each with its own transport and ledger."""

    kind: str
    connect: Callable[[str], Awaitable[object]]
    admin: object
    pki: object
    folder: Path
    directory: vbdt.Directory
    tmp: Path
    pumps: list[Pump] = field(default_factory=list)
    created: list = field(default_factory=list)  # type: ignore[type-arg]

    async def agency(self, organ_id: str, *, pump: bool = True, **options: object):  # type: ignore[no-untyped-def]
        from vbdt.exchange.client import Agency
        from vbdt.exchange.ledger import SqliteLedger

        transport = await self.connect(organ_id)
        agency = Agency(
            organ_id, transport=transport, ledger=SqliteLedger(self.tmp / f"{organ_id}.db"),
            key=self.pki.agencies[organ_id], trust=self.folder / "ca.pem", directory=self.directory,  # type: ignore[attr-defined]
            person=self.pki.signer, seal=self.pki.agencies[organ_id], **options,  # type: ignore[attr-defined, arg-type]
        )
        await agency.open()
        self.created.append(agency)
        if pump:
            self.pumps.append(Pump(agency))
        return agency

    def pump(self, agency: object) -> Pump:
        return next(p for p in self.pumps if p.agency is agency)

    async def eventually(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)


@pytest.fixture(params=["memory", "amqp"])
async def network(request: pytest.FixtureRequest, exchange_pki, example_directory: vbdt.Directory, tmp_path: Path) -> AsyncIterator[Network]:  # type: ignore[no-untyped-def]
    pki, folder = exchange_pki
    with contextlib.ExitStack() as cleanup:
        async for net in _network(request.param, cleanup, pki, folder, example_directory, tmp_path):
            yield net


async def _network(kind: str, cleanup: contextlib.ExitStack, pki, folder: Path, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                   tmp_path: Path) -> AsyncIterator[Network]:
    if kind == "memory":
        from vbdt.exchange.memory import MemoryBroker

        broker = MemoryBroker()
        broker.provision(EXCHANGE_AGENCIES)

        async def connect(organ_id: str) -> object:
            return broker.connect(organ_id)

        admin: Transport = broker.connect("admin")
    else:
        from vbdt.exchange.amqp import AmqpTransport

        done = cleanup.enter_context(fresh_vhost(EXCHANGE_AGENCIES))

        async def connect(organ_id: str) -> object:
            return await AmqpTransport.connect(done.urls[organ_id], declare=False)

        admin = await AmqpTransport.connect(admin_url(done.vhost))
    net = Network(kind, connect, admin, pki, folder, example_directory, tmp_path)
    yield net
    for p in net.pumps:
        await p.stop()
    for agency in net.created:
        await agency.close()
    await admin.close()


async def drain_dead_letters(admin, n: int, timeout: float = 15.0) -> list[tuple[bytes, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """Collect dead letters from the operator's transport until there are ``n`` (or fail)."""
    dead: list[tuple[bytes, dict[str, str]]] = []
    for _ in range(int(timeout / 0.05)):
        dead.extend(await admin.dead_letters())
        if len(dead) >= n:
            return dead
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(dead)} dead letters, expected {n}")


@pytest.fixture(scope="module")
def h14_pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A test PKI for UBND Tỉnh Cao Bằng and a signing person, written to a folder."""
    from vbdt.trust.pki import TestPki

    pki = TestPki.create([(H14, "UBND Tinh Cao Bang")])
    folder = tmp_path_factory.mktemp("pki")
    pki.write(folder)
    return pki, folder
