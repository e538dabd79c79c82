"""Logs of a command that runs as a service (``vbdt listen``): timestamped lines, or one JSON object a line.

Every record of the ``vbdt.*`` loggers from INFO up goes to stderr while :func:`service_logging`
is active: text (``2026-05-04T09:15:02+07:00 INFO vbdt.listen: …``) or ``--log-format json``
(``{"time": …, "level": …, "logger": …, "message": …}`` plus the record's fields, such as
``event``, ``document_id``, ``sender``). Fields are given as ``extra={"fields": {...}}``.

:class:`LoggedTransport` wraps a transport so that every dead letter is logged with its reason,
whatever part of the client decided it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import click

from vbdt.exchange.transport import (
    DeadLetter,
    Delivery,
    InboxStatus,
    OnWaiting,
    Outgoing,
    PublishOutcome,
    Transport,
    WrappedDelivery,
)

__all__ = ["LoggedTransport", "event", "service_logging"]

log = logging.getLogger("vbdt.listen")


def _time(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, Mapping) else {}


class _Handler(logging.Handler):
    """Writes each record as one line on the current stderr (click's, so that test runners capture it)."""

    def __init__(self, json_lines: bool) -> None:
        super().__init__(logging.INFO)
        self.json_lines = json_lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split())
            if self.json_lines:
                line = json.dumps({"time": _time(record), "level": record.levelname, "logger": record.name,
                                   "message": message, **_fields(record)}, ensure_ascii=False, default=str)
            else:
                line = f"{_time(record)} {record.levelname} {record.name}: {message}"
            click.echo(line, err=True)
        except Exception:  # logging must never be the failure
            self.handleError(record)


@contextlib.contextmanager
def service_logging(log_format: str) -> Iterator[None]:
    """Route the ``vbdt`` loggers (INFO and up) to stderr as text or JSON lines, for the duration."""
    root = logging.getLogger("vbdt")
    handler = _Handler(log_format == "json")
    before = (root.level, root.propagate)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False  # not also as the one-line warnings of the other commands
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        root.propagate = before[1]


def event(level: int, what: str, message: str, *args: object, **fields: object) -> None:
    """Log ``message`` on ``vbdt.listen`` with ``event=what`` and ``fields`` (shown in JSON lines)."""
    log.log(level, message, *args, extra={"fields": {"event": what, **fields}})


class _LoggedDelivery(WrappedDelivery):
    """Logs the dead letter it is given."""

    async def dead_letter(self, reason: str) -> None:
        await self._inner.dead_letter(reason)
        event(logging.WARNING, "dead_letter", "dead-lettered %s from %s: %s", self.message_id[:64],
              self.broker_user or "?", reason, message_id=self.message_id[:255], publisher=self.broker_user, reason=reason)


class LoggedTransport(Transport):
    """A transport that logs every dead letter its deliveries are given; everything else passes through."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.user = inner.user

    async def declare_inbox(self, organ_id: str) -> None:
        await self.inner.declare_inbox(organ_id)

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[PublishOutcome]:
        return await self.inner.publish_many(messages)

    async def consume(self, organ_id: str, *, prefetch: int = 32, on_waiting: OnWaiting | None = None) -> AsyncIterator[Delivery]:
        deliveries = self.inner.consume(organ_id, prefetch=prefetch, on_waiting=on_waiting)
        try:
            async for delivery in deliveries:
                yield _LoggedDelivery(delivery)
        finally:
            closing = getattr(deliveries, "aclose", None)
            if closing is not None:
                await closing()

    async def inbox_status(self, organ_id: str) -> InboxStatus:
        return await self.inner.inbox_status(organ_id)

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        return await self.inner.dead_letters()

    async def peek_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self.inner.peek_dead_letters(limit)

    async def replay_dead_letter(self, message_id: str) -> DeadLetter:
        return await self.inner.replay_dead_letter(message_id)

    async def purge_dead_letters(self) -> int:
        return await self.inner.purge_dead_letters()

    async def close(self) -> None:
        await self.inner.close()
