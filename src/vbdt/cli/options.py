"""Options several command groups share, and the checks on their values.

A value that could reach the file system or the network is checked when it is parsed: ``--as``
must be an OrganId (it names the default ledger file, so ``../../x`` must never get that far),
``--amqp`` an ``amqp://`` or ``amqps://`` URL with a host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from vbdt.cli.files import input_path
from vbdt.directory.agencies import Directory
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.organid import OrganId
from vbdt.errors import InvalidOrganId, UsageError

__all__ = ["AMQP_HELP", "agency_options", "amqp_option", "check_amqp_url", "check_organ_id", "limits", "load_directory",
           "optional_directory", "organ_id_option"]

F = TypeVar("F", bound=Callable[..., Any])

AMQP_HELP = "RabbitMQ URL (or VBDT_AMQP_URL); an agency's own URL from `vbdt broker provision`."


def check_organ_id(value: str, what: str = "--as") -> str:
    """``value`` if it is an OrganId (Decision 20/2020 syntax), else UsageError naming ``what``."""
    try:
        return str(OrganId.lenient(value))
    except InvalidOrganId as exc:
        raise UsageError(f"{what}: {exc}") from None


def check_amqp_url(value: str, what: str = "--amqp") -> str:
    """``value`` if it is an ``amqp://`` or ``amqps://`` URL with a host (and a valid port), else UsageError."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port raises ValueError for "host:x"
    except ValueError as exc:
        raise UsageError(f"{what}: not a URL ({exc})") from None
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise UsageError(f"{what}: {_redacted(value)!r} is not an AMQP URL (amqp://user:password@host:5672/vhost)")
    return value


def _redacted(value: str) -> str:
    _, at, tail = value.rpartition("@")
    return f"***@{tail}" if at else value


def _organ_id_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else check_organ_id(value)


def _amqp_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else check_amqp_url(value)


organ_id_option = click.option(
    "--as", "organ_id", metavar="ORGANID", callback=_organ_id_callback, help="The agency (default: the document's sender)."
)
amqp_option = click.option("--amqp", "amqp_url", envvar="VBDT_AMQP_URL", default=None, callback=_amqp_callback, help=AMQP_HELP)


def agency_options(func: F) -> F:
    """The options of a command that acts as one agency on the exchange."""
    for option in reversed([
        organ_id_option,
        click.option("--keys", "keys_dir", metavar="DIR",
                     help="Folder with <OrganId>.key.pem/.cert.pem, ca.pem (as `vbdt pki init` writes), signer.*.pem optional "
                          "(or keys in vbdt.toml)."),
        click.option("--trust", "trust_path", metavar="FILE", help="Trust anchors (default: ca.pem in --keys)."),
        amqp_option,
        click.option("--credentials", metavar="FILE", help="The JSON of `vbdt broker provision`: the agency's URL is taken from it."),
        click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one)."),
        click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: .vbdt/<OrganId>.db)."),
        click.option("--json", "as_json", is_flag=True),
    ]):
        func = option(func)
    return func


def limits() -> Limits:
    """The bounds on input of this run (``vbdt --max-bytes``), from the root command's context."""
    context = click.get_current_context(silent=True)
    found = context.find_root().obj if context is not None else None
    return found if isinstance(found, Limits) else DEFAULT_LIMITS


def load_directory(path: str | None) -> Directory:
    """The directory file at ``path`` (checked as an input file), else the example one."""
    if path:
        return Directory.load(input_path(path, what="directory file"))
    from vbdt.edxml.resources import example_directory_path

    return Directory.load(example_directory_path())


def optional_directory(path: str | None) -> Directory | None:
    """The directory file at ``path`` when one is given (for checks that are optional)."""
    return load_directory(path) if path else None
