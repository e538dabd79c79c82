"""A test counterpart on the exchange: an agency that answers what it receives as a real one would,
or misbehaves on purpose, so that a vendor tests both its happy path and its error handling.

::

    async with AgencyClient(peer_id, ...) as client:
        peer = Peer(client, "accept")
        await peer.run(idle=10)              # answers every document 03, 04, 05, 06; recalls 15

The receiving client already verifies, stores and confirms arrival (a signed 01) before the peer
sees a document; what the peer adds is the clerk's part, chosen by :class:`Behaviour`:

============== =====================================================================================
behaviour      what the peer does with a document (and with a recall request, status 13)
============== =====================================================================================
accept         03 accepted, 04 assigned, 05 processing, 06 complete (recall: 15 agreed)
reject         02 with a reason (recall: 15)
slow           as accept, waiting ``delay`` seconds (default 5) before each answer
silent         nothing after the automatic 01: the clerk never acts (recall: nothing)
recall-refuse  03, 04, 05 and stays processing; a recall is refused with 16 and a reason
garbage        publishes bytes that are not edXML back to the sender, which must dead-letter them
               (binary noise, XML of another vocabulary, a truncated copy of the package, in turn)
============== =====================================================================================

Every answer is a :class:`PeerAction` in :attr:`Peer.actions` (and passed to ``on_action``);
what the peer's client refused (a package that did not verify: it answered 02 by itself) is
an action too, ``refused``, with the reason. A peer restarted over the same ledger goes on where
it stopped: items not acknowledged are handed again, and codes already sent are not sent twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, cast

from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import MessageRejected, UsageError
from vbdt.exchange.answers import InboxItem
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.outbox import message_id
from vbdt.exchange.routing import HEADER_FROM, HEADER_KIND, routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.exchange.waiting import wait_event

__all__ = ["DEFAULT_REASON", "SLOW_DELAY", "Behaviour", "OnAction", "Peer", "PeerAction", "garbage_for"]

log = logging.getLogger("vbdt.testing.peer")

DEFAULT_REASON = "Văn bản không thuộc thẩm quyền giải quyết của cơ quan (phản hồi của đơn vị thử nghiệm)"
"""The reason a rejecting or refusing peer gives (02, 16)."""
SLOW_DELAY = 5.0
"""Seconds the ``slow`` peer waits before each answer unless told otherwise."""


class Behaviour(StrEnum):
    """How a :class:`Peer` answers (the table in :mod:`vbdt.testing.peer`)."""

    ACCEPT = "accept"
    REJECT = "reject"
    SLOW = "slow"
    SILENT = "silent"
    RECALL_REFUSE = "recall-refuse"
    GARBAGE = "garbage"

    @classmethod
    def of(cls, value: str | Behaviour) -> Behaviour:
        """The behaviour named ``value``; :class:`~vbdt.errors.UsageError` lists the valid names."""
        try:
            return cls(value)
        except ValueError:
            raise UsageError(f"unknown peer behaviour {str(value)[:40]!r}: use one of {', '.join(b.value for b in cls)}") from None


@dataclass(frozen=True)
class PeerAction:
    """One thing the peer did."""

    sender: str
    """The agency the item came from (and the answer went to)."""
    document_id: str
    kind: str
    """``document``, ``update``, ``replace``, ``revoke``, ``recall``; ``refused`` for what the client refused."""
    action: str
    """The status code sent (``03``…``16``), ``garbage:<flavour>``, or ``refused``."""
    note: str | None
    """The reason of a 02 or 16, or of a refusal."""
    at: dt.datetime

    def to_dict(self) -> dict[str, str | None]:
        """As a JSON object (``vbdt peer --json`` prints one a line)."""
        return {"sender": self.sender, "document_id": self.document_id, "kind": self.kind, "action": self.action,
                "note": self.note, "at": self.at.isoformat()}


OnAction = Callable[[PeerAction], "Awaitable[None] | None"]
"""Called with each :class:`PeerAction` (sync or async)."""

_FLAVOURS = ("binary", "foreign-xml", "truncated")


def garbage_for(n: int, package: bytes) -> tuple[str, bytes]:
    """The ``n``-th piece of garbage (flavours in turn) sent in answer to ``package``: never edXML."""
    flavour = _FLAVOURS[n % len(_FLAVOURS)]
    if flavour == "binary":
        return flavour, bytes(range(256)) * 4
    if flavour == "foreign-xml":
        return flavour, b"<?xml version='1.0' encoding='UTF-8'?>\n<html><body><p>Not edXML</p></body></html>\n"
    # cut inside the root element: never well-formed, whatever the package
    return flavour, package[: max(1, min(len(package) // 2, 4096))]


class Peer:
    """A scripted agency over an open :class:`~vbdt.exchange.client.AgencyClient`.

    ``delay`` is the wait before each answer (``slow``: :data:`SLOW_DELAY` unless given);
    ``reason`` the reason of a 02 (``reject``) or a 16 (``recall-refuse``)."""

    def __init__(self, client: AgencyClient, behaviour: Behaviour | str = Behaviour.ACCEPT, *, delay: float | None = None,
                 reason: str = DEFAULT_REASON, on_action: OnAction | None = None) -> None:
        self.client = client
        self.behaviour = Behaviour.of(behaviour)
        if delay is not None and delay < 0:
            raise UsageError(f"a peer's delay is a number of seconds, not {delay}")
        self.delay = delay if delay is not None else (SLOW_DELAY if self.behaviour is Behaviour.SLOW else 0.0)
        if not reason.strip():
            raise UsageError("a peer that rejects or refuses needs a reason")
        self.reason = reason
        self.on_action = on_action
        self.actions: list[PeerAction] = []
        """Everything the peer did, in order."""
        self._changed = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._running: asyncio.Task[int] | None = None
        self._garbage = 0
        self._refusals = client.receiver.on_refused
        client.receiver.on_refused = self._refused  # the client answered 02 itself; the peer reports it

    @property
    def organ_id(self) -> str:
        """The agency the peer plays."""
        return self.client.organ_id

    def plan(self, item: InboxItem) -> list[str]:
        """The answers this peer gives to ``item``, in order (status codes or ``garbage``)."""
        b = self.behaviour
        if b is Behaviour.SILENT:
            return []
        if b is Behaviour.GARBAGE:
            return ["garbage"]
        if item.kind == "recall":
            return ["16"] if b is Behaviour.RECALL_REFUSE else ["15"]
        if b is Behaviour.REJECT:
            return ["02"]
        if b is Behaviour.RECALL_REFUSE:
            return ["03", "04", "05"]  # still handling it: which is why it refuses to give it back
        return ["03", "04", "05", "06"]

    async def handle(self, item: InboxItem) -> list[PeerAction]:
        """Answer one item as :meth:`plan` says, skipping codes already sent (a restart), then acknowledge it."""
        done: list[PeerAction] = []
        async with item:  # acknowledged only once every answer is out: a crash hands it again
            sent = {event.event for event in await asyncio.to_thread(item.history)}
            for step in self.plan(item):
                if step in sent:
                    continue
                if self.delay:
                    await asyncio.sleep(self.delay)
                note = await self._answer(item, step)
                action = step if step != "garbage" else note or step
                done.append(await self._record(PeerAction(item.sender, item.document_id, item.kind, action,
                                                          None if step == "garbage" else note, _now())))
        return done

    async def _answer(self, item: InboxItem, step: str) -> str | None:
        if step == "03":
            await item.accept()
        elif step == "04":
            await item.assign("Giao phòng chuyên môn xử lý")
        elif step == "05":
            await item.processing()
        elif step == "06":
            await item.complete("Đã xử lý xong")
        elif step == "02":
            await item.reject(self.reason)
            return self.reason
        elif step == "15":
            await item.agree()
        elif step == "16":
            await item.refuse(self.reason)
            return self.reason
        else:
            flavour, body = garbage_for(self._garbage, item.body)
            self._garbage += 1
            me = self.client.organ_id
            await self.client.transport.publish(Outgoing(
                routing_key(item.sender), body, message_id("garbage", item.document_id, me, str(self._garbage)),
                {HEADER_KIND: "status", HEADER_FROM: me}))
            return f"garbage:{flavour}"
        return None

    async def _refused(self, rejection: MessageRejected, publisher: str | None) -> None:
        await self._record(PeerAction(rejection.sender or publisher or "?", rejection.document_id or "?", "refused", "refused",
                                      f"{rejection.stage}: {rejection.reason}", _now()))
        if self._refusals is not None:
            result = self._refusals(rejection, publisher)
            if inspect.isawaitable(result):
                await result

    async def _record(self, action: PeerAction) -> PeerAction:
        self.actions.append(action)
        self._changed.set()
        log.info("peer %s: %s %s from %s%s", self.organ_id, action.action, action.document_id, action.sender,
                 f" ({action.note})" if action.note else "")
        if self.on_action is not None:
            try:
                result = self.on_action(action)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the application's hook never stops the peer
                log.exception("a peer's on_action hook failed")
        return action

    async def run(self, *, count: int | None = None, idle: float | None = None,
                  stop: asyncio.Event | None = None) -> int:
        """Answer items until ``count`` were taken, ``idle`` seconds pass without one, ``stop`` is set,
        or the client closes; wait for the answers in progress; return how many items were taken."""
        if count is not None and count < 1:
            raise UsageError("count must be at least 1")
        inbox = cast(AsyncGenerator[InboxItem, None], self.client.inbox())
        stopping: asyncio.Future[Literal[True]] | None = asyncio.ensure_future(stop.wait()) if stop is not None else None
        taken = 0
        following: asyncio.Future[InboxItem] | None = None
        try:
            while count is None or taken < count:
                following = asyncio.ensure_future(anext(inbox))
                waiting: set[asyncio.Future[InboxItem] | asyncio.Future[Literal[True]]] = {following}
                if stopping is not None:
                    waiting.add(stopping)
                finished, _ = await asyncio.wait(waiting, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
                if following not in finished:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                    break
                try:
                    item = following.result()
                except StopAsyncIteration:
                    break
                taken += 1
                task = asyncio.create_task(self._handle_logged(item))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
            await asyncio.gather(*self._handlers)
        finally:
            for waiter in (stopping, following):  # cancelled in the middle of a wait: nothing left behind
                if waiter is not None and not waiter.done():
                    waiter.cancel()
                    await asyncio.gather(waiter, return_exceptions=True)
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await inbox.aclose()
        return taken

    async def _handle_logged(self, item: InboxItem) -> None:
        try:
            await self.handle(item)
        except Exception:  # one item failing (the ledger, a bug) leaves it unacknowledged: handed again later
            log.exception("peer %s: %s from %s not answered", self.organ_id, item.document_id, item.sender)

    def start(self) -> None:
        """Run in the background (:meth:`run` with no bound) until :meth:`stop`."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self.run(), name=f"vbdt-peer-{self.organ_id}")

    async def stop(self) -> None:
        """Stop the background run: answers in progress are abandoned, their items handed again next time."""
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None

    async def __aenter__(self) -> Peer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, n: int, *, within: float = 10.0) -> list[PeerAction]:
        """Wait until the peer has done ``n`` actions in all; AssertionError naming what it did after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.actions) < n:
            if self._running is not None and self._running.done() and self._running.exception() is not None:
                raise AssertionError(f"peer {self.organ_id} stopped: {self._running.exception()}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"peer {self.organ_id} did {len(self.actions)} of {n} actions within {within} s: "
                                     + (", ".join(f"{a.action} {a.document_id}" for a in self.actions) or "nothing"))
            self._changed.clear()
            await wait_event(self._changed, min(left, 0.5))
        return list(self.actions)


def _now() -> dt.datetime:
    return dt.datetime.now(VIETNAM_TZ)
