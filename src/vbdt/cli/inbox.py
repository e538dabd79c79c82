"""``vbdt inbox list|show|prune``: what this agency received, from its ledger (no broker, no keys needed).

Each received item (a document, an update, a replacement, a revocation, a recall request) is stored
in the ledger by ``vbdt listen`` with the verdict computed at receipt and every answer sent about
it; these commands read it. ``vbdt answer`` answers one. ``prune`` applies retention now: the
bodies of items acknowledged more than N days ago go, their records stay (``show`` says so).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from vbdt.cli.config import MAX_RETENTION_DAYS, current_config, pick_path
from vbdt.cli.exchange import local_ledger
from vbdt.cli.files import output_file, write_output
from vbdt.cli.options import load_directory
from vbdt.cli.output import echo_json, iso, parse_since
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ, Document, StatusMessage
from vbdt.errors import UsageError, VbdtError

if TYPE_CHECKING:
    from vbdt.directory.agencies import Directory
    from vbdt.exchange.ledger import Incoming, Ledger

__all__ = ["COMMANDS", "DROPPED_LABEL", "describe", "find_received", "inbox_group", "state_label"]

DROPPED_LABEL = "đã xoá theo thời hạn lưu trữ (body dropped by retention)"
"""What ``inbox`` says of an item whose package retention dropped."""

# What this agency last reported about an item: a status code, or "received" before the 01 went.
STATES = ("received", *(c.value for c in StatusCode))


def state_label(state: str) -> str:
    """The Vietnamese label of what was last reported (``received``: stored, 01 not sent yet)."""
    try:
        return StatusCode.of(state).label
    except ValueError:
        return "Đã nhận, chưa gửi xác nhận"


def _name(directory: Directory | None, organ_id: str) -> str | None:
    if directory is None or organ_id not in directory:
        return None
    return directory.get(organ_id).name


def _kind(stored: Incoming) -> str:
    return "recall" if stored.kind.startswith("recall:") else stored.kind


def describe(stored: Incoming, directory: Directory | None, *, details: bool = False) -> dict[str, Any]:
    """One received item as the JSON of ``vbdt inbox`` (see ``docs/cli.md``); ``details`` adds the
    verdict, the attachments and the history of answers. An item whose package retention dropped
    keeps its record: subject, code, concerns, due date and attachments are then unknown (null)."""
    from vbdt.edxml.validation import read
    from vbdt.exchange.answers import KIND_OF, Verdict

    entry: dict[str, Any] = {
        "document_id": stored.document_id, "sender": stored.sender, "sender_name": _name(directory, stored.sender),
        "kind": _kind(stored), "stored_as": stored.kind, "state": stored.state, "state_label": state_label(stored.state),
        "received_at": iso(stored.received_at), "acknowledged": stored.acknowledged, "size": stored.size,
        "subject": None, "code": None, "concerns": None, "due_date": None, "body_dropped_at": iso(stored.dropped_at),
    }
    if details:
        verdict = Verdict.from_json(stored.verdict) if stored.verdict else None
        entry["verdict"] = None if verdict is None else {
            "agency": verdict.agency, "signer": verdict.signer, "chain": verdict.chain, "binding": verdict.binding,
            "signing_time": iso(verdict.signing_time), "warnings": verdict.warnings,
            "pdfs": [{"name": name, "original_valid": pdf.original_valid, "reasons": pdf.reasons, "signatures": pdf.signatures}
                     for name, pdf in verdict.pdfs.items()]}
        entry["attachments"] = None
    if stored.body is None:
        return entry
    try:
        package = read(stored.body)
    except VbdtError as exc:  # stored by an older vbdt under other rules: still listed
        entry["unreadable"] = str(exc)
        return entry
    if isinstance(package, Document):
        entry.update(subject=package.subject, code=str(package.code), kind=KIND_OF[package.business.doc_type],
                     concerns=package.business.document_id if KIND_OF[package.business.doc_type] != "document" else None,
                     due_date=package.due_date.isoformat() if package.due_date else None)
    elif isinstance(package, StatusMessage):
        entry.update(subject=package.description, concerns=stored.document_id)
    if details:
        entry["attachments"] = ([{"name": a.name, "size": a.size} for a in package.attachments]
                                if isinstance(package, Document) else [])
    return entry


def _history(ledger: Ledger, stored: Incoming) -> list[dict[str, Any]]:
    return [{"code": h.event, "label": state_label(h.event), "note": h.note, "staff": h.staff, "at": iso(h.at)}
            for h in ledger.history(stored.document_id, stored.sender)]


def find_received(ledger: Ledger, document_id: str, sender: str | None, *, recall: bool = False) -> Incoming:
    """The received item ``document_id`` (from ``sender`` when given): the document itself, or with
    ``recall`` the latest recall request about it. UsageError when there is none, or several senders."""
    rows = [r for r in ledger.received(sender=sender) if r.document_id == document_id]
    rows = [r for r in rows if r.kind.startswith("recall:") == recall]
    if not rows:
        what = "recall request about" if recall else "document"
        raise UsageError(f"no {what} {document_id} in this agency's inbox" + (f" from {sender}" if sender else ""))
    senders = sorted({r.sender for r in rows})
    if len(senders) > 1:
        raise UsageError(f"{document_id} came from {len(senders)} agencies ({', '.join(senders)}): give --from SENDER")
    return rows[-1]


@click.group("inbox")
def inbox_group() -> None:
    """What this agency received: list it, show one item (from the ledger; no broker needed)."""


_as = click.option("--as", "organ_id", metavar="ORGANID", help="The receiving agency (or `as` in vbdt.toml).")
_ledger = click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: ledger in vbdt.toml, else .vbdt/<OrganId>.db).")
_directory = click.option("--directory", "directory_path", metavar="FILE", help="Agency directory, for names (default: the example one).")
_json = click.option("--json", "as_json", is_flag=True, help='{"schema": 1, "items": [...]} (see docs/cli.md).')


@inbox_group.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only items whose last answer is this code (or received).")
@click.option("--from", "sender", metavar="ORGANID", default=None, help="Only items from this sender.")
@click.option("--since", metavar="WHEN", default=None, help="Received since a date, a time or a duration back (7d, 12h).")
@click.option("--unacknowledged", is_flag=True, help="Only items the application (or listen) has not acknowledged.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many (the oldest first).")
@_as
@_ledger
@_directory
@_json
def inbox_list(state: str | None, sender: str | None, since: str | None, unacknowledged: bool, limit: int | None,
               organ_id: str | None, ledger_path: str | None, directory_path: str | None, as_json: bool) -> None:
    """Received items, oldest first: when, from whom, what, and what this agency last answered."""
    from vbdt.cli.options import check_organ_id

    if sender is not None:
        sender = check_organ_id(sender, "--from")
    when = parse_since(since)
    _, ledger = local_ledger(organ_id, ledger_path)
    try:
        rows = ledger.received(state=state, sender=sender, since=when, unacknowledged=True if unacknowledged else None,
                               limit=limit)
        directory = load_directory(pick_path(directory_path, current_config().directory))
        items = [describe(r, directory) for r in rows]
    finally:
        ledger.close()
    if as_json:
        echo_json("items", items)
        return
    counts: dict[str, int] = {}
    for item in items:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    for item in items:
        received = dt.datetime.fromisoformat(item["received_at"]).strftime("%d/%m/%Y %H:%M") if item["received_at"] else "?"
        who = f"{item['sender']} {item['sender_name'] or ''}".strip()
        mark = "" if item["acknowledged"] else "  *"
        click.echo(f"{received}  {item['state']:<8} {item['kind']:<8} {item['document_id']}  — {who}{mark}")
        if item["subject"]:
            click.echo(f"{'':17} {item['subject']}")
        elif item["body_dropped_at"]:
            click.echo(f"{'':17} ({DROPPED_LABEL})")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing"
    click.echo(f"{len(items)} items: {summary} (* not acknowledged)")


@inbox_group.command("show")
@click.argument("document_id")
@click.option("--from", "sender", metavar="ORGANID", default=None, help="The sender, when several sent this DocumentId.")
@click.option("--recall", is_flag=True, help="Show the latest recall request about the document instead.")
@click.option("--save", "save_path", metavar="FILE", default=None, help="Write the package as received (signed bytes) to FILE.")
@_as
@_ledger
@_directory
@_json
def inbox_show(document_id: str, sender: str | None, recall: bool, save_path: str | None, organ_id: str | None,
               ledger_path: str | None, directory_path: str | None, as_json: bool) -> None:
    """One received item: the document, the verification verdict, the attachments, every answer sent."""
    from vbdt.cli.options import check_organ_id
    from vbdt.exchange.answers import body_of

    if sender is not None:
        sender = check_organ_id(sender, "--from")
    target = output_file(save_path) if save_path else None
    _, ledger = local_ledger(organ_id, ledger_path)
    try:
        stored = find_received(ledger, document_id, sender, recall=recall)
        body = body_of(stored) if target is not None else None  # BodyDropped (exit 2) before anything is printed
        directory = load_directory(pick_path(directory_path, current_config().directory))
        item = describe(stored, directory, details=True)
        item["history"] = _history(ledger, stored)
    finally:
        ledger.close()
    if target is not None and body is not None:
        write_output(target, body)
    if as_json:
        echo_json("items", [item])
        return
    click.echo(f"{item['kind']} {item['document_id']}")
    for label, value in [("from", f"{item['sender']} {item['sender_name'] or ''}".strip()), ("subject", item["subject"]),
                         ("code", item["code"]), ("concerns", item["concerns"]), ("due", item["due_date"]),
                         ("received", item["received_at"]), ("state", f"{item['state']} {item['state_label']}"),
                         ("acknowledged", "yes" if item["acknowledged"] else "no")]:
        if value:
            click.echo(f"  {label:<13} {value}")
    if item["body_dropped_at"]:
        dropped = dt.datetime.fromisoformat(item["body_dropped_at"]).strftime("%d/%m/%Y %H:%M")
        click.echo(f"  {'body':<13} {DROPPED_LABEL}, {dropped}; the record, verdict and answers remain")
    verdict = item.get("verdict")
    if verdict:
        click.echo(f"  {'signed by':<13} {verdict['signer']} ({verdict['binding']})")
        for pdf in verdict["pdfs"]:
            click.echo(f"  {'pdf':<13} {pdf['name']}: {'original-valid' if pdf['original_valid'] else 'NOT original-valid'}")
    for attachment in item.get("attachments") or []:
        click.echo(f"  {'attachment':<13} {attachment['name']} ({attachment['size']:,} bytes)")
    for event in item["history"]:
        who = f" — {event['staff']}" if event["staff"] else ""
        note = f": {event['note']}" if event["note"] else ""
        click.echo(f"  {'answered':<13} {event['at']} {event['code']} {event['label']}{note}{who}")
    if target is not None:
        click.echo(f"  {'saved to':<13} {target}")


@inbox_group.command("prune")
@click.option("--older-than", "older_than", type=click.IntRange(0, MAX_RETENTION_DAYS), default=None, metavar="DAYS",
              help="Drop the bodies of items acknowledged more than DAYS days ago (default: retention_days in vbdt.toml).")
@_as
@_ledger
@click.option("--json", "as_json", is_flag=True, help='{"schema": 1, "dropped", "bytes", "before", "items": [...]} (see docs/cli.md).')
def inbox_prune(older_than: int | None, organ_id: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Retention now: drop from the ledger the bodies of received items acknowledged more than DAYS ago.

    Their records stay (inbox list/show: state, verdict, answers); an item not acknowledged keeps its
    body whatever its age, and so does a body the outbox still needs. The space is reused by the
    ledger for what it stores next (the file does not shrink)."""
    days = older_than if older_than is not None else current_config().retention_days
    if days is None:
        raise UsageError("--older-than DAYS is required (or retention_days in vbdt.toml)")
    before = dt.datetime.now(VIETNAM_TZ) - dt.timedelta(days=days)
    _, ledger = local_ledger(organ_id, ledger_path)
    try:
        dropped = ledger.drop_bodies(before)
    finally:
        ledger.close()
    if as_json:
        echo_json("items", [{"document_id": d, "sender": s, "stored_as": k} for s, d, k in dropped.items],
                  dropped=dropped.bodies, bytes=dropped.bytes, before=iso(before))
        return
    click.echo(f"dropped {dropped.bodies} bodies ({dropped.bytes:,} bytes) of {len(dropped.items)} items "
               f"acknowledged before {before:%d/%m/%Y %H:%M}")


COMMANDS: list[click.Command] = [inbox_group]
