"""The loop clock holds against a job the CPU of its own thread, garbage collection apart."""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

from vbdt.exchange.loopclock import LoopClock

linux_only = pytest.mark.skipif(sys.platform == "win32", reason="wall time on Windows (a 15.6 ms thread clock)")


def _spin(seconds: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


def _cycles(count: int) -> None:
    """``count`` unreachable cycles, for the collector to find."""
    garbage = [[] for _ in range(count)]
    for item in garbage:
        item.append(item)


def _collection_of_cycles(count: int) -> float:
    """A full collection over ``count`` cycles; its thread CPU seconds."""
    _cycles(count)
    started = time.thread_time()
    gc.collect()
    return time.thread_time() - started


def test_cpu_is_counted_and_a_collection_is_not() -> None:
    clock = LoopClock()
    started = clock.start()
    _spin(0.03)
    assert 0.025 <= clock.seconds(started) < 0.5
    _cycles(300_000)
    started, before = clock.start(), time.thread_time()
    gc.collect()
    collected = time.thread_time() - before
    assert collected > 0.005  # the collection was real work
    assert clock.seconds(started) < min(0.002, collected / 4)  # and none of it is counted
    assert gc.isenabled()  # never switched off: it is process-wide


@linux_only
def test_waiting_is_not_counted() -> None:
    clock = LoopClock()
    started = clock.start()
    time.sleep(0.05)  # the loop preempted, or blocked: not CPU of its own
    assert clock.seconds(started) < 0.02


def test_each_thread_counts_its_own_collections() -> None:
    clock = LoopClock()
    started = clock.start()
    other = threading.Thread(target=_collection_of_cycles, args=(300_000,))
    other.start()
    other.join()
    _spin(0.01)
    # another thread's collection is neither added to nor taken off this thread's time
    assert 0.009 <= clock.seconds(started) < 0.5
    hooks = [hook for hook in gc.callbacks if getattr(hook, "__module__", "") == "vbdt.exchange.loopclock"]
    LoopClock()
    assert len([hook for hook in gc.callbacks if getattr(hook, "__module__", "") == "vbdt.exchange.loopclock"]) == len(hooks) == 1
