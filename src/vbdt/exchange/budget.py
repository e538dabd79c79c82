"""A byte-weighted semaphore: how many bytes of received messages are being handled at once.

Prefetch bounds the number of messages in hand; this bounds their size, so prefetch × message
size cannot exceed ``Limits.max_inflight_bytes`` whatever the peers send. Waiters are served in
arrival order (a large message is not starved by a stream of small ones), and a message larger
than the whole budget takes all of it: it is handled alone, never refused for its size here.
"""

from __future__ import annotations

import asyncio
from collections import deque

from vbdt.errors import UsageError

__all__ = ["ByteBudget"]


class ByteBudget:
    """``acquire(size)`` waits until that many bytes are free (capped at the capacity); ``release`` gives them back."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise UsageError(f"a byte budget needs a positive capacity, not {capacity}")
        self.capacity = capacity
        self.free = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        """Bytes currently held."""
        return self.capacity - self.free

    async def acquire(self, size: int) -> int:
        """Take ``size`` bytes (at most the capacity) once they are free; return what was taken, to release."""
        need = max(0, min(size, self.capacity))
        if not self._waiters and self.free >= need:
            self.free -= need
            return need
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((need, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(need)  # granted and cancelled in the same instant: give it back
            else:
                self._waiters.remove((need, waiter))
                self._wake()  # the head may have changed
            raise
        return need

    def release(self, taken: int) -> None:
        """Give back what :meth:`acquire` returned."""
        self.free += taken
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            need, waiter = self._waiters.popleft()
            if not waiter.done():
                self.free -= need
                waiter.set_result(None)
