"""Progress of long operations (``pki init``/``pki add``, ``broker provision``), on stderr.

On a terminal: a rich progress bar with the count, the rate and the time left. Otherwise (a log
file, a pipe, a service's journal): plain lines, at most one a second plus the last, so a log is
not flooded. Never both, and nothing at all when ``enabled`` is false (``--json`` output)::

    with progress("issuing certificates", total=len(agencies)) as advance:
        for agency in agencies:
            issue(agency)
            advance()

stdout keeps the command's result: progress is only ever written to stderr.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Advance", "progress", "tracked"]

Advance = Callable[..., None]
"""``advance(n=1)``: ``n`` more items done."""

T = TypeVar("T")


@contextlib.contextmanager
def progress(description: str, total: int, *, enabled: bool = True, console: Console | None = None,
             interval: float = 1.0) -> Iterator[Advance]:
    """Show the progress of ``total`` items while the block runs; yields ``advance(n=1)``.

    ``console`` is where a bar is drawn (default: stderr); a bar is drawn when it is a terminal,
    else plain lines go to stderr, one per ``interval`` seconds at most and one at the end.
    ``total`` must not be negative."""
    if total < 0:
        raise ValueError(f"progress of a negative total ({total})")
    if not enabled or total == 0:
        yield _ignore
        return
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if console.is_terminal:
        with _bar(description, total, console) as advance:
            yield advance
    else:
        with _lines(description, total, interval) as advance:
            yield advance


def tracked(items: Iterable[T], advance: Advance) -> Iterator[T]:
    """``items`` one by one, calling ``advance()`` once the consumer asks for the next one (or ends):
    for work done by a library loop over an iterable (each item counts once it is processed)."""
    for item in items:
        yield item
        advance()


def _ignore(n: int = 1) -> None:
    del n  # progress is off: nothing to count


@contextlib.contextmanager
def _bar(description: str, total: int, console: Console) -> Iterator[Advance]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    # rich's TransferSpeedColumn counts bytes: the rate here counts items, as a field set below
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(n: int = 1) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.1f}/s" if speed else "")

        yield advance


@contextlib.contextmanager
def _lines(description: str, total: int, interval: float) -> Iterator[Advance]:
    started = last = time.monotonic()
    done = 0

    def line(now: float) -> str:
        elapsed = now - started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", ETA {int((total - done) / rate)}s" if rate and done < total else ""
        return f"{description}: {done}/{total} ({rate:.1f}/s{left})"

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if done < total and now - last >= interval:
            last = now
            click.echo(line(now), err=True)

    yield advance
    if done:  # the last line: how it ended (not printed when the block failed before any item)
        finished = time.monotonic()
        click.echo(f"{line(finished)} in {finished - started:.1f}s", err=True)
