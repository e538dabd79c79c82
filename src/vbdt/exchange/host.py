"""Many agencies in one process: a few broker connections read their inboxes, each keeps its client and ledger.

A province that runs its communes' mailboxes centrally needs no process per commune::

    agencies = [HostedAgency(o, key=keys[o], ledger=f"state/{o}.db", url=urls[o]) for o in communes]
    async with AgencyHost(host_url, agencies, trust="ca.pem", directory=d, on_item=register) as host:
        await host.client("000.00.01.H14").send(doc)        # each agency is a full AgencyClient
        await host.wait()                                   # until stop() (SIGTERM in `vbdt serve`)

Each hosted agency is an :class:`~vbdt.exchange.client.AgencyClient` with its own keys, ledger,
receipts, outbox and hooks; what they share is the process (the imported libraries, the schemas,
the directory, the trust anchors read once) and **one reading connection** on which every inbox
has its consumer. ``on_item`` (sync or async, per host or per agency) gets each received item and the
item is acknowledged when it returns; without it, read :meth:`AgencyClient.inbox` of each client.

Identity on the broker. Receivers bind every package to the broker user that published it
(``user_id``, checked by RabbitMQ against the connection's login). One connection is one login,
and RabbitMQ lets a connection stamp another user's name only with the ``impersonator`` tag, which
is all or nothing: such a host could publish as *any* agency of the vhost, and the binding would
no longer tell receivers who published. So the host splits the two directions:

- **reading** goes through the one connection, logged in as the host's own user
  ``<vhost>/hosts/<name>`` (:func:`vbdt.exchange.broker.provision_host`), which may read exactly
  the hosted inboxes and may write and configure nothing;
- **publishing** (documents, the signed 01…06, refusal reports) goes through each agency's own
  user (its URL from ``vbdt broker provision``), on a connection opened when that agency has
  something to publish and closed after ``idle_close`` seconds without: receivers see exactly
  what ``vbdt listen`` would publish, and nothing changes for any other agency.

On the embedded broker the same split holds (:meth:`~vbdt.exchange.memory.MemoryBroker.provision_host`).

More agencies than one connection can read. Each inbox's consumer is a channel, and AMQP caps the
channels of a connection (RabbitMQ's ``channel_max`` is 2,047 by default): the communes of the
whole country (3,321) do not fit on one. The host therefore opens one reading connection per
``agencies_per_connection`` agencies (1,000 by default), all logged in as the host's user, and
gives each the next agencies in the order given (stable from one start to the next). Each reading
connection reconnects by itself under the reconnect policy: a lost one interrupts only its own
agencies' inboxes, the others go on. Up to ``agencies_per_connection`` agencies, it is the one
connection described above.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vbdt.directory.agencies import Directory
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.errors import AccessRefused, TransportError, UsageError
from vbdt.exchange.answers import InboxItem
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.connect import connect
from vbdt.exchange.ledger import Ledger, SqliteLedger
from vbdt.exchange.receiving import OnReceipt, OnRefused
from vbdt.exchange.routing import dead_letter_report
from vbdt.exchange.transport import (
    DEFAULT_RECONNECT,
    DeadLetter,
    Delivery,
    InboxStatus,
    OnWaiting,
    Outgoing,
    PublishOutcome,
    ReconnectPolicy,
    Transport,
    WrappedDelivery,
)
from vbdt.exchange.workers import Workers
from vbdt.trust.keys import SigningKey
from vbdt.trust.packaging import PdfPolicy

__all__ = ["DEFAULT_AGENCIES_PER_CONNECTION", "AgencyHost", "HostedAgency", "HostedTransport", "OnItem",
           "check_agencies_per_connection"]

log = logging.getLogger("vbdt.exchange.host")

OnItem = Callable[[AgencyClient, InboxItem], "Awaitable[None] | None"]
"""Called with the agency's client and each item it received; the item is acknowledged when it
returns, and handed again after a restart when it raises."""

Opener = Callable[[str], Awaitable[Transport]]
"""Opens the transport of a URL (:func:`~vbdt.exchange.connect.connect` by default)."""

OPENING = 8
"""Publishing connections a host opens at once (each is a TCP and AMQP handshake and a login the
broker checks): the others wait, their answers kept in their outboxes meanwhile."""
DEFAULT_AGENCIES_PER_CONNECTION = 1_000
"""Hosted inboxes read on one connection: well under RabbitMQ's default ``channel_max`` (2,047),
which the consumer channels, the status probes and the publishing channel share."""


def check_agencies_per_connection(value: object, where: str = "agencies_per_connection") -> int:
    """``value`` as a number of agencies per reading connection (an int of at least 1), else a UsageError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{where} must be a whole number of agencies of at least 1, not {value!r}")
    return value


@dataclass(frozen=True)
class HostedAgency:
    """One agency the host runs: its identity, keys, ledger and the URL it publishes with."""

    organ_id: str
    key: SigningKey
    """The agency key (signs envelopes and receipts)."""
    ledger: str | Path | Ledger
    """Its ledger: a path (an :class:`~vbdt.exchange.ledger.SqliteLedger` is opened there) or a ledger."""
    url: str
    """The agency's own broker URL (``amqp://<vhost>%2F<OrganId>:…``, ``memory://<OrganId>@NAME``):
    what it publishes carries its own user, as receivers require."""
    person: SigningKey | None = None
    seal: SigningKey | None = None
    on_item: OnItem | None = None
    """This agency's handler; the host's ``on_item`` when ``None``."""
    on_receipt: OnReceipt | None = None
    on_refused: OnRefused | None = None


class _Publisher:
    """One agency's publishing connection, opened on demand and closed when idle."""

    def __init__(self, organ_id: str, url: str, opener: Opener, opening: asyncio.Semaphore) -> None:
        self.organ_id = organ_id
        self.url = url
        self._opener = opener
        self._opening = opening  # shared by the host's agencies
        self._transport: Transport | None = None
        self._lock = asyncio.Lock()
        self._busy = 0
        self._last = 0.0

    @property
    def open(self) -> bool:
        """A connection is open now."""
        return self._transport is not None

    @contextlib.asynccontextmanager
    async def using(self) -> AsyncIterator[Transport]:
        """The open transport, held for the duration of the block (never closed under a publish)."""
        self._busy += 1
        try:
            async with self._lock:
                if self._transport is None:
                    # A directive to every hosted agency makes each answer at once: thousands of
                    # connections opened together time out on the broker; a few at a time get through.
                    async with self._opening:
                        self._transport = await self._opener(self.url)
                    log.debug("%s: publishing connection opened", self.organ_id)
                transport = self._transport
            yield transport
        finally:
            self._busy -= 1
            self._last = asyncio.get_running_loop().time()

    async def close_if_idle(self, idle: float) -> bool:
        """Close the connection when nothing used it for ``idle`` seconds; whether it was closed."""
        if self._transport is None or self._busy or asyncio.get_running_loop().time() - self._last < idle:
            return False
        async with self._lock:
            if self._busy or self._transport is None:
                return False
            transport, self._transport = self._transport, None
        await transport.close()
        log.debug("%s: idle publishing connection closed", self.organ_id)
        return True

    async def close(self) -> None:
        """Close the connection now (idempotent)."""
        async with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()


class _HostedDelivery(WrappedDelivery):
    """A delivery read on the host's connection whose dead-letter report is published by the agency."""

    def __init__(self, inner: Delivery, publisher: _Publisher) -> None:
        super().__init__(inner)
        self._publisher = publisher

    async def dead_letter(self, reason: str) -> None:
        # The report goes out as the agency (the host may publish nothing), then the original is
        # acked: a crash in between leaves a duplicate report, never a loss (as AmqpDelivery).
        async with self._publisher.using() as transport:
            await transport.publish(dead_letter_report(self._inner, reason))
        await self._inner.ack()
        log.warning("%s: dead-lettered %s from %s: %s", self._publisher.organ_id, self.message_id[:64],
                    self.broker_user or "?", reason)


class HostedTransport(Transport):
    """One hosted agency's view of the broker: its inbox read on the host's reading connection
    that serves it (``shared``), its messages published as itself. Closing it closes only its
    publishing connection."""

    def __init__(self, organ_id: str, shared: Transport, publisher: _Publisher,
                 on_denied: Callable[[AccessRefused], None] | None = None) -> None:
        self.organ_id = organ_id
        self.shared = shared
        self._publisher = publisher
        self._on_denied = on_denied
        self.user = organ_id

    async def declare_inbox(self, organ_id: str) -> None:
        # The topology is the operator's: check that the inbox is there for the host to read.
        await self.shared.inbox_status(organ_id)

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        try:
            async with self._publisher.using() as transport:
                return await transport.publish_many(messages)
        except TransportError as exc:  # its connection could not be opened: every message stays pending
            return [PublishOutcome(m, exc) for m in messages]

    async def consume(self, organ_id: str, *, prefetch: int = 32, on_waiting: OnWaiting | None = None) -> AsyncIterator[Delivery]:
        deliveries = self.shared.consume(organ_id, prefetch=prefetch, on_waiting=on_waiting)
        try:
            async for delivery in deliveries:
                yield _HostedDelivery(delivery, self._publisher)
        except AccessRefused as exc:
            # The host's user may not read this inbox: retrying cannot help, say so at once.
            if self._on_denied is not None:
                self._on_denied(exc)
            raise
        finally:
            closing = getattr(deliveries, "aclose", None)
            if closing is not None:  # now, not when the garbage collector gets to it: unacked ones go back
                await closing()

    async def inbox_status(self, organ_id: str) -> InboxStatus:
        return await self.shared.inbox_status(organ_id)

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        return await self.shared.dead_letters()  # the operator's; the host's user is refused

    async def peek_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self.shared.peek_dead_letters(limit)

    async def replay_dead_letter(self, message_id: str) -> DeadLetter:
        return await self.shared.replay_dead_letter(message_id)

    async def purge_dead_letters(self) -> int:
        return await self.shared.purge_dead_letters()

    async def close(self) -> None:
        await self._publisher.close()


class AgencyHost:
    """Agencies of one exchange served from one process and a few reading connections (see the module).

    ``url`` is the host's own broker URL (``<vhost>/hosts/<name>``, or an operator's); ``agencies``
    what to run. ``trust``, ``directory``, ``pdf_policy``, ``limits`` and ``prefetch`` are shared;
    ``on_item``, ``on_receipt`` and ``on_refused`` apply to every agency that names none of its own.
    ``workers`` sign and verify for every hosted agency: ``1`` one core (a small message's job on the
    event loop, others in a thread), ``n`` one pool of ``n``
    processes for the whole host (one per core; started with the host, stopped with it), or a
    :class:`~vbdt.exchange.workers.Workers` of the application's. ``agencies_per_connection``
    bounds the inboxes read on one connection (a UsageError below 1): more agencies than that are
    read on more connections, each serving the next ones in the order given.
    """

    def __init__(self, url: str, agencies: Iterable[HostedAgency], *, trust: str | Path, directory: Directory,
                 pdf_policy: PdfPolicy = "require", check_publisher: bool = True, prefetch: int = 8,
                 on_item: OnItem | None = None, on_receipt: OnReceipt | None = None, on_refused: OnRefused | None = None,
                 idle_close: float = 30.0, limits: Limits = DEFAULT_LIMITS, reconnect: ReconnectPolicy | None = None,
                 opener: Opener | None = None, workers: int | Workers = 1,
                 agencies_per_connection: int = DEFAULT_AGENCIES_PER_CONNECTION) -> None:
        self.url = url
        self.agencies_per_connection = check_agencies_per_connection(agencies_per_connection)
        self._workers = workers
        self.workers = workers if isinstance(workers, Workers) else Workers(workers)
        """Where the hosted agencies sign and verify (one pool for all)."""
        self.agencies = list(agencies)
        if not self.agencies:
            raise UsageError("a host needs at least one agency")
        seen: set[str] = set()
        for agency in self.agencies:
            if agency.organ_id in seen:
                raise UsageError(f"{agency.organ_id} is listed twice for this host")
            seen.add(agency.organ_id)
            directory.get(agency.organ_id)  # UnknownAgency, before anything is opened
        self.trust = Path(trust)
        self.directory = directory
        self.pdf_policy: PdfPolicy = pdf_policy
        self.check_publisher = check_publisher
        self.prefetch = prefetch
        self.on_item = on_item
        self.on_receipt = on_receipt
        self.on_refused = on_refused
        self.idle_close = idle_close
        self.limits = limits
        policy = reconnect or DEFAULT_RECONNECT
        self._opener: Opener = opener or (lambda u: connect(u, limits=limits, reconnect=policy))
        self._opening = asyncio.Semaphore(OPENING)
        self.shared: Transport | None = None
        """The first reading connection (the only one up to ``agencies_per_connection`` agencies); None when stopped."""
        self.readers: list[Transport] = []
        """The reading connections while started, the first serving the first ``agencies_per_connection`` agencies."""
        self._reader_of: dict[str, Transport] = {}
        self._clients: dict[str, AgencyClient] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._failure: BaseException | None = None

    # -- life ------------------------------------------------------------------------------
    async def __aenter__(self) -> AgencyHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, build and open every agency's client (keys checked, inbox there, outbox
        flushed), then consume every inbox in the background. On any failure what was opened is
        closed again and the error raised (:class:`~vbdt.errors.KeyFileError`,
        :class:`~vbdt.errors.CertificateRejected`, a :class:`~vbdt.errors.TransportError`...)."""
        if self.shared is not None:
            raise UsageError("this host is already started")
        self._stopped.clear()
        self._failure = None
        if not isinstance(self._workers, Workers) and self.workers.closed:  # started again after a stop
            self.workers = Workers(self._workers)
        per = self.agencies_per_connection
        self._opening = asyncio.Semaphore(OPENING)  # of this start's event loop
        try:
            await self._open_readers(-(-len(self.agencies) // per))
            for n, agency in enumerate(self.agencies):
                self._reader_of[agency.organ_id] = self.readers[n // per]
                self._clients[agency.organ_id] = self._client(agency, self._reader_of[agency.organ_id])
            await asyncio.gather(*(client.open() for client in self._clients.values()))
        except BaseException:
            await self.stop()
            raise
        for agency in self.agencies:
            client = self._clients[agency.organ_id]
            client.serve()
            handler = agency.on_item or self.on_item
            if handler is not None:
                self._tasks.append(asyncio.create_task(self._pump(client, handler), name=f"vbdt-host-{agency.organ_id}"))
        self._tasks.append(asyncio.create_task(self._close_idle(), name="vbdt-host-idle"))
        log.info("host serving %d agencies on %d connection%s as %s", len(self._clients), len(self.readers),
                 "" if len(self.readers) == 1 else "s", self.readers[0].user)

    async def _open_readers(self, count: int) -> None:
        """Open ``count`` reading connections as the host's user; on a failure close those opened and raise."""
        opening = [asyncio.ensure_future(self._opener(self.url)) for _ in range(count)]
        try:
            await asyncio.wait(opening)
        finally:
            for task in opening:
                task.cancel()  # only those still connecting when start() itself was cancelled
            # Kept in order (agency n reads on reader n // agencies_per_connection); the caller's stop() closes them.
            self.readers = [t.result() for t in opening if t.done() and not t.cancelled() and t.exception() is None]
            self.shared = self.readers[0] if self.readers else None
        for task in opening:
            if (error := task.exception()) is not None:
                raise error

    def _client(self, agency: HostedAgency, shared: Transport) -> AgencyClient:
        ledger = agency.ledger if isinstance(agency.ledger, Ledger) else SqliteLedger(agency.ledger)
        transport = HostedTransport(agency.organ_id, shared, _Publisher(agency.organ_id, agency.url, self._opener, self._opening),
                                    on_denied=self._fail)
        try:
            return AgencyClient(agency.organ_id, transport=transport, ledger=ledger, key=agency.key, trust=self.trust,
                                directory=self.directory, person=agency.person, seal=agency.seal, pdf_policy=self.pdf_policy,
                                check_publisher=self.check_publisher, prefetch=self.prefetch,
                                on_receipt=agency.on_receipt or self.on_receipt, on_refused=agency.on_refused or self.on_refused,
                                limits=self.limits, workers=self.workers)
        except BaseException:
            ledger.close()
            raise

    async def stop(self) -> None:
        """Stop every consumer (deliveries in hand come back later), close every client, its
        publishing connection and ledger, then the reading connections (idempotent)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        clients, self._clients = list(self._clients.values()), {}
        results = await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s: not closed cleanly: %s", client.organ_id, result)
        readers, self.readers, self.shared = self.readers, [], None
        self._reader_of.clear()
        results = await asyncio.gather(*(reader.close() for reader in readers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("host: a reading connection was not closed cleanly: %s", result)
        if not isinstance(self._workers, Workers):
            await self.workers.close()
        self._stopped.set()

    async def wait(self) -> None:
        """Until :meth:`stop`, or until an inbox gives up (the broker away for longer than the
        transport's reconnect policy, the ledger failing): then its error is raised, and the
        caller stops the host and starts it again (``vbdt serve`` does)."""
        await self._stopped.wait()
        if self._failure is not None:
            raise self._failure

    # -- what the application uses --------------------------------------------------------
    @property
    def organ_ids(self) -> list[str]:
        """The agencies this host runs, in the order given."""
        return [a.organ_id for a in self.agencies]

    def client(self, organ_id: str) -> AgencyClient:
        """The client of one hosted agency (send, answer, query its ledger, iterate its inbox)."""
        try:
            return self._clients[str(organ_id)]
        except KeyError:
            state = "is not started" if self.shared is None else f"runs no agency {organ_id}"
            raise UsageError(f"this host {state}") from None

    def clients(self) -> list[AgencyClient]:
        """Every hosted agency's client."""
        return list(self._clients.values())

    @property
    def reading_connections(self) -> int:
        """How many reading connections the host has open (0 when stopped)."""
        return len(self.readers)

    def reader_of(self, organ_id: str) -> Transport:
        """The reading connection that serves ``organ_id``'s inbox (a UsageError when not started or not hosted)."""
        self.client(organ_id)  # a UsageError when not started or not hosted
        return self._reader_of[str(organ_id)]

    @property
    def publishing_connections(self) -> int:
        """How many agencies have a publishing connection open right now."""
        return sum(1 for c in self._clients.values() if isinstance(c.transport, HostedTransport) and c.transport._publisher.open)

    def _fail(self, error: BaseException) -> None:
        """Make :meth:`wait` raise ``error`` (the first one wins)."""
        log.error("host: %s", error)
        self._failure = self._failure or error
        self._stopped.set()

    async def _pump(self, client: AgencyClient, handler: OnItem) -> None:
        try:
            await self._handle_all(client, handler)
        except Exception as exc:
            self._fail(exc)

    async def _handle_all(self, client: AgencyClient, handler: OnItem) -> None:
        async for item in client.inbox():
            try:
                async with item:  # acknowledged when the handler returns
                    result = handler(client, item)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                log.exception("%s: the handler failed on %s %s from %s; it is handed again after a restart",
                              client.organ_id, item.kind, item.document_id, item.sender)

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_close / 4, 0.05))
            for client in list(self._clients.values()):
                transport = client.transport
                if isinstance(transport, HostedTransport):
                    try:
                        await transport._publisher.close_if_idle(self.idle_close)
                    except TransportError as exc:
                        log.debug("%s: closing an idle connection: %s", client.organ_id, exc)
