"""The loop of a command that runs as a service (``vbdt listen``, ``vbdt serve``).

Open the resource (an agency, a host); while the broker is away, try again with capped backoff,
forever or for ``give_up_after`` seconds; when what was opened is lost, open it afresh; on SIGTERM
or SIGINT finish what is in hand and return. A refused login never waits: the password or the
permissions will not change by themselves (exit 77).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Generic, TypeVar

from vbdt.cli.logs import event
from vbdt.errors import AccessRefused, TransportError

if TYPE_CHECKING:
    from vbdt.exchange.transport import ReconnectPolicy


R = TypeVar("R")

__all__ = ["Service"]


class Service(abc.ABC, Generic[R]):
    """Run :meth:`use` on what :meth:`open` gives, again and again, until stopped."""

    lost: tuple[type[Exception], ...] = (TransportError,)
    """What ending :meth:`use` means "open it afresh" (anything else ends the service)."""

    def __init__(self, policy: ReconnectPolicy, give_up_after: float | None) -> None:
        self.policy = policy
        self.give_up_after = give_up_after
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
            try:
                if await self.use(resource):
                    return
            except AccessRefused:
                raise
            except self.lost as exc:
                event(logging.WARNING, "inbox_lost", "inbox interrupted (%s); connecting again", exc)
                await self.pause(self.policy.delay(1))
            finally:
                await self.close(resource)

    async def pause(self, seconds: float) -> None:
        """Sleep, unless stopped first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
