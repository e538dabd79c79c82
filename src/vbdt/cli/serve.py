"""``vbdt serve``: many agencies in one process (:mod:`vbdt.exchange.host`), run as a service.

Configured by the ``[host]`` table of the file given with ``vbdt --config`` (or ``VBDT_CONFIG``);
relative paths resolve against the file's folder::

    [host]
    url = "amqp://vbdt%2Fhosts%2Fh14:…@broker:5672/vbdt"   # the host's user (vbdt broker provision-host)
    credentials = "agencies.json"      # OrganId -> its own URL (vbdt broker provision -o): publishing
    agencies = ["000.00.00.H14/**:commune"]               # OrganIds or selectors
    keys = "keys"                      # <OrganId>.key.pem / .cert.pem each, ca.pem (vbdt pki init)
    trust = "keys/ca.pem"              # default: ca.pem in keys
    directory = "directory.json"       # default: the example directory
    ledgers = "state"                  # <OrganId>.db each: the store of what each agency received
    out = "inbox"                      # optional: also write <OrganId>/<file> for each received document
    retention_days = 90                # optional: drop acknowledged bodies from the ledgers after 90 days
    agencies_per_connection = 1000     # optional: inboxes read on one connection (RabbitMQ caps its channels)
    log_format = "json"                # text (default) or json

Each received document is stored in its agency's ledger and acknowledged; with ``out`` it is first
written to ``out/<OrganId>/`` (an export for a DMS that watches a folder): a crash before the write
leaves it to be handed again at the next start. With ``retention_days`` (or ``--retention-days``)
every ledger drops the bodies of items acknowledged that many days ago, at start and then hourly
(:meth:`vbdt.exchange.ledger.Ledger.drop_bodies`). More agencies than ``agencies_per_connection``
are read on more connections (one per that many, as the host's user), each reconnecting by itself. Like ``vbdt listen``: retries forever (capped
backoff) while the broker is away, finishes what is in hand and exits 0 on SIGTERM or Ctrl-C, and
logs ``started``, ``received``, ``receipt``, ``refused``, ``retention`` and ``stopped`` events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vbdt.cli.config import LOG_FORMATS, MAX_RETENTION_DAYS, check_retention_days
from vbdt.cli.exchange import log_receipt, log_refusal
from vbdt.cli.files import SMALL_FILE_BYTES, inbox_name, input_path, output_dir, read_input, write_output
from vbdt.cli.logs import event, service_logging
from vbdt.cli.options import check_amqp_url, load_directory
from vbdt.cli.service import Service
from vbdt.errors import TransportError, UsageError, VbdtError

if TYPE_CHECKING:
    from vbdt.exchange.client import AgencyClient, InboxItem
    from vbdt.exchange.host import AgencyHost
    from vbdt.exchange.ledger import Ledger
    from vbdt.exchange.transport import ReconnectPolicy

__all__ = ["COMMANDS", "HostSettings", "load_host_settings", "serve_command"]

_KEYS = {"url": str, "credentials": Path, "agencies": list, "keys": Path, "trust": Path, "directory": Path, "ledgers": Path,
         "out": Path, "log_format": str, "retention_days": int, "agencies_per_connection": int}
_REQUIRED = ("url", "credentials", "agencies", "keys")


@dataclass(frozen=True)
class HostSettings:
    """The ``[host]`` table of a configuration file, checked, paths absolute."""

    path: Path
    url: str
    credentials: Path
    agencies: list[str]
    """OrganIds and selectors, as written."""
    keys: Path
    trust: Path
    directory: Path | None
    ledgers: Path
    out: Path | None
    """Where received documents are also written (``out/<OrganId>/``); None: the ledgers only."""
    log_format: str
    retention_days: int | None = None
    """Drop the bodies of items acknowledged this many days ago; None: keep them."""
    agencies_per_connection: int | None = None
    """Inboxes read on one connection; None: the host's default."""


def load_host_settings(path: str | Path) -> HostSettings:
    """Read the ``[host]`` table of ``path``: unknown keys, wrong types and missing ones are a UsageError naming the file."""
    where = input_path(path, what="configuration file")
    try:
        data = tomllib.loads(read_input(where, limit=SMALL_FILE_BYTES).decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text; a vbdt.toml is TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({exc})") from None
    table = data.get("host")
    if not isinstance(table, dict):
        raise UsageError(f"{where}: no [host] table (vbdt serve reads the agencies it runs from it)")
    if unknown := sorted(set(table) - set(_KEYS)):
        raise UsageError(f"{where}: unknown key(s) in [host]: {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    if missing := [k for k in _REQUIRED if k not in table]:
        raise UsageError(f"{where}: [host] needs {', '.join(missing)}")
    base = where.resolve().parent
    values: dict[str, Any] = {}
    for key, kind in _KEYS.items():
        if key not in table:
            continue
        value = table[key]
        if key == "agencies_per_connection":
            from vbdt.exchange.host import check_agencies_per_connection  # not imported for other commands

            values[key] = check_agencies_per_connection(value, f"{where}: host.{key}")
            continue
        if kind is int:
            values[key] = check_retention_days(value, f"{where}: host.{key}")
            continue
        if kind is list:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise UsageError(f"{where}: host.{key} must be a non-empty list of OrganIds or selectors")
            values[key] = list(value)
            continue
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: host.{key} must be a non-empty string")
        values[key] = base / Path(value).expanduser() if kind is Path else value
    log_format = values.get("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise UsageError(f"{where}: host.log_format must be one of {', '.join(LOG_FORMATS)}")
    keys: Path = values["keys"]
    return HostSettings(where, check_amqp_url(values["url"], f"{where}: host.url"), values["credentials"], values["agencies"],
                        keys, values.get("trust", keys / "ca.pem"), values.get("directory"),
                        values.get("ledgers", base / "state"), values.get("out"), log_format, values.get("retention_days"),
                        values.get("agencies_per_connection"))


def _credentials(settings: HostSettings, organ_ids: list[str]) -> dict[str, str]:
    path = input_path(settings.credentials, what="credentials file")
    try:
        urls = json.loads(read_input(path, limit=SMALL_FILE_BYTES))
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    if not isinstance(urls, dict):
        raise UsageError(f"{path}: not an object of OrganId -> AMQP URL")
    missing = [o for o in organ_ids if o not in urls]
    if missing:
        raise UsageError(f"{path}: no URL for {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    return {o: check_amqp_url(urls[o] if isinstance(urls[o], str) else "", f"{path}: the URL of {o}") for o in organ_ids}


def build_host(settings: HostSettings, *, policy: ReconnectPolicy,
               on_item: Callable[[AgencyClient, InboxItem], None], workers: int = 1) -> AgencyHost:
    """The host the settings describe: every selector resolved, every key and URL found, nothing opened yet."""
    from vbdt.exchange.host import DEFAULT_AGENCIES_PER_CONNECTION, AgencyHost, HostedAgency
    from vbdt.trust.keys import SigningKey

    directory = load_directory(str(settings.directory) if settings.directory else None)
    organ_ids = list(dict.fromkeys(str(a.organ_id) for a in directory.select(*settings.agencies)))
    if not organ_ids:
        raise UsageError(f"{settings.path}: host.agencies selects no agency of the directory")
    urls = _credentials(settings, organ_ids)
    if not settings.keys.is_dir():
        raise UsageError(f"{settings.path}: host.keys {settings.keys}: not a folder; give the folder `vbdt pki init` wrote")
    ledgers = output_dir(settings.ledgers)
    agencies = []
    for organ_id in organ_ids:
        key = SigningKey.from_pem(input_path(settings.keys / f"{organ_id}.key.pem", what="key file"),
                                  input_path(settings.keys / f"{organ_id}.cert.pem", what="certificate file"))
        agencies.append(HostedAgency(organ_id, key=key, ledger=ledgers / f"{organ_id}.db", url=urls[organ_id]))
    return AgencyHost(settings.url, agencies, trust=input_path(settings.trust, what="trust anchors file"), directory=directory,
                      on_item=on_item, on_receipt=log_receipt, on_refused=log_refusal, reconnect=policy, workers=workers,
                      agencies_per_connection=settings.agencies_per_connection or DEFAULT_AGENCIES_PER_CONNECTION)


@click.command("serve")
@click.option("--give-up-after", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Exit 69 once the broker has been unavailable this long (default: retry forever).")
@click.option("--max-backoff", type=click.FloatRange(min=0.1), default=30.0, show_default=True, metavar="SECONDS",
              help="Longest wait between two attempts to reach the broker.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None, help="Log lines on stderr (default: host.log_format).")
@click.option("--retention-days", type=click.IntRange(0, MAX_RETENTION_DAYS), default=None, metavar="DAYS",
              help="Drop the bodies of items acknowledged DAYS ago from the ledgers, at start and hourly "
                   "(default: host.retention_days, else keep them).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that verify and sign for all the agencies (1: a thread; one per core for the most throughput).")
@click.pass_context
def serve_command(ctx: click.Context, give_up_after: float | None, max_backoff: float, log_format: str | None,
                  retention_days: int | None, workers: int) -> None:
    """Run the agencies of the [host] table of --config in one process.

    Stores each received document in its agency's ledger (and under out/<OrganId>/ when [host]
    has out), answers with a signed 01, applies receipts; retries while the broker is away; on
    SIGTERM or Ctrl-C stops cleanly (exit 0)."""
    path = ctx.find_root().params.get("config_path")
    if not path:
        raise UsageError("vbdt serve needs a configuration file with a [host] table: vbdt --config FILE serve")
    settings = load_host_settings(path)
    from vbdt.exchange.transport import ReconnectPolicy

    server = _Server(settings, ReconnectPolicy(attempts=None, initial=0.5, cap=max_backoff), give_up_after,
                     retention_days if retention_days is not None else settings.retention_days, workers=workers)
    with service_logging(log_format or settings.log_format):
        asyncio.run(server.run())


class _Server(Service["AgencyHost"]):
    """Start the host (again) while the broker is away, stop it cleanly on a signal."""

    lost = (TransportError, VbdtError)  # an inbox gave up on this connection: start afresh

    def __init__(self, settings: HostSettings, policy: ReconnectPolicy, give_up_after: float | None,
                 retention_days: int | None = None, workers: int = 1) -> None:
        super().__init__(policy, give_up_after, retention_days=retention_days)
        self.settings = settings
        self.workers = workers
        self.out = None if settings.out is None else output_dir(settings.out)

    def _store(self, client: AgencyClient, item: InboxItem) -> None:
        """Write the package (with ``out``); the host acknowledges it when this returns (a failure leaves
        it to be handed again). Without ``out`` the ledger, where it is stored already, is the store."""
        path = None
        if self.out is not None:
            folder = output_dir(self.out / client.organ_id)
            path = folder / inbox_name(item.sender, item.document_id, item.stored_as)
            write_output(path, item.body)
        self.seen += 1
        event(logging.INFO, "received", "%s received %s %s from %s -> %s", client.organ_id, item.kind, item.document_id,
              item.sender, path or "ledger", organ_id=client.organ_id, kind=item.kind, document_id=item.document_id,
              sender=item.sender, file=None if path is None else str(path))

    def ledgers(self, host: AgencyHost) -> list[Ledger]:
        return [client.ledger for client in host.clients()]

    async def open(self) -> AgencyHost:
        host = build_host(self.settings, policy=self.policy, on_item=self._store, workers=self.workers)
        await host.start()
        return host

    async def use(self, host: AgencyHost) -> bool:
        event(logging.INFO, "started", "serving %d agencies on %d connection%s as broker user %s",
              len(host.organ_ids), host.reading_connections, "" if host.reading_connections == 1 else "s",
              host.shared.user if host.shared else "?",
              agencies=len(host.organ_ids), connections=host.reading_connections,
              user=host.shared.user if host.shared else None)
        await self._until_stopped(host)
        return False

    async def close(self, host: AgencyHost) -> None:
        await host.stop()

    def stopped(self) -> None:
        event(logging.INFO, "stopped", "host stopped after %d documents", self.seen, documents=self.seen)

    async def _until_stopped(self, host: AgencyHost) -> None:
        stopping = asyncio.ensure_future(self.stop.wait())
        failing = asyncio.ensure_future(host.wait())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not failing.done():
                failing.cancel()
        if failing.done() and not failing.cancelled():
            failing.result()  # raises what stopped an inbox



COMMANDS = [serve_command]
