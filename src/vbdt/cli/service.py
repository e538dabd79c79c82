"""The loop of a command that runs as a service (``vbdt listen``, ``vbdt serve``).

Open the resource (an agency, a host); while the broker is away, try again with capped backoff,
forever or for ``give_up_after`` seconds; when what was opened is lost, open it afresh; on SIGTERM
or SIGINT finish what is in hand and return. A refused login never waits: the password or the
permissions will not change by themselves (exit 77).

With ``retention_days``, while connected, the ledgers of what was opened drop the bodies of
received items acknowledged that many days ago: once when connected, then every
:data:`RETENTION_EVERY` seconds (``retention`` events; a ledger that fails is logged, the service
goes on).
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
import signal
from typing import TYPE_CHECKING, Generic, TypeVar

from vbdt.cli.logs import event
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import AccessRefused, LedgerError, TransportError
from vbdt.exchange.waiting import wait_event

if TYPE_CHECKING:
    from vbdt.exchange.ledger import Ledger
    from vbdt.exchange.transport import ReconnectPolicy


R = TypeVar("R")

__all__ = ["RETENTION_EVERY", "Service"]

RETENTION_EVERY = 3600.0
"""Seconds between two retention passes of a running service."""


class Service(abc.ABC, Generic[R]):
    """Run :meth:`use` on what :meth:`open` gives, again and again, until stopped."""

    lost: tuple[type[Exception], ...] = (TransportError,)
    """What ending :meth:`use` means "open it afresh" (anything else ends the service)."""

    def __init__(self, policy: ReconnectPolicy, give_up_after: float | None, *, retention_days: int | None = None) -> None:
        self.policy = policy
        self.give_up_after = give_up_after
        self.retention_days = retention_days
        self.seen = 0
        self.stop = asyncio.Event()

    @abc.abstractmethod
    async def open(self) -> R:
        """Connect; a :class:`~vbdt.errors.TransportError` is retried with backoff."""

    @abc.abstractmethod
    async def use(self, resource: R) -> bool:
        """Serve until stopped (``False``) or done (``True``: the service ends)."""

    @abc.abstractmethod
    async def close(self, resource: R) -> None:
        """Release what :meth:`open` gave."""

    @abc.abstractmethod
    def stopped(self) -> None:
        """Log the last line."""

    def ledgers(self, resource: R) -> list[Ledger]:
        """The ledgers retention applies to (none unless a service says)."""
        return []

    async def retain(self, resource: R, *, quiet: bool = False) -> None:
        """One retention pass over :meth:`ledgers`: bodies of items acknowledged ``retention_days`` ago go
        (logged; with ``quiet`` only when something went)."""
        if self.retention_days is None:
            return
        before = dt.datetime.now(VIETNAM_TZ) - dt.timedelta(days=self.retention_days)
        items = bodies = size = 0
        for ledger in self.ledgers(resource):
            try:
                dropped = await asyncio.to_thread(ledger.drop_bodies, before)
            except LedgerError as exc:  # the next store into that ledger reports it; receiving goes on
                event(logging.WARNING, "retention_failed", "retention: %s", exc, reason=str(exc))
                continue
            items, bodies, size = items + len(dropped.items), bodies + dropped.bodies, size + dropped.bytes
        if quiet and not items:
            return
        event(logging.INFO, "retention", "retention: dropped %d bodies (%d bytes) of %d items acknowledged before %s",
              bodies, size, items, before.isoformat(timespec="seconds"), items=items, bodies=bodies, bytes=size,
              before=before.isoformat(timespec="seconds"), days=self.retention_days)

    async def _retaining(self, resource: R) -> None:
        while True:
            await asyncio.sleep(RETENTION_EVERY)
            await self.retain(resource, quiet=True)

    async def run(self) -> None:
        """Serve with SIGTERM/SIGINT handled, then log :meth:`stopped`."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for number in signals:
            loop.add_signal_handler(number, self._on_signal, number.name)
        try:
            await self._serve()
        finally:
            for number in signals:
                loop.remove_signal_handler(number)
        self.stopped()

    def _on_signal(self, name: str) -> None:
        if not self.stop.is_set():
            event(logging.INFO, "stopping", "%s received: finishing what is in hand, then stopping", name, signal=name)
        self.stop.set()

    async def _serve(self) -> None:
        failures, down_since = 0, None
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            try:
                resource = await self.open()
            except AccessRefused:
                raise
            except TransportError as exc:
                failures += 1
                down_since = down_since if down_since is not None else loop.time()
                if self.give_up_after is not None and loop.time() - down_since >= self.give_up_after:
                    raise
                delay = self.policy.delay(failures)
                event(logging.WARNING, "broker_unavailable", "broker unavailable (%s); attempt %d, next in %.1f s",
                      exc, failures, delay, attempt=failures, retry_in=round(delay, 3))
                await self.pause(delay)
                continue
            failures, down_since = 0, None
            retaining = None
            try:
                if self.retention_days is not None:  # the first pass before serving: it always says what it did
                    await self.retain(resource)
                    retaining = asyncio.ensure_future(self._retaining(resource))
                if await self.use(resource):
                    return
            except AccessRefused:
                raise
            except self.lost as exc:
                event(logging.WARNING, "inbox_lost", "inbox interrupted (%s); connecting again", exc)
                await self.pause(self.policy.delay(1))
            finally:
                if retaining is not None:
                    retaining.cancel()
                    await asyncio.gather(retaining, return_exceptions=True)
                await self.close(resource)

    async def pause(self, seconds: float) -> None:
        """Sleep, unless stopped first."""
        await wait_event(self.stop, seconds)
