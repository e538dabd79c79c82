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


@pytest.fixture(scope="session")
def example_directory() -> vbdt.Directory:
    from vbdt.resources import example_directory_path

    return vbdt.Directory.load(example_directory_path())


@pytest.fixture
def directive(example_directory: vbdt.Directory) -> vbdt.Document:
    from vbdt.demo import build_directive

    return build_directive(example_directory, issued=date(2026, 11, 23))


# -- the exchange ---------------------------------------------------------------------------------

import asyncio  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

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


@pytest.fixture(scope="session")
def exchange_pki(tmp_path_factory: pytest.TempPathFactory, example_directory: vbdt.Directory):  # type: ignore[no-untyped-def]
    from vbdt.pki import TestPki

    pki = TestPki.create([(o, example_directory.get(o).name) for o in EXCHANGE_AGENCIES])
    folder = tmp_path_factory.mktemp("exchange-pki")
    pki.write(folder)
    return pki, folder


class Pump:
    """An agency's inbox loop running in the background: items land in a queue for the test."""

    def __init__(self, agency: vbdt.agency.Agency) -> None:  # type: ignore[name-defined]
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
        from vbdt.agency import Agency
        from vbdt.ledger import SqliteLedger

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
    if request.param == "memory":
        from vbdt.memory import MemoryBroker

        broker = MemoryBroker()

        async def connect(organ_id: str) -> object:
            return broker.connect(organ_id)

        admin = broker.connect("admin")
        vhost = None
    else:
        require_broker()
        from vbdt.amqp import AmqpTransport
        from vbdt.broker import provision

        vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
        urls = provision(EXCHANGE_AGENCIES, vhost=vhost, host=AMQP_HOST, port=AMQP_PORT)

        async def connect(organ_id: str) -> object:
            return await AmqpTransport.connect(urls[organ_id], declare=False)

        admin = await AmqpTransport.connect(f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}")
    net = Network(request.param, connect, admin, pki, folder, example_directory, tmp_path)
    yield net
    for p in net.pumps:
        await p.stop()
    for agency in net.created:
        await agency.transport.close()
        agency.ledger.close()
    await admin.close()  # type: ignore[attr-defined]
    if vhost:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, check=False)


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
    from vbdt.pki import TestPki

    pki = TestPki.create([(H14, "UBND Tinh Cao Bang")])
    folder = tmp_path_factory.mktemp("pki")
    pki.write(folder)
    return pki, folder
