"""How much CPU a job took of the thread that ran it, garbage collection apart.

:class:`~vbdt.exchange.workers.Workers` runs a small job on the event loop and sends a publisher
whose message held the loop too long to a thread for a while. What it holds against the publisher
is the loop thread's own CPU time, not wall time (a busy host preempting the loop is no fault of the
publisher), and not the cyclic collector's pauses that fall inside the job (a generation-2
collection took 12-32 ms in a busy benchmark process): the collector's time is counted per thread
by a :data:`gc.callbacks` hook and taken off.

The collector is never switched off (``gc.disable`` is process-wide: another thread's loop, or the
application, would see it off). On Windows the thread CPU clock ticks every 15.6 ms, too coarse for
a 20 ms limit, so wall time is read there instead.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Any

__all__ = ["LoopClock"]

_clock = time.perf_counter if sys.platform == "win32" else time.thread_time
_per_thread = threading.local()
_hooked = threading.Lock()


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    """A :data:`gc.callbacks` hook: adds each collection's time to the collecting thread's total."""
    if phase == "start":
        _per_thread.started = _clock()
        return
    started = getattr(_per_thread, "started", None)
    if started is not None:
        _per_thread.collected = getattr(_per_thread, "collected", 0.0) + _clock() - started
        _per_thread.started = None


def _collected() -> float:
    return getattr(_per_thread, "collected", 0.0)


class LoopClock:
    """Times jobs on the calling thread: :meth:`start` before, :meth:`seconds` after."""

    def __init__(self) -> None:
        with _hooked:  # once per process, whoever asks first
            if _on_collection not in gc.callbacks:
                gc.callbacks.append(_on_collection)

    @staticmethod
    def start() -> tuple[float, float]:
        """The thread's clock and its collections' total now."""
        return _clock(), _collected()

    @staticmethod
    def seconds(started: tuple[float, float]) -> float:
        """CPU seconds of this thread since ``started``, its garbage collections taken off."""
        clock, collected = started
        return (_clock() - clock) - (_collected() - collected)
