"""The ``vbdt`` command: the group, the one guard every command runs under, and registration.

Each command group lives in its own module (``documents``, ``directory``, ``trust``,
``exchange``, ``broker``, ``demo``); this one adds them to :data:`main`. Every failure is one
line on stderr, ``vbdt: <reason>``, and one of these exit codes (also in ``docs/cli.md``):

=====  ==============================================================================================
code   meaning
=====  ==============================================================================================
0      done (also when the reader of the output went away: ``vbdt status | head``)
1      invalid or refused: a document, signature, certificate, agency or delivery did not pass
2      usage, or an input that cannot be read (missing, a folder, a device over the size limit, not edXML)
69     the broker is unavailable (cannot be reached, did not answer)
75     a temporary failure worth retrying (a full inbox, a full disk)
77     permission: the operating system or the broker refused this user (file mode, AMQP password)
130    interrupted (Ctrl-C)
70     a bug in vbdt (``VBDT_DEBUG=1`` shows its traceback); no input should ever cause it
=====  ==============================================================================================
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any

import click

from vbdt.cli import (
    amend,
    answer,
    broker,
    bulk,
    check,
    dead,
    demo,
    directory,
    documents,
    exchange,
    health,
    inbox,
    new,
    outbox,
    peer,
    serve,
    status,
    trust,
)
from vbdt.cli.exits import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, exit_code_for, fail, one_line
from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import VbdtError

__all__ = ["main"]


class _Guarded(click.Group):
    """A group whose subcommands fail with one line and a documented exit code, never a traceback."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:  # `vbdt --help | head`: the help is printed while parsing
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return result
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(EXIT_OK)  # the reader had what it wanted (`vbdt status | head`)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:  # usage errors of a subcommand: one line too
            fail(f"{exc.format_message()} (see: {ctx.command_path} {ctx.invoked_subcommand or ''} -h)", exc.exit_code)
        except (click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except (VbdtError, OSError) as exc:
            fail(one_line(exc), exit_code_for(exc))
        except Exception as exc:  # a bug: still one line, unless debugging
            if os.environ.get("VBDT_DEBUG"):
                raise
            fail(f"internal error ({type(exc).__name__}: {one_line(exc)}); set VBDT_DEBUG=1 for details", EXIT_BUG)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test runner's capture)
        pass


class _OneLineLogs(logging.Handler):
    """Library warnings as one ``vbdt:`` line each on the current stderr; tracebacks only with ``VBDT_DEBUG``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"vbdt: {record.levelname.lower()}: {' '.join(record.getMessage().split())}", err=True)
        except Exception:  # logging must never be the failure
            self.handleError(record)


def _configure_logging() -> None:
    if os.environ.get("VBDT_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
        return
    root = logging.getLogger()
    if not any(isinstance(h, _OneLineLogs) for h in root.handlers):
        root.addHandler(_OneLineLogs(logging.WARNING))
    # Libraries log what vbdt already reports as a one-line error (pyHanko its tracebacks on a
    # broken PDF, aio-pika its reconnects): only their critical messages get through.
    for name in ("pyhanko", "pyhanko_certvalidator", "aio_pika", "aiormq"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@click.group(cls=_Guarded, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vbdt")
@click.option("--max-bytes", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_bytes, show_default=True,
              metavar="BYTES", help="Largest input file read (Limits.max_bytes); larger ones are refused, exit 2.")
@click.option("--config", "config_path", envvar="VBDT_CONFIG", metavar="FILE", default=None,
              help="vbdt.toml with the agency's settings (or VBDT_CONFIG); command-line options win over it.")
@click.pass_context
def main(ctx: click.Context, max_bytes: int, config_path: str | None) -> None:
    """vbdt: build, sign, validate and exchange edXML documents (QCVN 102:2016)."""
    ctx.obj = dataclasses.replace(DEFAULT_LIMITS, max_bytes=max_bytes)
    _configure_logging()


for _module in (documents, check, directory, trust, exchange, health, broker, demo, peer,
                inbox, answer, amend, outbox, dead, serve, bulk, status, new):
    for _command in _module.COMMANDS:
        main.add_command(_command)
