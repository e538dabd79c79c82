"""``vbdt send`` and ``vbdt listen``: one agency on the exchange (``vbdt status`` is :mod:`vbdt.cli.status`).

``listen`` receives into the agency's ledger: the client stores each package there (bytes, verdict,
record) before it is handed over, and ``listen`` acknowledges it; the ledger is the store that
``vbdt inbox`` reads. With ``--out`` (or ``out`` in vbdt.toml) each package is also written to that
folder, an export for a DMS that watches one, before its claim stands (:func:`store_received`): a
failed write leaves the item unclaimed in the ledger, so the next ``listen`` hands it over again;
nothing received is lost to a full disk or a hostile DocumentId. With ``--retention-days`` (or
``retention_days``) the ledger drops the bodies of items acknowledged that many days ago, at start
and then hourly (:class:`vbdt.cli.service.Service`); their records stay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import click

from vbdt.cli.config import LOG_FORMATS, MAX_RETENTION_DAYS, KeyFiles, current_config, pick, pick_path
from vbdt.cli.exits import EXIT_INVALID
from vbdt.cli.files import inbox_name, input_path, output_dir, output_file, read_document, write_output
from vbdt.cli.logs import LoggedTransport, event, service_logging
from vbdt.cli.options import agency_options, check_amqp_url, check_organ_id, limits, load_directory
from vbdt.cli.output import echo_json
from vbdt.cli.service import Service
from vbdt.edxml.model import Document, StatusMessage
from vbdt.errors import AccessRefused, LedgerError, MessageRejected, TransportError, UsageError
from vbdt.exchange.routing import organ_id_for_user

if TYPE_CHECKING:
    from vbdt.exchange.client import AgencyClient, InboxItem
    from vbdt.exchange.ledger import Ledger, SqliteLedger
    from vbdt.exchange.outbox import SendResult
    from vbdt.exchange.transport import ReconnectPolicy, Transport
    from vbdt.trust.keys import SigningKey

__all__ = [
    "COMMANDS",
    "AgencySettings",
    "agency_settings",
    "broker_identity",
    "ledger_file",
    "listen_command",
    "local_ledger",
    "open_agency",
    "preflight_send",
    "send_command",
    "send_outcomes",
    "signing_keys",
    "store_received",
]

log = logging.getLogger("vbdt.cli")


def ledger_file(ledger_path: str | None, organ_id: str, *, existing: bool = False) -> Path:
    """The agency's ledger: ``--ledger`` or ``.vbdt/<OrganId>.db``, never someone else's SQLite file."""
    if ledger_path is None:
        path = Path(".vbdt") / f"{check_organ_id(organ_id)}.db"  # .vbdt is created on purpose
    elif Path(ledger_path).is_dir():
        raise UsageError(f"{ledger_path}: is a folder; give the ledger file")
    else:
        path = output_file(ledger_path)
    if not path.exists():
        if existing:
            raise UsageError(f"{path}: no ledger here (send something first, or give --ledger)")
        return path
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file; give a ledger file")
    _check_is_ledger(path)
    return path


def _check_is_ledger(path: Path) -> None:
    """Refuse an SQLite file with other tables: opening it as a ledger would add vbdt's to it."""
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"{path}: not a vbdt ledger ({exc})") from None
    if tables and not {"documents", "incoming"} <= tables:
        raise LedgerError(f"{path}: not a vbdt ledger (an SQLite file with other tables); give the agency's ledger")


def local_ledger(organ_id: str | None, ledger_path: str | None) -> tuple[str, SqliteLedger]:
    """The agency (``--as`` or ``as`` in vbdt.toml) and its existing ledger, opened: for commands
    that read or act on the ledger alone, without keys or a broker."""
    from vbdt.exchange.ledger import SqliteLedger

    config = current_config()
    organ_id = pick(organ_id, config.organ_id)
    if not organ_id:
        raise UsageError("--as ORGANID is required (or `as` in vbdt.toml)")
    organ_id = check_organ_id(organ_id)
    return organ_id, SqliteLedger(ledger_file(pick_path(ledger_path, config.ledger), organ_id, existing=True))


@dataclass(frozen=True)
class AgencySettings:
    """One agency's settings for a command: the command line over ``vbdt.toml`` (:mod:`vbdt.cli.config`)."""

    organ_id: str
    url: str
    keys: KeyFiles
    trust: str | None
    directory_path: str | None
    ledger_path: str | None


def agency_settings(organ_id: str | None, keys_dir: str | None, trust_path: str | None, amqp_url: str | None,
                    credentials: str | None, directory_path: str | None, ledger_path: str | None) -> AgencySettings:
    """Merge the options of a command with the configuration file (options win) and check what is needed.

    The broker URL: ``--credentials``, then ``--amqp``/``VBDT_AMQP_URL``, then the file's ``credentials``,
    then its ``amqp``, then the local default (``guest``)."""
    from vbdt.exchange.amqp import DEFAULT_URL

    config = current_config()
    organ_id = pick(organ_id, config.organ_id)
    if not organ_id:
        raise UsageError("--as ORGANID is required (or `as` in vbdt.toml)")
    if keys_dir is not None:
        keys = KeyFiles(dir=Path(keys_dir))
    elif config.keys != KeyFiles():
        keys = config.keys
    else:
        raise UsageError("--keys DIR is required (or keys in vbdt.toml)")
    if credentials is not None:
        url = _url_from_credentials(organ_id, credentials)
    elif amqp_url is not None:
        url = amqp_url
    elif config.credentials is not None:
        url = _url_from_credentials(organ_id, str(config.credentials))
    else:
        url = config.amqp or DEFAULT_URL
    return AgencySettings(organ_id, url, keys, pick_path(trust_path, config.trust),
                          pick_path(directory_path, config.directory), pick_path(ledger_path, config.ledger))


def _url_from_credentials(organ_id: str, credentials: str) -> str:
    path = input_path(credentials, what="credentials file")
    try:
        url = json.loads(path.read_bytes())[organ_id]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{credentials}: no AMQP URL for {organ_id} ({type(exc).__name__})") from None
    if not isinstance(url, str):
        raise UsageError(f"{credentials}: the entry for {organ_id} is not a URL")
    return check_amqp_url(url, f"{credentials}: the URL of {organ_id}")


def signing_keys(settings: AgencySettings) -> tuple[SigningKey, SigningKey | None, SigningKey | None, Path]:
    """The agency key, the person's key, the seal (the agency key when a person signs) and the trust anchors."""
    from vbdt.trust.keys import SigningKey

    organ_id, files = settings.organ_id, settings.keys
    folder = files.dir
    if folder is not None and not folder.is_dir():
        raise UsageError(f"--keys {folder}: not a folder; give the folder `vbdt pki init` wrote")

    def pair(key: Path | None, cert: Path | None, stem: str, required: bool) -> SigningKey | None:
        if key is None and folder is not None and (required or (folder / f"{stem}.key.pem").exists()):
            key, cert = folder / f"{stem}.key.pem", folder / f"{stem}.cert.pem"
        if key is None or cert is None:
            if required:
                raise UsageError(f"no key for {organ_id}: give --keys DIR, or keys.dir or keys.key/keys.cert in vbdt.toml")
            return None
        return SigningKey.from_pem(input_path(key, what="key file"), input_path(cert, what="certificate file"))

    key = pair(files.key, files.cert, organ_id, True)
    assert key is not None
    person = pair(files.person_key, files.person_cert, "signer", False)
    seal = pair(files.seal_key, files.seal_cert, "seal", False) if files.seal_key else (key if person else None)
    if settings.trust is not None:
        trust = Path(settings.trust)
    elif folder is not None:
        trust = folder / "ca.pem"
    else:
        raise UsageError("no trust anchors: give --trust FILE, or trust or keys.dir in vbdt.toml")
    return key, person, seal, input_path(trust, what="trust anchors file")


def broker_identity(url: str) -> tuple[str, str]:
    """The broker user and vhost of an AMQP URL (``guest`` and ``/`` when absent), as RabbitMQ reads them."""
    parts = urlsplit(url)
    return unquote(parts.username) if parts.username else "guest", unquote(parts.path[1:]) or "/"


def _redacted_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}").geturl()


async def open_agency(settings: AgencySettings, *, own_user: bool = False, reconnect: ReconnectPolicy | None = None,
                      logged: bool = False, **options: Any) -> AgencyClient:
    """Check everything local, connect (declaring nothing as an agency user), open the client.

    ``own_user``: refuse, before anything is published, a broker user that is not this agency's
    (``<vhost>/<OrganId>``): the receivers would refuse what it publishes."""
    from vbdt.exchange.amqp import AmqpTransport
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.ledger import SqliteLedger
    from vbdt.exchange.transport import DEFAULT_RECONNECT

    organ_id = settings.organ_id
    directory = load_directory(settings.directory_path)
    directory.get(organ_id)  # UnknownAgency with a clear message
    key, person, seal, trust = signing_keys(settings)
    ledger_path = ledger_file(settings.ledger_path, organ_id)
    user, vhost = broker_identity(settings.url)
    agency_user = organ_id_for_user(user, vhost)
    # An agency's user may configure nothing (the topology is the operator's): only another user declares.
    transport: Transport = await AmqpTransport.connect(settings.url, declare=agency_user is None,
                                                       reconnect=reconnect or DEFAULT_RECONNECT)
    try:
        if own_user and agency_user != organ_id:
            raise AccessRefused(f"broker user {user!r} is not the user of {organ_id} on vhost {vhost!r} ({vhost}/{organ_id}): "
                                "receivers refuse what it publishes; use the agency's own URL from `vbdt broker provision`")
        if agency_user is not None and agency_user != organ_id:
            raise AccessRefused(f"broker user {user!r} belongs to {agency_user}, not to {organ_id}")
        if agency_user is None and not own_user:
            log.warning("connected as broker user %r, which is no agency: the receipts it publishes are refused by agencies "
                        "that check publishers; use the agency's own URL from `vbdt broker provision`", user)
        if logged:
            transport = LoggedTransport(transport)
        ledger = SqliteLedger(ledger_path)
    except BaseException:
        await transport.close()
        raise
    try:
        agency = AgencyClient(organ_id, transport=transport, ledger=ledger, key=key, trust=trust, directory=directory,
                              person=person, seal=seal, **options)
    except BaseException:
        await transport.close()
        ledger.close()
        raise
    try:
        await agency.open()
    except BaseException:
        await agency.close()
        raise
    return agency




@click.command("send")
@click.argument("file")
@click.option("--to", "to", multiple=True, metavar="SELECTOR", help="Recipients: OrganIds or selectors (default: the file's To).")
@click.option("--force", is_flag=True, help="Send an unsigned PDF attachment as it is when no person's key and seal "
              "are configured to sign it (nothing else is forcible).")
@agency_options
def send_command(file: str, to: Sequence[str], force: bool, organ_id: str | None, keys_dir: str | None,
                 trust_path: str | None, amqp_url: str | None, credentials: str | None, directory_path: str | None,
                 ledger_path: str | None, as_json: bool) -> None:
    """Sign and send an edXML FILE to its recipients (or --to selectors); print what the broker confirmed.

    Pre-flight, before connecting: a file signed already must verify as the sender's, the keys must
    match their certificates, be valid now and bound to the sender, every PDF must be original-valid
    (or unsigned and signed now with the person's key and the seal), the package must validate.
    The broker user must be the sender's own (``<vhost>/<OrganId>``, from `vbdt broker provision`):
    another user (the operator's) is refused before anything is published."""
    from vbdt.edxml.validation import read

    raw = read_document(file, limit=limits().max_bytes)
    document = read(raw, limits=limits())
    if not isinstance(document, Document):
        raise UsageError(f"{file} is a status message; send documents")
    sender = organ_id or current_config().organ_id or str(document.sender.organ_id)
    settings = agency_settings(sender, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)
    preflight_send(document, raw.getvalue(), settings, to=to, force=force)

    async def run() -> tuple[SendResult, dict[str, str | None]]:
        agency = await open_agency(settings, own_user=True)
        try:
            result = await agency.send(document, to=list(to) or None)
            names = {r: agency.directory.get(r).name if r in agency.directory else None for r in result.recipients}
            return result, names
        finally:
            await agency.close()

    result, names = asyncio.run(run())
    outcomes = send_outcomes(result)
    confirmed = sum(1 for outcome, _ in outcomes.values() if outcome == "confirmed")
    if as_json:
        echo_json("recipients", [{"organ_id": r, "name": names.get(r), "outcome": outcome, "reason": reason}
                                 for r, (outcome, reason) in outcomes.items()], document_id=result.document_id)
    else:
        click.echo(f"{result.document_id}: confirmed by the broker for {confirmed} of {len(result.recipients)} recipients")
        for recipient, (outcome, reason) in outcomes.items():
            if outcome != "confirmed":
                click.echo(f"  {recipient}: {outcome}: {reason}")
    if confirmed < len(outcomes):
        sys.exit(EXIT_INVALID)


def send_outcomes(result: SendResult) -> dict[str, tuple[str, str | None]]:
    """Recipient -> (outcome, reason) of a send, in the order of its recipients: ``confirmed`` by the
    broker, ``unroutable`` (no inbox), ``pending`` (still in the outbox: ``vbdt outbox flush``) or
    ``failed`` (the broker will never take it); the reason is None when confirmed."""
    found: dict[str, tuple[str, str | None]] = {}
    for recipient in result.recipients:
        found[recipient] = ("confirmed", None)
        for name, problems in (("unroutable", result.unroutable), ("pending", result.pending), ("failed", result.failed)):
            if recipient in problems:
                found[recipient] = (name, problems[recipient])
                break
    return found


def preflight_send(document: Document, raw: bytes, settings: AgencySettings, *, to: Sequence[str] = (),
                   force: bool = False) -> None:
    """The checks of :mod:`vbdt.cli.preflight` for a package ``settings.organ_id`` is about to send."""
    from vbdt.cli import preflight

    organ_id = settings.organ_id
    if str(document.sender.organ_id) != organ_id:
        raise UsageError(f"the document is from {document.sender.organ_id}, not from {organ_id} (--as)")
    directory = load_directory(settings.directory_path)
    directory.get(organ_id)  # UnknownAgency with a clear message
    key, person, seal, trust = signing_keys(settings)
    bounds = limits()
    preflight.check_envelope(raw, organ_id=organ_id, trust=trust, directory=directory, limits=bounds)
    preflight.check_keys(organ_id, directory, key, person=person, seal=seal)
    preflight.check_pdf_attachments(document.attachments, organ_id=organ_id, trust=trust, directory=directory,
                                    limits=bounds, will_sign=person is not None and seal is not None, force=force)
    if not to:  # with --to the recipients change: the client validates the package it builds
        preflight.check_document(document, directory, bounds)


@click.command("listen")
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="Also write each received document to DIR, for a DMS that watches a folder (default: out in "
                   "vbdt.toml, else nothing: the ledger is the store, `vbdt inbox` reads it).")
@click.option("--retention-days", type=click.IntRange(0, MAX_RETENTION_DAYS), default=None, metavar="DAYS",
              help="Drop from the ledger the bodies of items acknowledged DAYS ago, at start and hourly "
                   "(default: retention_days in vbdt.toml, else keep them).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many documents.")
@click.option("--idle", type=click.FloatRange(min=0), default=None, help="Stop after this many seconds without a message.")
@click.option("--no-publisher-check", is_flag=True, help="For brokers without per-agency users (everyone publishes as one user).")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None,
              help="Log lines on stderr: text (default, or log_format in vbdt.toml) or json (one object a line).")
@click.option("--give-up-after", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Exit 69 once the broker has been unavailable this long (default: retry forever).")
@click.option("--max-backoff", type=click.FloatRange(min=0.1), default=30.0, show_default=True, metavar="SECONDS",
              help="Longest wait between two attempts to reach the broker.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that verify and sign (1: a thread; one per core for the most throughput).")
@agency_options
def listen_command(out_dir: str | None, retention_days: int | None, count: int | None, idle: float | None,
                   no_publisher_check: bool, log_format: str | None, give_up_after: float | None, max_backoff: float,
                   workers: int,
                   organ_id: str | None, keys_dir: str | None, trust_path: str | None, amqp_url: str | None,
                   credentials: str | None, directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Receive as --as ORGANID: verify, store in the ledger (and --out), acknowledge (signed 01); receipts update the ledger.

    Runs as a service: retries forever (capped backoff) while the broker is away, and on SIGTERM
    or Ctrl-C finishes the document in hand and exits 0. Logs go to stderr (--log-format)."""
    config = current_config()
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)
    out = pick_path(out_dir, config.out)
    folder = output_dir(out) if out else None
    from vbdt.exchange.transport import ReconnectPolicy

    policy = ReconnectPolicy(attempts=None, initial=0.5, cap=max_backoff)
    listener = _Listener(settings, folder, count=count, idle=idle, check_publisher=not no_publisher_check,
                         give_up_after=give_up_after, policy=policy, as_json=as_json,
                         retention_days=retention_days if retention_days is not None else config.retention_days,
                         workers=workers)
    with service_logging(log_format or config.log_format or "text"):
        asyncio.run(listener.run())


class _Listener(Service["AgencyClient"]):
    """``vbdt listen``: connect (again) while the broker is away, store what arrives, stop cleanly on a signal."""

    def __init__(self, settings: AgencySettings, folder: Path | None, *, count: int | None, idle: float | None,
                 check_publisher: bool, give_up_after: float | None, policy: ReconnectPolicy, as_json: bool,
                 retention_days: int | None = None, workers: int = 1) -> None:
        super().__init__(policy, give_up_after, retention_days=retention_days)
        self.settings = settings
        self.workers = workers
        self.folder = folder
        self.count = count
        self.idle = idle
        self.check_publisher = check_publisher
        self.as_json = as_json

    async def open(self) -> AgencyClient:
        return await open_agency(self.settings, reconnect=self.policy, logged=True, check_publisher=self.check_publisher,
                                 reconnect_attempts=_INBOX_ATTEMPTS, on_receipt=log_receipt, on_refused=log_refusal,
                                 workers=self.workers)

    async def use(self, agency: AgencyClient) -> bool:
        await self._started(agency)
        return await self._consume(agency)

    async def close(self, agency: AgencyClient) -> None:
        await agency.close()

    def ledgers(self, agency: AgencyClient) -> list[Ledger]:
        return [agency.ledger]

    def stopped(self) -> None:
        event(logging.INFO, "stopped", "%s: stopped after %d documents", self.settings.organ_id, self.seen,
              organ_id=self.settings.organ_id, documents=self.seen)

    async def _started(self, agency: AgencyClient) -> None:
        organ_id, url = self.settings.organ_id, self.settings.url
        user, vhost = broker_identity(url)
        try:
            status = await agency.transport.inbox_status(organ_id)
            waiting: int | None = status.ready
            others: int | None = status.consumers
        except TransportError:
            waiting = others = None
        name = agency.me.organ_name or organ_id
        event(logging.INFO, "started", "listening as %s (%s) on %s as broker user %s: %s messages wait%s", organ_id, name,
              _redacted_url(url), user, "?" if waiting is None else waiting,
              f", {others} other consumer(s) attached (this one waits its turn)" if others else "",
              organ_id=organ_id, name=name, broker=_redacted_url(url), user=user, vhost=vhost, waiting=waiting,
              consumers=others)

    async def _consume(self, agency: AgencyClient) -> bool:
        """Store what arrives until done (``True``: --count, --idle or a signal) or a TransportError."""
        inbox = cast(AsyncGenerator["InboxItem", None], agency.inbox())
        try:
            while self.count is None or self.seen < self.count:
                following = asyncio.ensure_future(anext(inbox))
                stopping = asyncio.ensure_future(self.stop.wait())
                try:
                    done, _ = await asyncio.wait({following, stopping}, timeout=self.idle, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopping.cancel()
                if following not in done:  # a signal, or --idle: nothing is in hand
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                    return True
                try:
                    item = following.result()
                except StopAsyncIteration:
                    return True
                # In hand: stored and claimed before a signal is looked at again.
                self.seen += 1
                path = store_received(agency.ledger, item.sender, item.document_id, item.stored_as, self.folder)
                where = "the ledger" if path is None else str(path)
                event(logging.INFO, "received", "received %s %s from %s -> %s", item.kind, item.document_id, item.sender, where,
                      kind=item.kind, document_id=item.document_id, sender=item.sender,
                      file=None if path is None else str(path))
                line = {"kind": item.kind, "document_id": item.document_id, "from": item.sender,
                        "file": None if path is None else str(path)}
                click.echo(json.dumps(line, ensure_ascii=False) if self.as_json
                           else f"{item.kind} {item.document_id} from {item.sender} -> {where}")
                if self.stop.is_set():
                    return True
            return True
        finally:
            await inbox.aclose()


_INBOX_ATTEMPTS = 10  # the inbox's own retries on a connection; then the listener connects afresh


def log_receipt(status: StatusMessage) -> None:
    code = status.status_code
    event(logging.INFO, "receipt", "receipt %s (%s) for %s from %s applied", code.value, code.label,
          status.response_for.document_id, status.sender.organ_id, code=code.value, label=code.label,
          document_id=status.response_for.document_id, sender=str(status.sender.organ_id), note=status.description)


def log_refusal(rejection: MessageRejected, publisher: str | None) -> None:
    event(logging.WARNING, "refused", "refused %s from %s (publisher %s) at %s: %s", rejection.document_id or "a message",
          rejection.sender or "?", publisher or "?", rejection.stage, rejection.reason, stage=rejection.stage,
          reason=rejection.reason, document_id=rejection.document_id, sender=rejection.sender, publisher=publisher)


def store_received(ledger: Ledger, sender: str, document_id: str, key: str, folder: Path | None) -> Path | None:
    """Write a received package (as the ledger keeps it) to ``folder``, then claim and acknowledge it;
    without a folder only acknowledge it (the ledger, where it is stored, is the store).

    The client hands an item over already claimed; the claim is given back while the file is
    written, so a crash or an OSError in between leaves the package to be handed over again by
    the next ``listen``. The name never collides and never exceeds NAME_MAX (:func:`inbox_name`).
    """
    from vbdt.exchange.answers import body_of

    if folder is None:
        ledger.acknowledge(sender, document_id, key)  # claimed already by the inbox; the ack records it for good
        return None
    ledger.mark_incoming(sender, document_id, key, handed=False)
    stored = ledger.incoming(sender, document_id, key)
    if stored is None:
        raise LedgerError(f"{document_id} from {sender} was handed over but is not in the ledger")
    path = folder / inbox_name(sender, document_id, key)
    write_output(path, body_of(stored))  # an item not yet acknowledged always has its body
    ledger.claim_handover(sender, document_id, key)
    ledger.acknowledge(sender, document_id, key)  # written: never handed again
    return path


COMMANDS: list[click.Command] = [send_command, listen_command]  # status: vbdt.cli.status
