"""Waiting with a time limit, without losing a cancellation.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives as the awaited thing
completes (CPython gh-86296, fixed in 3.12 by building it on ``asyncio.timeout``): the cancelled
task runs on as if nothing had happened. An inbox stopped at the moment a delivery woke it then
never ended, and whoever awaited its task (``Inbox.stop``, an application's shutdown) hung.
Everything in vbdt that waits with a limit waits through here, on ``asyncio.timeout``, which
tells its own expiry from a cancellation from outside.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["wait_event", "within"]

T = TypeVar("T")


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """``event.wait()`` for at most ``timeout`` seconds; whether the event is set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``awaitable``'s result, or TimeoutError (and the awaitable cancelled) after ``timeout`` seconds.
    A timeout of zero or less never starts a coroutine (``asyncio.timeout`` would run it to its
    first wait, side effects included, before cancelling it)."""
    if timeout is not None and timeout <= 0:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise TimeoutError
    async with asyncio.timeout(timeout):
        return await awaitable
