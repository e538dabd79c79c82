"""The delivery state of one document at one recipient: the whole state machine, in one table.

Everything that moves a delivery from one state to another is here, the way h11 keeps its
connection states in one module: the sender's ledger asks :func:`next_state` and stores what it
answers; nothing else decides a transition.

::

    QUEUED ──published──▶ SENT ──01──▶ ARRIVED ──03──▶ ACCEPTED ──04──▶ ASSIGNED ──05──▶ PROCESSING ──06──▶ COMPLETED
       │                   │  └──────── any later code skips ahead (receipts may overtake each other) ─────────▲
       ├──unroutable──▶ UNDELIVERABLE     └──02 (from any state before COMPLETED)──▶ REJECTED
       └──refused (the broker will never take it: too large, invalid)──▶ FAILED
    any open state ──13 (we ask to recall)──▶ RECALL_REQUESTED ──15──▶ RECALLED
                                                              └──16──▶ the state it was in before
    REJECTED, UNDELIVERABLE ──resent (a new delivery attempt)──▶ QUEUED

A receipt that repeats the current state is accepted and changes nothing (receipts can be
redelivered). A receipt may overtake the broker's confirm: QUEUED takes receipts as SENT does, and
the late confirm changes nothing. A receipt that would move backwards (an 01 after an 03) is stale: the ledger keeps
it as history but the state stays. Anything else is an :class:`~vbdt.errors.InvalidTransition`.

A delivery the recipient rejected (02) or that had no inbox can be sent again: RESENT starts a new
delivery attempt from QUEUED, and the receipts of that attempt move it as the first one's did
(the ledger numbers the attempts). A completed, recalled or failed delivery is never resent: the
recipient finished with it, gave it back, or the broker will never take those bytes.
"""

from __future__ import annotations

from enum import StrEnum

from vbdt.edxml.codes import StatusCode
from vbdt.errors import InvalidTransition

__all__ = ["PROGRESS", "RESENDABLE", "TERMINAL", "TRANSITIONS", "DeliveryState", "Event", "is_stale", "next_state"]


class DeliveryState(StrEnum):
    """Where one document stands at one recipient."""

    QUEUED = "queued"
    """Recorded in the outbox, not yet confirmed by the broker."""
    SENT = "sent"
    """The broker confirmed it; no receipt yet."""
    UNDELIVERABLE = "undeliverable"
    """The broker has no inbox for this recipient."""
    FAILED = "failed"
    """The broker will never take the message (too large, an invalid property): not retried."""
    ARRIVED = "arrived"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    PROCESSING = "processing"
    COMPLETED = "completed"
    REJECTED = "rejected"
    RECALL_REQUESTED = "recall-requested"
    RECALLED = "recalled"

    @property
    def label(self) -> str:
        """Vietnamese description, as a clerk reads it."""
        return _LABELS[self]


_LABELS = {
    DeliveryState.QUEUED: "Chờ gửi",
    DeliveryState.SENT: "Đã gửi, chưa có xác nhận",
    DeliveryState.UNDELIVERABLE: "Không gửi được: đơn vị nhận chưa có hộp thư",
    DeliveryState.FAILED: "Không gửi được: hệ thống trao đổi từ chối gói tin",
    DeliveryState.ARRIVED: StatusCode.ARRIVED.label,
    DeliveryState.ACCEPTED: StatusCode.ACCEPTED.label,
    DeliveryState.ASSIGNED: StatusCode.ASSIGNED.label,
    DeliveryState.PROCESSING: StatusCode.PROCESSING.label,
    DeliveryState.COMPLETED: StatusCode.COMPLETED.label,
    DeliveryState.REJECTED: StatusCode.REJECTED.label,
    DeliveryState.RECALL_REQUESTED: StatusCode.RECALL_REQUESTED.label,
    DeliveryState.RECALLED: "Đã lấy lại văn bản",
}


class Event(StrEnum):
    """What happens to a delivery that is not a receipt code."""

    PUBLISHED = "published"
    UNROUTABLE = "unroutable"
    REFUSED = "refused"
    """The broker refused the message for good (:class:`~vbdt.errors.PublishRefused`)."""
    RESENT = "resent"
    """The sender starts a new delivery attempt after a rejection (02) or an unroutable publish."""


# The forward path; a receipt may skip ahead along it, never go back.
PROGRESS = (
    DeliveryState.SENT,
    DeliveryState.ARRIVED,
    DeliveryState.ACCEPTED,
    DeliveryState.ASSIGNED,
    DeliveryState.PROCESSING,
    DeliveryState.COMPLETED,
)
_BY_CODE = {
    StatusCode.ARRIVED: DeliveryState.ARRIVED,
    StatusCode.ACCEPTED: DeliveryState.ACCEPTED,
    StatusCode.ASSIGNED: DeliveryState.ASSIGNED,
    StatusCode.PROCESSING: DeliveryState.PROCESSING,
    StatusCode.COMPLETED: DeliveryState.COMPLETED,
}
TERMINAL = frozenset({DeliveryState.COMPLETED, DeliveryState.REJECTED, DeliveryState.RECALLED, DeliveryState.UNDELIVERABLE,
                      DeliveryState.FAILED})
_OPEN = tuple(s for s in PROGRESS if s not in TERMINAL)
RESENDABLE = frozenset({DeliveryState.REJECTED, DeliveryState.UNDELIVERABLE})
"""The states a delivery can be sent again from (:attr:`Event.RESENT`)."""


def _table() -> dict[tuple[DeliveryState, StatusCode | Event], DeliveryState]:
    table: dict[tuple[DeliveryState, StatusCode | Event], DeliveryState] = {
        (DeliveryState.QUEUED, Event.PUBLISHED): DeliveryState.SENT,
        (DeliveryState.QUEUED, Event.UNROUTABLE): DeliveryState.UNDELIVERABLE,
        (DeliveryState.QUEUED, Event.REFUSED): DeliveryState.FAILED,
        (DeliveryState.SENT, Event.PUBLISHED): DeliveryState.SENT,  # a republished outbox entry
        (DeliveryState.UNDELIVERABLE, Event.UNROUTABLE): DeliveryState.UNDELIVERABLE,
        (DeliveryState.REJECTED, StatusCode.REJECTED): DeliveryState.REJECTED,
        (DeliveryState.RECALLED, StatusCode.CHANGE_ACCEPTED): DeliveryState.RECALLED,
        (DeliveryState.RECALL_REQUESTED, StatusCode.RECALL_REQUESTED): DeliveryState.RECALL_REQUESTED,
        (DeliveryState.RECALL_REQUESTED, StatusCode.CHANGE_ACCEPTED): DeliveryState.RECALLED,
        # A new attempt: the recipient fixed what made it refuse, or its inbox now exists.
        (DeliveryState.REJECTED, Event.RESENT): DeliveryState.QUEUED,
        (DeliveryState.UNDELIVERABLE, Event.RESENT): DeliveryState.QUEUED,
    }
    for i, state in enumerate(PROGRESS):
        for code, target in _BY_CODE.items():
            if PROGRESS.index(target) >= i:  # forward, or a repeat of the current state
                table[(state, code)] = target
        if state in _OPEN:
            table[(state, StatusCode.REJECTED)] = DeliveryState.REJECTED
            table[(state, StatusCode.RECALL_REQUESTED)] = DeliveryState.RECALL_REQUESTED
    # A rejection can still come while a recall is pending (the recipient refused the document).
    table[(DeliveryState.RECALL_REQUESTED, StatusCode.REJECTED)] = DeliveryState.REJECTED
    # A receipt can overtake the broker's confirm (one send to many recipients is confirmed as a
    # whole): it proves the publish, so QUEUED takes receipts as SENT does, and the confirm that
    # follows changes nothing.
    for (state, event), target in list(table.items()):
        if state is DeliveryState.SENT and isinstance(event, StatusCode):
            table[(DeliveryState.QUEUED, event)] = target
    for state in DeliveryState:
        if state is not DeliveryState.QUEUED:
            # a late confirm or refusal of a republished entry: a receipt already proved delivery
            table.setdefault((state, Event.PUBLISHED), state)
            table.setdefault((state, Event.REFUSED), state)
    return table


TRANSITIONS = _table()
"""(state, receipt code or event) → next state. 16 (recall refused) is resolved by :func:`next_state`:
it returns to the state before the recall, which the ledger stores alongside."""


def next_state(
    state: DeliveryState, event: StatusCode | Event, *, before_recall: DeliveryState | None = None
) -> DeliveryState:
    """The state after ``event``; :class:`InvalidTransition` when the table does not allow it."""
    if state is DeliveryState.RECALL_REQUESTED and event is StatusCode.CHANGE_REFUSED:
        return before_recall or DeliveryState.SENT
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        name = f"status {event.value} ({event.label})" if isinstance(event, StatusCode) else event.value
        raise InvalidTransition(f"{name} is not allowed when the delivery is {state.value} ({state.label})") from None


def is_stale(state: DeliveryState, event: StatusCode | Event) -> bool:
    """A receipt that is older than what we know (an 01 after an 03): history, not a state change."""
    if not isinstance(event, StatusCode) or event not in _BY_CODE or state not in PROGRESS:
        return False
    return PROGRESS.index(_BY_CODE[event]) < PROGRESS.index(state)
