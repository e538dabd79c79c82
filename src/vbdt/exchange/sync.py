"""A synchronous client for thread-based applications (Django, Flask, scripts).

One event loop runs in a background thread for the life of the client; every call is handed to
it and waits for the result, so any number of threads may share one client and the semantics are
those of :class:`~vbdt.exchange.client.AgencyClient` (no ``asyncio.run`` per call, no connection
per request)::

    client = SyncAgencyClient.connect(lambda: make_async_client())   # a coroutine function
    result = client.send(doc, to=["000.00.00.H54/**:commune"])
    for item in client.inbox(timeout=5):                             # ends after 5 s with nothing
        register(item.document)
        client.answer(item, "accept")
        client.ack(item)
    client.close()

The async client is built inside the loop's thread (its transport belongs to that loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from vbdt.edxml.model import Document, StaffInfo
from vbdt.errors import UsageError
from vbdt.exchange.answers import InboxItem
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import Delivered, HistoryEvent
from vbdt.exchange.outbox import SendResult
from vbdt.exchange.waiting import within

__all__ = ["SyncAgencyClient"]

T = TypeVar("T")

_ANSWERS = {"accept", "assign", "processing", "complete", "reject", "agree", "refuse"}


class SyncAgencyClient:
    """:class:`AgencyClient` behind blocking, thread-safe methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, client: AgencyClient) -> None:
        self._loop = loop
        self._thread = thread
        self.client = client
        """The async client (use its methods only through :meth:`call`)."""

    @classmethod
    def connect(cls, build: Callable[[], Awaitable[AgencyClient]]) -> SyncAgencyClient:
        """Start the loop thread, build the async client in it, open it and consume in the background."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="vbdt-sync-client", daemon=True)
        thread.start()

        async def start() -> AgencyClient:
            client = await build()
            await client.open()
            client.serve()
            return client

        try:
            client = asyncio.run_coroutine_threadsafe(start(), loop).result()
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            raise
        return cls(loop, thread, client)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the client's loop and wait for its result (its exception is raised here)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise UsageError("a SyncAgencyClient method was called from its own loop: use the async client there")
        if timeout is not None:
            # The timeout runs on the loop, so the timed-out coroutine has finished (cancelled) when
            # TimeoutError is raised here: an async generator it was advancing can then be closed.
            coroutine = within(coroutine, timeout)
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _sync(self, function: Callable[[], T]) -> T:
        async def run() -> T:
            return function()

        return self.call(run())

    # -- sending -------------------------------------------------------------------------------
    def send(self, document: Document, to: Sequence[str] | None = None) -> SendResult:
        """See :meth:`AgencyClient.send`."""
        return self.call(self.client.send(document, to))

    def resend(self, document_id: str, to: Sequence[str] | None = None) -> SendResult:
        """See :meth:`AgencyClient.resend`: a new delivery attempt to recipients that rejected the document."""
        return self.call(self.client.resend(document_id, to))

    def recall(self, document_id: str, reason: str) -> list[str]:
        """See :meth:`AgencyClient.recall`."""
        return self.call(self.client.recall(document_id, reason))

    def status(self, document_id: str) -> list[Delivered]:
        """See :meth:`AgencyClient.status`."""
        return self._sync(lambda: self.client.status(document_id))

    def history(self, document_id: str, agency: str | None = None) -> list[HistoryEvent]:
        """See :meth:`AgencyClient.history`."""
        return self._sync(lambda: self.client.history(document_id, agency))

    # -- receiving -----------------------------------------------------------------------------
    def inbox(self, timeout: float = 5.0) -> Iterator[InboxItem]:
        """Items not acknowledged yet, as :meth:`AgencyClient.inbox`; ends when none came for ``timeout`` seconds."""
        items = self.client.inbox()
        try:
            while True:
                try:
                    yield self.call(anext(items), timeout)  # type: ignore[arg-type]
                except (FutureTimeout, TimeoutError, StopAsyncIteration):
                    return
        finally:
            self.call(items.aclose())  # type: ignore[attr-defined]

    def received(self, **filters: Any) -> list[InboxItem]:
        """See :meth:`AgencyClient.received`."""
        return self._sync(lambda: self.client.received(**filters))

    def item(self, sender: str, document_id: str, kind: str = "document") -> InboxItem:
        """See :meth:`AgencyClient.item`."""
        return self._sync(lambda: self.client.item(sender, document_id, kind))

    def answer(self, item: InboxItem, answer: str, note: str | None = None, *, staff: StaffInfo | None = None) -> None:
        """Answer a received item: ``accept``, ``assign``, ``processing``, ``complete``, ``reject``
        (``note`` is the reason), ``agree`` or ``refuse`` (a recall, with the reason)."""
        if answer not in _ANSWERS:
            raise UsageError(f"no answer {answer!r}: one of {', '.join(sorted(_ANSWERS))}")
        method = getattr(item, answer)
        if answer in {"accept", "agree"}:
            if note is not None:
                raise UsageError(f"{answer} carries no note")
            self.call(method(staff=staff))
        else:
            self.call(method(note if note is not None else "", staff=staff))

    def ack(self, item: InboxItem) -> None:
        """See :meth:`InboxItem.ack`."""
        self.call(item.ack())

    def close(self) -> None:
        """Close the client and stop the loop thread."""
        try:
            self.call(self.client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> SyncAgencyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
