"""``vbdt status``: where each document this agency sent stands at each recipient, from its ledger.

Per recipient: its name, the state and its Vietnamese label, the reason of a rejection, the
delivery attempt, how long since it was sent, and an overdue mark. Overdue follows Decree 30/2020
on the working-day calendar (:mod:`vbdt.exchange.deadlines`: weekends and Vietnamese public
holidays): arrival not confirmed by the end of the next working day after sending, or not completed
by the end of the document's due date. A summary line counts the states.

Filters: ``--state``, ``--overdue``, ``--since`` (sent since), ``--to SELECTOR`` (recipients).
``--watch SECONDS`` prints the report again every so many seconds until Ctrl-C (exit 0).

Which recipients are offline: with an operator's broker URL (``--admin-url``, ``VBDT_ADMIN_URL`` or
``admin_amqp`` in vbdt.toml; an agency's own user may look only at its own inbox), each
recipient's inbox depth and consumers (:meth:`~vbdt.exchange.transport.Transport.inbox_status`).
When the broker cannot tell (unreachable, refused), the report says so once and goes on without.
``--json`` prints ``{"schema": 1, "summary": {...}, "documents": [...]}`` (see ``docs/cli.md``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from vbdt.cli.config import current_config, pick_path
from vbdt.cli.exchange import local_ledger
from vbdt.cli.options import check_amqp_url, load_directory
from vbdt.cli.output import SCHEMA, age, iso, parse_since
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import AccessRefused, TransportError, UsageError
from vbdt.exchange.receipts import DeliveryState

if TYPE_CHECKING:
    from vbdt.directory.agencies import Directory
    from vbdt.exchange.ledger import Ledger
    from vbdt.exchange.transport import InboxStatus

__all__ = ["COMMANDS", "Inboxes", "inbox_statuses", "status_command", "status_report"]

Inboxes = Mapping[str, "InboxStatus | None"]
"""OrganId → its inbox as the broker sees it; ``None`` for a recipient without an inbox on the vhost."""

_ADMIN_TIMEOUT = 5.0  # a status report should not hang on a broker that does not answer


def inbox_statuses(admin_url: str, organ_ids: Sequence[str]) -> tuple[Inboxes | None, str | None]:
    """The inboxes of ``organ_ids`` through one connection as ``admin_url``'s user; else ``(None, why)``.

    Never raises for the broker's sake: a status report still reads the ledger when the broker
    cannot say who is offline."""
    import asyncio

    from vbdt.exchange.amqp import AmqpTransport

    async def look() -> dict[str, InboxStatus | None]:
        transport = await AmqpTransport.connect(admin_url, declare=False, timeout=_ADMIN_TIMEOUT)
        try:
            found: dict[str, InboxStatus | None] = {}
            for organ_id in organ_ids:
                try:
                    found[organ_id] = await transport.inbox_status(organ_id)
                except AccessRefused:
                    raise  # the user may not look: no point asking for the others
                except TransportError:
                    found[organ_id] = None  # no inbox on this vhost (not provisioned)
            return found
        finally:
            await transport.close()

    try:
        return asyncio.run(look()), None
    except AccessRefused as exc:
        return None, f"{exc} (an operator's URL is needed: --admin-url)"
    except TransportError as exc:
        return None, str(exc)


def status_report(ledger: Ledger, directory: Directory, *, document_id: str | None = None, states: Sequence[str] = (),
                  overdue_only: bool = False, since: dt.datetime | None = None, to: Sequence[str] = (),
                  now: dt.datetime | None = None, inboxes: Inboxes | None = None) -> dict[str, Any]:
    """The report of ``vbdt status`` as its JSON (documents with their recipients, and the summary).

    ``inboxes`` (from :func:`inbox_statuses`) adds each recipient's inbox depth and consumers;
    without it those fields are null (unknown, not zero)."""
    now = now or dt.datetime.now(VIETNAM_TZ)
    wanted = {str(a.organ_id) for a in directory.select(*to)} if to else None
    late = {(o.document_id, o.recipient): o for o in ledger.overdue(now)}
    documents: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for sent in ledger.documents():
        if document_id is not None and sent.document_id != document_id:
            continue
        recipients = []
        for d in ledger.deliveries(sent.document_id):
            overdue = late.get((sent.document_id, d.recipient))
            if ((wanted is not None and d.recipient not in wanted) or (states and d.state.value not in states)
                    or (overdue_only and overdue is None) or (since is not None and (d.sent_at is None or d.sent_at < since))):
                continue
            counts[d.state.value] += 1
            recipients.append({
                "organ_id": d.recipient, "name": directory.get(d.recipient).name if d.recipient in directory else None,
                "state": d.state.value, "label": d.state.label, "reason": d.reason, "attempt": d.attempt,
                "sent_at": iso(d.sent_at), "updated_at": iso(d.updated_at),
                "age_seconds": int((now - d.sent_at).total_seconds()) if d.sent_at else None,
                "overdue": overdue is not None, "overdue_reason": overdue.why if overdue else None,
                "deadline": iso(overdue.deadline) if overdue else None, "late_by_working_days": overdue.late_by if overdue else 0,
                **_inbox_fields(inboxes, d.recipient),
            })
        if recipients or (document_id is not None and not (states or overdue_only or since or to)):
            documents.append({"document_id": sent.document_id, "subject": sent.subject, "code": sent.code, "kind": sent.kind,
                              "concerns": sent.replaces, "promulgated": sent.promulgated.isoformat(),
                              "due_date": sent.due_date.isoformat() if sent.due_date else None, "recipients": recipients})
    overdue_count = sum(1 for doc in documents for r in doc["recipients"] if r["overdue"])
    summary = {"documents": len(documents), "deliveries": sum(counts.values()), "states": dict(sorted(counts.items())),
               "overdue": overdue_count, "at": iso(now),
               "offline": None if inboxes is None else sorted({r["organ_id"] for doc in documents for r in doc["recipients"]
                                                               if r["online"] is False})}
    return {"schema": SCHEMA, "summary": summary, "documents": documents}


def _inbox_fields(inboxes: Inboxes | None, organ_id: str) -> dict[str, Any]:
    inbox = inboxes.get(organ_id) if inboxes is not None else None
    if inbox is None:
        return {"inbox_ready": None, "inbox_consumers": None, "online": None}
    return {"inbox_ready": inbox.ready, "inbox_consumers": inbox.consumers, "online": inbox.online}


def _recipients(report: dict[str, Any]) -> list[str]:
    return sorted({r["organ_id"] for doc in report["documents"] for r in doc["recipients"]})


def _print(report: dict[str, Any], now: dt.datetime) -> None:
    for doc in report["documents"]:
        click.echo(f"{doc['document_id']}  {doc['subject']}")
        for r in doc["recipients"]:
            name = f" {r['name']}" if r["name"] else ""
            why = f" — {r['reason']}" if r["reason"] else ""
            attempt = f" (lần gửi {r['attempt']})" if r["attempt"] > 1 else ""
            sent = dt.datetime.fromisoformat(r["sent_at"]) if r["sent_at"] else None
            ago = f"  {age(sent, now)}" if sent else ""
            mark = f"  QUÁ HẠN: {r['overdue_reason']}" if r["overdue"] else ""
            inbox = ""
            if r["online"] is not None:
                readers = f"{r['inbox_consumers']} consumer(s)" if r["online"] else "OFFLINE, no consumer"
                inbox = f"  [inbox: {r['inbox_ready']} waiting, {readers}]"
            click.echo(f"  {r['organ_id']:<15}{name}  {r['state']:<16} {r['label']}{why}{attempt}{ago}{mark}{inbox}")
    s = report["summary"]
    states = ", ".join(f"{n} {state}" for state, n in s["states"].items()) or "nothing"
    offline = f"; {len(s['offline'])} recipient(s) offline" if s["offline"] is not None else ""
    click.echo(f"{s['documents']} documents, {s['deliveries']} deliveries: {states}; {s['overdue']} overdue{offline}")


@click.command("status")
@click.argument("document_id", required=False)
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in DeliveryState]),
              help="Only deliveries in this state (repeatable).")
@click.option("--overdue", "overdue_only", is_flag=True, help="Only deliveries past a Decree 30 deadline.")
@click.option("--since", metavar="WHEN", default=None, help="Only deliveries sent since a date, a time or a duration back (7d).")
@click.option("--to", "to", multiple=True, metavar="SELECTOR", help="Only these recipients (OrganIds or selectors).")
@click.option("--watch", type=click.FloatRange(min=0.5), default=None, metavar="SECONDS",
              help="Print again every SECONDS until Ctrl-C.")
@click.option("--as", "organ_id", metavar="ORGANID", help="The sending agency whose ledger to read (or `as` in vbdt.toml).")
@click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: ledger in vbdt.toml, else .vbdt/<OrganId>.db).")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory, for names (default: the example one).")
@click.option("--admin-url", "admin_url", envvar="VBDT_ADMIN_URL", metavar="URL",
              help="An operator's AMQP URL, to show each recipient's inbox depth and consumers (or admin_amqp in vbdt.toml).")
@click.option("--json", "as_json", is_flag=True, help='{"schema": 1, "summary": {...}, "documents": [...]} (see docs/cli.md).')
def status_command(document_id: str | None, states: Sequence[str], overdue_only: bool, since: str | None, to: Sequence[str],
                   watch: float | None, organ_id: str | None, ledger_path: str | None, directory_path: str | None,
                   admin_url: str | None, as_json: bool) -> None:
    """Per-recipient states of DOCUMENT_ID (all documents when omitted), overdue ones marked, a summary line."""
    import json

    when = parse_since(since)
    admin = check_amqp_url(admin_url, "--admin-url") if admin_url else current_config().admin_amqp
    agency, ledger = local_ledger(organ_id, ledger_path)
    noted = False
    try:
        directory = load_directory(pick_path(directory_path, current_config().directory))
        if to:
            directory.select(*to)  # a bad selector fails now, once
        def once() -> None:
            nonlocal noted
            now = dt.datetime.now(VIETNAM_TZ)
            report = status_report(ledger, directory, document_id=document_id, states=states, overdue_only=overdue_only,
                                   since=when, to=to, now=now)
            if document_id is not None and not report["documents"] and not (states or overdue_only or since or to):
                raise UsageError(f"{document_id} is not in the ledger of {agency}")
            if admin is not None and report["documents"]:
                inboxes, why = inbox_statuses(admin, _recipients(report))
                if inboxes is not None:
                    report = status_report(ledger, directory, document_id=document_id, states=states,
                                           overdue_only=overdue_only, since=when, to=to, now=now, inboxes=inboxes)
                elif not noted:  # once, not at every refresh of --watch
                    click.echo(f"vbdt: recipients' inboxes unknown: {why}", err=True)
                    noted = True
            if as_json:
                click.echo(json.dumps(report, ensure_ascii=False, indent=None if watch else 2))
            else:
                if watch:
                    click.echo(f"— {now:%d/%m/%Y %H:%M:%S} —")
                _print(report, now)

        if watch is None:
            once()
            return
        try:
            while True:
                once()
                time.sleep(watch)
        except KeyboardInterrupt:
            return  # watching ends with Ctrl-C, whenever it comes (sleeping or refreshing): not a failure
    finally:
        ledger.close()


COMMANDS: list[click.Command] = [status_command]
