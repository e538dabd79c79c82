"""The receipt state machine: the table, skip-ahead, stale and repeated receipts, recall."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbdt.edxml.codes import StatusCode
from vbdt.errors import InvalidTransition
from vbdt.exchange.receipts import PROGRESS, TERMINAL, TRANSITIONS, DeliveryState, Event, is_stale, next_state

S, C = DeliveryState, StatusCode


def test_the_forward_path() -> None:
    state = next_state(S.QUEUED, Event.PUBLISHED)
    for code, expected in [(C.ARRIVED, S.ARRIVED), (C.ACCEPTED, S.ACCEPTED), (C.ASSIGNED, S.ASSIGNED),
                           (C.PROCESSING, S.PROCESSING), (C.COMPLETED, S.COMPLETED)]:
        state = next_state(state, code)
        assert state is expected


def test_receipts_may_skip_ahead_and_repeat() -> None:
    assert next_state(S.SENT, C.PROCESSING) is S.PROCESSING
    assert next_state(S.ACCEPTED, C.ACCEPTED) is S.ACCEPTED


def test_older_receipts_are_stale_not_errors() -> None:
    assert is_stale(S.ACCEPTED, C.ARRIVED)
    assert not is_stale(S.ARRIVED, C.ACCEPTED)
    with pytest.raises(InvalidTransition, match="status 01"):
        next_state(S.ACCEPTED, C.ARRIVED)


def test_rejection_and_terminal_states() -> None:
    assert next_state(S.PROCESSING, C.REJECTED) is S.REJECTED
    with pytest.raises(InvalidTransition, match="completed"):
        next_state(S.COMPLETED, C.REJECTED)
    for state in TERMINAL - {S.REJECTED, S.RECALLED, S.UNDELIVERABLE}:
        assert all(TRANSITIONS[(state, e)] is state for (s, e) in TRANSITIONS if s is state)


def test_recall_agreed_or_refused() -> None:
    assert next_state(S.ACCEPTED, C.RECALL_REQUESTED) is S.RECALL_REQUESTED
    assert next_state(S.RECALL_REQUESTED, C.CHANGE_ACCEPTED) is S.RECALLED
    assert next_state(S.RECALL_REQUESTED, C.CHANGE_REFUSED, before_recall=S.ACCEPTED) is S.ACCEPTED
    with pytest.raises(InvalidTransition):
        next_state(S.COMPLETED, C.RECALL_REQUESTED)


def test_labels_are_vietnamese() -> None:
    assert S.ACCEPTED.label == C.ACCEPTED.label and S.RECALLED.label == "Đã lấy lại văn bản"


@given(st.lists(st.sampled_from([C.ARRIVED, C.ACCEPTED, C.ASSIGNED, C.PROCESSING, C.COMPLETED]), max_size=12))
def test_any_order_of_progress_receipts_ends_at_the_furthest(codes: list[StatusCode]) -> None:
    # receipts can overtake each other on the way; the ledger keeps the furthest
    state = S.SENT
    for code in codes:
        if not is_stale(state, code):
            state = next_state(state, code)
    furthest = max([PROGRESS.index(next_state(S.SENT, c)) for c in codes], default=0)
    assert state is PROGRESS[furthest]


def test_a_receipt_may_overtake_the_publish_confirm() -> None:
    assert next_state(S.QUEUED, C.ARRIVED) is S.ARRIVED
    assert next_state(S.QUEUED, C.REJECTED) is S.REJECTED
    assert next_state(S.ARRIVED, Event.PUBLISHED) is S.ARRIVED  # the late confirm changes nothing
    assert next_state(S.QUEUED, Event.PUBLISHED) is S.SENT


def test_a_rejected_or_undeliverable_delivery_can_be_sent_again() -> None:
    from vbdt.exchange.receipts import RESENDABLE

    assert RESENDABLE == {S.REJECTED, S.UNDELIVERABLE}
    for state in RESENDABLE:
        # a new attempt starts from QUEUED and its receipts move it as the first attempt's did
        again = next_state(state, Event.RESENT)
        assert again is S.QUEUED
        assert next_state(again, C.ARRIVED) is S.ARRIVED and next_state(again, C.REJECTED) is S.REJECTED
    # the 01 of the new attempt is not stale once the delivery is QUEUED again
    assert not is_stale(S.QUEUED, C.ARRIVED)
    with pytest.raises(InvalidTransition):
        next_state(S.REJECTED, C.ARRIVED)  # without the resend, the later 01 has nowhere to go
    for state in set(S) - RESENDABLE:  # finished, recalled, failed for good or still open: never resent
        with pytest.raises(InvalidTransition, match="resent"):
            next_state(state, Event.RESENT)
