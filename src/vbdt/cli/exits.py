"""Exit codes of the ``vbdt`` command, and the one place that maps a failure to one of them.

The table of codes is in the docstring of :mod:`vbdt.cli.main` and in ``docs/cli.md``; the
constants below are those codes, :func:`exit_code_for` chooses one for an error.
"""

from __future__ import annotations

import errno
import sys
from typing import NoReturn

import click

from vbdt.errors import (
    AccessRefused,
    KeyFileError,
    LedgerError,
    QueueFull,
    TransportError,
    UsageError,
    VbdtError,
    XmlError,
)

__all__ = [
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_TEMPORARY",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "exit_code_for",
    "fail",
    "one_line",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE
EXIT_BUG = 70  # sysexits EX_SOFTWARE
EXIT_TEMPORARY = 75  # sysexits EX_TEMPFAIL
EXIT_PERMISSION = 77  # sysexits EX_NOPERM
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# OS errors that may go away by themselves: retrying later is the right answer.
_TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT})


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of a failure (``EXIT_BUG`` for anything vbdt does not expect)."""
    if isinstance(exc, AccessRefused | PermissionError):
        return EXIT_PERMISSION
    if isinstance(exc, QueueFull):
        return EXIT_TEMPORARY
    if isinstance(exc, TransportError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, XmlError | UsageError | KeyFileError | LedgerError):
        return EXIT_USAGE  # the input given cannot be read for what it should be
    if isinstance(exc, VbdtError):
        return EXIT_INVALID
    if isinstance(exc, OSError):
        return EXIT_TEMPORARY if exc.errno in _TEMPORARY_ERRNOS else EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_BUG


def one_line(exc: BaseException) -> str:
    """The reason of a failure on one line (library messages may span several)."""
    if isinstance(exc, OSError) and not isinstance(exc, VbdtError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def fail(message: str, code: int) -> NoReturn:
    """Print ``vbdt: message`` as one line on stderr and exit with ``code``."""
    click.echo(f"vbdt: {' '.join(message.split())}", err=True)
    sys.exit(code)
