"""The loop clock holds against a job the CPU of its own thread, and nothing when a full garbage
collection fell inside it."""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

from vbdt.exchange.loopclock import cpu_seconds, mark

linux_only = pytest.mark.skipif(sys.platform == "win32", reason="wall time on Windows (a 15.6 ms thread clock)")


def _spin(seconds: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


def _cycles(count: int) -> None:
    """``count`` unreachable cycles, for the collector to find."""
    garbage: list[list[object]] = [[] for _ in range(count)]
    for item in garbage:
        item.append(item)


def test_cpu_is_counted() -> None:
    started = mark()
    _spin(0.03)
    seconds = cpu_seconds(started)
    assert seconds is not None and 0.025 <= seconds < 0.5


def test_a_job_a_full_collection_fell_into_is_not_measured() -> None:
    hooks = list(gc.callbacks)
    _cycles(300_000)
    started, before = mark(), time.thread_time()
    gc.collect()  # a full collection: tens of ms that are no fault of the job
    assert time.thread_time() - before > 0.005
    assert cpu_seconds(started) is None
    started = mark()
    gc.collect(0)  # a young collection is part of the job's own cost
    assert cpu_seconds(started) is not None
    assert gc.isenabled() and gc.callbacks == hooks  # never switched off, nothing hooked into it


def test_another_threads_full_collection_voids_the_measure_too() -> None:
    started = mark()
    other = threading.Thread(target=gc.collect)
    other.start()
    other.join()
    assert cpu_seconds(started) is None  # its pause held this thread too (the GIL): not held against a job


@linux_only
def test_waiting_is_not_counted() -> None:
    started = mark()
    time.sleep(0.05)  # the loop preempted, or blocked: not CPU of its own
    seconds = cpu_seconds(started)
    assert seconds is not None and seconds < 0.02
