"""``vbdt health``: is this agency's exchange working? For monitoring, cron and systemd.

Checks, each ``ok``, ``failed`` or ``skipped`` with a note:

- ``certificate``: the agency's (and the signing person's, the seal's) certificate is valid now and
  for more than ``--days`` days;
- ``outbox``: nothing in the ledger waits for the broker's confirm (a pending publish);
- ``broker``: the broker answers and takes the agency's user;
- ``inbox``: someone consumes the agency's inbox (a passive declare counts consumers; skipped with
  a note when the broker does not let this user look) and how many messages wait.

Exit code: 0 healthy, 1 unhealthy, 69 broker unavailable (77 when the broker refuses the user).
``--json`` prints ``{"schema": 1, "organ_id", "healthy", "checks": [{"name", "status", "detail", ...}]}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from vbdt.cli.exchange import AgencySettings, agency_settings, broker_identity, ledger_file, signing_keys
from vbdt.cli.exits import EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, fail, one_line
from vbdt.cli.options import agency_options
from vbdt.errors import AccessRefused, TransportError, UsageError

__all__ = ["COMMANDS", "Check", "health_command"]

SCHEMA = 1


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  # "ok", "failed" or "skipped"
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def _certificates(settings: AgencySettings, days: int, now: dt.datetime) -> list[Check]:
    key, person, seal, _trust = signing_keys(settings)
    roles = [("agency", key), ("person", person)] + ([("seal", seal)] if seal is not None and seal is not key else [])
    checks = []
    for role, signing in roles:
        if signing is None:
            continue
        cert = signing.certificate
        left = (cert.not_valid_after_utc - now).total_seconds() / 86400
        data = {"role": role, "subject": cert.subject.rfc4514_string(), "not_after": cert.not_valid_after_utc.isoformat(),
                "days_left": int(left)}
        if cert.not_valid_before_utc > now:
            checks.append(Check("certificate", "failed", f"{role}: not valid before {cert.not_valid_before_utc:%Y-%m-%d}", data))
        elif left <= days:
            what = "expired" if left < 0 else f"expires in {int(left)} days"
            checks.append(Check("certificate", "failed", f"{role}: {what} ({cert.not_valid_after_utc:%Y-%m-%d}); renew it", data))
        else:
            checks.append(Check("certificate", "ok", f"{role}: valid for {int(left)} more days", data))
    return checks


def _outbox(settings: AgencySettings) -> Check:
    from vbdt.exchange.ledger import SqliteLedger

    path = ledger_file(settings.ledger_path, settings.organ_id)
    if not path.exists():
        return Check("outbox", "skipped", f"no ledger at {path} yet", {"ledger": str(path)})
    ledger = SqliteLedger(path)
    try:
        pending = len(ledger.pending())
    finally:
        ledger.close()
    if pending:
        return Check("outbox", "failed", f"{pending} message(s) wait for the broker's confirm (run vbdt listen to flush)",
                     {"pending": pending, "ledger": str(path)})
    return Check("outbox", "ok", "empty", {"pending": 0, "ledger": str(path)})


async def _broker(settings: AgencySettings, timeout: float) -> tuple[list[Check], TransportError | None]:
    """The broker and inbox checks, and the error that made the broker unavailable (or refused the user)."""
    from vbdt.exchange.amqp import AmqpTransport
    from vbdt.exchange.transport import ReconnectPolicy

    user, vhost = broker_identity(settings.url)
    where = {"user": user, "vhost": vhost}
    try:
        transport = await AmqpTransport.connect(settings.url, declare=False, timeout=timeout, reconnect=ReconnectPolicy(attempts=1))
    except TransportError as exc:
        return [Check("broker", "failed", one_line(exc), where)], exc
    try:
        checks = [Check("broker", "ok", f"connected as {user} on vhost {vhost}", where)]
        try:
            status = await transport.inbox_status(settings.organ_id)
        except AccessRefused as exc:
            checks.append(Check("inbox", "skipped", f"this user may not look at the inbox ({one_line(exc)})"))
        except TransportError as exc:
            checks.append(Check("inbox", "failed", one_line(exc)))
        else:
            data = {"waiting": status.ready, "consumers": status.consumers}
            if status.online:
                checks.append(Check("inbox", "ok", f"{status.consumers} consumer(s), {status.ready} message(s) waiting", data))
            else:
                checks.append(Check("inbox", "failed", f"nobody consumes it (is vbdt listen running?); {status.ready} message(s) waiting",
                                    data))
        return checks, None
    finally:
        await transport.close()


@click.command("health")
@click.option("--days", type=click.IntRange(min=0), default=30, show_default=True,
              help="Unhealthy when a certificate expires within this many days.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the broker.")
@agency_options
def health_command(days: int, timeout: float, organ_id: str | None, keys_dir: str | None, trust_path: str | None,
                   amqp_url: str | None, credentials: str | None, directory_path: str | None, ledger_path: str | None,
                   as_json: bool) -> None:
    """Check one agency: certificate expiry, outbox empty, broker reachable, inbox consumed.

    Exit 0 healthy, 1 unhealthy, 69 broker unavailable, 77 the broker refuses the user."""
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)
    if not settings.organ_id:
        raise UsageError("--as ORGANID is required")
    checks = _certificates(settings, days, dt.datetime.now(dt.UTC))
    checks.append(_outbox(settings))
    broker_checks, broker_error = asyncio.run(_broker(settings, timeout))
    checks += broker_checks
    healthy = all(c.status != "failed" for c in checks)
    if as_json:
        report = {"schema": SCHEMA, "organ_id": settings.organ_id, "healthy": healthy,
                  "checks": [{k: v for k, v in asdict(c).items() if k != "data"} | c.data for c in checks]}
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for c in checks:
            click.echo(f"{c.status:<8} {c.name:<12} {c.detail}")
        click.echo(f"{settings.organ_id}: {'healthy' if healthy else 'UNHEALTHY'}")
    if broker_error is not None:
        if isinstance(broker_error, AccessRefused):
            raise broker_error  # 77, one line, from the guard
        fail(f"broker unavailable: {one_line(broker_error)}", EXIT_UNAVAILABLE)
    sys.exit(EXIT_OK if healthy else EXIT_INVALID)


COMMANDS: list[click.Command] = [health_command]
