"""Waiting with a time limit never swallows a cancellation (vbdt.exchange.waiting).

On Python 3.11 ``asyncio.wait_for`` returned normally when cancelled just as what it awaited
completed (CPython gh-86296): an inbox stopped at the moment a delivery woke it ran on, and
whoever awaited it hung (a test's teardown, once in a few runs).
"""

from __future__ import annotations

import asyncio

import pytest

from vbdt.exchange.waiting import wait_event, within


async def _cancelled_as_it_completes(wait: object) -> asyncio.Task[None]:
    event = asyncio.Event()

    async def waiter() -> None:
        while True:  # as the inbox does: wait, look, wait again
            await wait(event)  # type: ignore[operator]
            event.clear()

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the task waits now
    event.set()  # what it waits for completes ...
    task.cancel()  # ... and it is cancelled in the same round of the loop
    await asyncio.wait({task}, timeout=2)
    return task


async def test_a_cancellation_as_the_event_is_set_ends_the_waiter() -> None:
    task = await _cancelled_as_it_completes(lambda event: wait_event(event, 30))
    assert task.done() and task.cancelled()


async def test_asyncio_wait_for_swallowed_it_on_this_python() -> None:
    """What the helper is for: the same with ``asyncio.wait_for`` (3.11) runs on after the cancel."""
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("asyncio.wait_for is built on asyncio.timeout from Python 3.12")
    task = await _cancelled_as_it_completes(lambda event: asyncio.wait_for(event.wait(), 30))
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_wait_event_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True


async def test_within_times_out_and_cancels_what_it_awaited() -> None:
    cancelled = asyncio.Event()

    async def slow() -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    with pytest.raises(TimeoutError):
        await within(slow(), 0.01)
    assert cancelled.is_set()
    assert await within(asyncio.sleep(0, 7), 1) == 7


async def test_within_no_time_never_starts_the_coroutine() -> None:
    started = []

    async def effect() -> None:
        started.append(1)  # a side effect before its first wait

    with pytest.raises(TimeoutError):
        await within(effect(), 0)
    assert started == []
