"""An exchange for tests: a small directory, a TEST-ONLY PKI written to a folder, and a broker —
the embedded one by default, or a fresh vhost on a RabbitMQ.

::

    exchange = TestExchange.embedded(tmp_path)                   # or TestExchange.rabbitmq(tmp_path, admin_url)
    async with exchange.peer("000.00.01.H14", "accept"), exchange.client("000.00.00.H14") as me:
        result = await me.send(make_document(exchange.directory, "000.00.00.H14", ["000.00.01.H14"]))
        await assert_status(me, result.document_id, "000.00.01.H14", "06", within=10)
    exchange.close()                                             # a RabbitMQ vhost and its users are deleted

Each agency connects as its own broker user (``memory://<OrganId>@<name>``, or the URL provisioning
made), so receivers check publishers as in production. :attr:`TestExchange.keys` is a folder as
``vbdt pki init`` writes it (``ca.pem``, ``<OrganId>.key.pem``/``.cert.pem``, ``signer.*.pem``):
hand it to the system under test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from vbdt.directory.agencies import AgencyRecord, Directory
from vbdt.edxml.resources import example_directory_path
from vbdt.errors import UsageError
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.connect import connect
from vbdt.exchange.ledger import SqliteLedger
from vbdt.exchange.transport import Transport
from vbdt.testing.peer import Behaviour, Peer
from vbdt.trust.keys import SigningKey
from vbdt.trust.pki import TestPki

__all__ = ["SMALL_DIRECTORY", "PkiFolder", "TestExchange", "small_directory"]

SMALL_DIRECTORY = (
    "000.00.00.G22",  # Văn phòng Chính phủ (central)
    "000.00.00.H14", "000.00.01.H14", "000.00.02.H14",  # Cao Bằng and two communes (two-level, since 2025)
    "000.00.00.H54", "000.00.01.H54", "000.01.01.H54", "000.02.01.H54",  # Thái Bình, a district, two communes
)
"""The agencies of :func:`small_directory`: the four levels, both shapes of a province."""


def small_directory(organ_ids: Iterable[str] = SMALL_DIRECTORY) -> Directory:
    """The agencies ``organ_ids`` of the example directory (each with its parents), as a directory of their own."""
    example = Directory.load(example_directory_path())
    wanted: dict[str, None] = {}
    for organ_id in organ_ids:
        record: AgencyRecord | None = example.get(organ_id)  # UnknownAgency for an OrganId the example lacks
        while record is not None and str(record.organ_id) not in wanted:
            wanted[str(record.organ_id)] = None
            record = example.get(record.parent) if record.parent is not None else None
    return Directory([example.get(o) for o in wanted], name="small directory")


@dataclass(frozen=True)
class PkiFolder:
    """A TEST-ONLY PKI and the folder it is written to, as ``vbdt pki init`` writes it."""

    pki: TestPki
    folder: Path

    @classmethod
    def create(cls, folder: Path, directory: Directory) -> PkiFolder:
        """A key for every agency of ``directory`` and one for a signing person, written to ``folder``."""
        # ECDSA P-256: generating a key takes milliseconds, RSA-2048 a tenth of a second or more
        pki = TestPki.create([(str(a.organ_id), a.name) for a in directory], kind="ec")
        pki.write(folder)
        return cls(pki, folder)

    @property
    def trust(self) -> Path:
        """The trust anchor (the test root CA)."""
        return self.folder / "ca.pem"

    def files(self, organ_id: str) -> tuple[Path, Path]:
        """The agency's key and certificate files."""
        if str(organ_id) not in self.pki.agencies:
            raise UsageError(f"{organ_id} has no key in this test PKI")
        return self.folder / f"{organ_id}.key.pem", self.folder / f"{organ_id}.cert.pem"


class TestExchange:
    """Agencies of a directory on one broker, each with a test key; see :mod:`vbdt.testing.exchange`."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, directory: Directory, keys: PkiFolder, urls: dict[str, str], *,
                 vhost: str | None = None, admin: str) -> None:
        self.folder = folder
        self.directory = directory
        self.pki = keys.pki
        self.urls = urls
        """OrganId → the URL its client connects with (its own broker user)."""
        self.vhost = vhost
        """The RabbitMQ vhost provisioned for this exchange (``None`` when embedded)."""
        self._admin = admin
        self.keys = keys.folder
        """The test PKI as ``vbdt pki init`` writes it; ``ca.pem`` is the trust anchor."""
        self.trust = keys.trust
        (folder / "ledgers").mkdir(parents=True, exist_ok=True)

    @classmethod
    def embedded(cls, folder: Path, directory: Directory | None = None, *, keys: PkiFolder | None = None) -> TestExchange:
        """An exchange on a new embedded broker (``memory://``), for ``directory`` (default: :func:`small_directory`),
        with the keys of ``keys`` (default: a new test PKI in ``folder``)."""
        from vbdt.exchange.memory import MemoryBroker

        directory = directory or small_directory()
        name = f"vbdt-test-{uuid.uuid4().hex[:12]}"
        ids = [str(a.organ_id) for a in directory]
        MemoryBroker.named(name).provision(ids)  # the operator's step: agencies may not create inboxes
        urls = {o: f"memory://{quote(o, safe='')}@{name}" for o in ids}
        keys = keys or PkiFolder.create(folder / "keys", directory)
        return cls(folder, directory, keys, urls, admin=f"memory://admin@{name}")

    @classmethod
    def rabbitmq(cls, folder: Path, admin_url: str, directory: Directory | None = None, *,
                 keys: PkiFolder | None = None) -> TestExchange:
        """An exchange on a fresh ``vbdt-test-<random>`` vhost of the RabbitMQ that ``admin_url`` (an
        operator's URL) reaches, provisioned through rabbitmqctl; :meth:`close` deletes the vhost and its users."""
        from vbdt.exchange.broker import provision

        parts = urlsplit(admin_url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise UsageError(f"{admin_url.rpartition('@')[2]!r} is not an AMQP URL (amqp://user:password@host:5672/)")
        directory = directory or small_directory()
        vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
        done = provision([str(a.organ_id) for a in directory], vhost=vhost, host=parts.hostname, port=parts.port or 5672,
                         admin=unquote(parts.username or "guest"))
        admin = parts._replace(path="/" + quote(vhost, safe="")).geturl()
        keys = keys or PkiFolder.create(folder / "keys", directory)
        return cls(folder, directory, keys, dict(done.urls), vhost=vhost, admin=admin)

    def url(self, organ_id: str) -> str:
        """The broker URL of an agency (with its password on RabbitMQ)."""
        try:
            return self.urls[str(organ_id)]
        except KeyError:
            raise UsageError(f"{organ_id} is not an agency of this test exchange") from None

    def key(self, organ_id: str) -> SigningKey:
        """The agency's test signing key."""
        self.url(organ_id)
        return self.pki.agencies[str(organ_id)]

    async def connect(self, organ_id: str) -> Transport:
        """A transport as the agency's own broker user."""
        return await connect(self.url(organ_id))

    async def operator(self) -> Transport:
        """A transport as the operator (reads dead letters, any inbox's status)."""
        return await connect(self._admin)

    async def open(self, organ_id: str, **options: Any) -> AgencyClient:
        """An opened client for the agency (its ledger in the exchange's folder); close it yourself."""
        transport = await self.connect(organ_id)
        try:
            key = self.key(organ_id)
            client = AgencyClient(organ_id, transport=transport, ledger=SqliteLedger(self.folder / "ledgers" / f"{organ_id}.db"),
                                  key=key, trust=self.trust, directory=self.directory, person=self.pki.signer, seal=key,
                                  **options)
        except BaseException:
            await transport.close()
            raise
        try:
            await client.open()
        except BaseException:
            await client.close()
            raise
        return client

    @contextlib.asynccontextmanager
    async def client(self, organ_id: str, **options: Any) -> AsyncIterator[AgencyClient]:
        """The agency's client, consuming in the background while the block runs (as ``async with AgencyClient``)."""
        client = await self.open(organ_id, **options)
        try:
            client.serve()
            yield client
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def peer(self, organ_id: str, behaviour: Behaviour | str = Behaviour.ACCEPT, *, delay: float | None = None,
                   **options: Any) -> AsyncIterator[Peer]:
        """A :class:`~vbdt.testing.peer.Peer` playing the agency, answering in the background while the block runs."""
        behaviour = Behaviour.of(behaviour)
        client = await self.open(organ_id, **options)
        try:
            async with Peer(client, behaviour, delay=delay) as peer:
                yield peer
        finally:
            await client.close()

    def close(self) -> None:
        """Delete the RabbitMQ vhost and its users (nothing to do for the embedded broker)."""
        if self.vhost is not None:
            from vbdt.exchange.broker import deprovision

            deprovision(self.vhost)
            self.vhost = None
