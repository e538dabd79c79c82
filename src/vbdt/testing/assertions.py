"""Assertions on what a sender's ledger records: "recipient X reached status 03 within N seconds"."""

from __future__ import annotations

import asyncio
from typing import Protocol

from vbdt.edxml.codes import StatusCode
from vbdt.errors import UsageError
from vbdt.exchange.ledger import Delivered, HistoryEvent
from vbdt.exchange.receipts import PROGRESS, DeliveryState

__all__ = ["assert_status"]

_STATE_OF = {
    StatusCode.ARRIVED: DeliveryState.ARRIVED,
    StatusCode.REJECTED: DeliveryState.REJECTED,
    StatusCode.ACCEPTED: DeliveryState.ACCEPTED,
    StatusCode.ASSIGNED: DeliveryState.ASSIGNED,
    StatusCode.PROCESSING: DeliveryState.PROCESSING,
    StatusCode.COMPLETED: DeliveryState.COMPLETED,
    StatusCode.RECALL_REQUESTED: DeliveryState.RECALL_REQUESTED,
    StatusCode.CHANGE_ACCEPTED: DeliveryState.RECALLED,
}


class _Ledgered(Protocol):
    """What :func:`assert_status` reads: an :class:`~vbdt.exchange.client.AgencyClient` or a ``SyncAgencyClient``."""

    def status(self, document_id: str) -> list[Delivered]: ...

    def history(self, document_id: str, agency: str | None = None) -> list[HistoryEvent]: ...


async def assert_status(client: _Ledgered, document_id: str, recipient: str, status: str | StatusCode | DeliveryState, *,
                        within: float = 5.0, poll: float = 0.05) -> Delivered:
    """Wait until the sender's ledger shows that ``recipient`` reached ``status`` for ``document_id``.

    ``status`` is a receipt code (``"03"``, :class:`~vbdt.edxml.codes.StatusCode`) or a
    :class:`~vbdt.exchange.receipts.DeliveryState` (``"undeliverable"``). It is reached when it is
    the current state, when the delivery is further on the forward path (01…06: receipts may
    overtake each other, so a 04 can come after the 06), or when a receipt with that code came. Returns the delivery; AssertionError with its state and history after ``within`` seconds."""
    code, state = _target(status)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        current = next((d for d in client.status(document_id) if d.recipient == recipient), None)
        events = client.history(document_id, recipient) if current is not None else []
        if current is not None and (_beyond(current.state, state) or any(e.event == code for e in events)):
            return current
        if loop.time() >= deadline:
            where = "not a recipient in the ledger" if current is None else (
                f"it is {current.state.value} ({current.state.label})" + (f", {current.reason}" if current.reason else ""))
            seen = ", ".join(f"{e.event}{'' if e.applied else ' (not applied)'}" for e in events) or "none"
            wanted = f"status {code} ({StatusCode.of(code).label})" if code else f"state {state.value if state else '?'}"
            raise AssertionError(f"{recipient} did not reach {wanted} for {document_id} within {within} s: {where}; "
                                 f"events: {seen}")
        await asyncio.sleep(poll)


def _beyond(current: DeliveryState, target: DeliveryState | None) -> bool:
    if target is None:
        return False
    if current is target:
        return True
    return current in PROGRESS and target in PROGRESS and PROGRESS.index(current) > PROGRESS.index(target)


def _target(status: str | StatusCode | DeliveryState) -> tuple[str | None, DeliveryState | None]:
    if isinstance(status, DeliveryState):
        return None, status
    if isinstance(status, StatusCode):
        return status.value, _STATE_OF.get(status)
    if status in {c.value for c in StatusCode}:
        code = StatusCode.of(status)
        return code.value, _STATE_OF.get(code)
    try:
        return None, DeliveryState(status)
    except ValueError:
        raise UsageError(f"{status!r} is neither a status code ({', '.join(c.value for c in StatusCode)}) "
                         f"nor a delivery state ({', '.join(s.value for s in DeliveryState)})") from None
