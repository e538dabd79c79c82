"""How much CPU a job took of the thread that ran it, when no full garbage collection fell inside.

:class:`~vbdt.exchange.workers.Workers` runs a small job on the event loop and sends a publisher
whose messages hold the loop too long to a thread for a while. What it holds against the publisher
is the loop thread's own CPU time, not wall time (a busy host preempting the loop is no fault of the
publisher), and never a full (generation 2) collection's pause: one took 12-32 ms in a busy
benchmark process, and a job it fell into is not measured at all. A peer cannot make the collector
run a full collection on demand, so the jobs measured are its other ones.

Nothing is hooked into the collector: a :data:`gc.callbacks` hook that timed every collection cost
6 % of an allocation-heavy loop (a call per generation-0 collection, every 700 allocations), too
much to impose on the application's process. The collector is never switched off either
(``gc.disable`` is process-wide). On Windows the thread CPU clock ticks every 15.6 ms, too coarse
for a 20 ms limit, so wall time is read there instead.
"""

from __future__ import annotations

import gc
import sys
import time

__all__ = ["Mark", "cpu_seconds", "mark"]

_clock = time.perf_counter if sys.platform == "win32" else time.thread_time

Mark = tuple[float, int]
"""The thread's clock and the number of full collections, when a job began."""


def _full_collections() -> int:
    return int(gc.get_stats()[-1]["collections"])


def mark() -> Mark:
    """Now, on the calling thread: taken before the job."""
    return _clock(), _full_collections()


def cpu_seconds(began: Mark) -> float | None:
    """CPU seconds of the calling thread since ``began``; None when a full collection (in any
    thread) fell in between: then the time says nothing of the job."""
    clock, collections = began
    elapsed = _clock() - clock
    return None if _full_collections() != collections else elapsed
