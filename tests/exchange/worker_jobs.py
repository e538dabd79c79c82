"""Jobs for the worker-pool tests (importable by the spawned worker processes; not a test module)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_when_released(marker: str, release: str) -> int:
    """Write the worker's process id to ``marker``, wait until ``release`` exists, return the id:
    a job that is surely running while the test kills its worker."""
    Path(marker).write_text(str(os.getpid()))
    while not Path(release).exists():
        time.sleep(0.01)
    return os.getpid()


def die() -> None:
    """Kill the process running this job (as the OOM killer or a crash in a C library would)."""
    os.kill(os.getpid(), signal.SIGKILL)


def die_once(marker: str) -> int:
    """Kill the process the first time (``marker`` does not exist yet), succeed the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def fail(message: str) -> None:
    """A job that raises, as a bug would."""
    raise ValueError(message)


def pid() -> int:
    """The id of the worker process running this job."""
    return os.getpid()
