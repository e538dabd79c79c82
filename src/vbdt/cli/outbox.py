"""``vbdt outbox list|flush``: what this agency recorded for sending and the broker has not confirmed.

Every message (documents, receipts, answers) is in the ledger's outbox before it is published and
leaves it when the broker confirms it (:mod:`vbdt.exchange.outbox`). ``list`` reads the ledger
(no broker needed); ``flush`` publishes what waits, as ``listen`` does every few seconds.
"""

from __future__ import annotations

import asyncio
import sys

import click

from vbdt.cli.exchange import agency_settings, local_ledger, open_agency
from vbdt.cli.exits import EXIT_TEMPORARY
from vbdt.cli.options import agency_options
from vbdt.cli.output import age, echo_json, iso

__all__ = ["COMMANDS", "outbox_group"]


@click.group("outbox")
def outbox_group() -> None:
    """Messages recorded for sending: list them, publish those still waiting."""


@outbox_group.command("list")
@click.option("--all", "everything", is_flag=True, help="Also those confirmed and those the broker refused for good.")
@click.option("--as", "organ_id", metavar="ORGANID", help="The agency (or `as` in vbdt.toml).")
@click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: ledger in vbdt.toml, else .vbdt/<OrganId>.db).")
@click.option("--json", "as_json", is_flag=True, help='{"schema": 1, "messages": [...]} (see docs/cli.md).')
def outbox_list(everything: bool, organ_id: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Messages not confirmed by the broker yet, oldest first (exit 0 even when some wait)."""
    _, ledger = local_ledger(organ_id, ledger_path)
    try:
        records = ledger.outbox_records(pending_only=not everything)
    finally:
        ledger.close()
    rows = [{"message_id": r.message_id, "document_id": r.document_id, "recipient": r.recipient, "kind": r.kind,
             "size": r.size, "status": "pending" if r.pending else ("failed" if r.failed_at else "published"),
             "created_at": iso(r.created_at), "published_at": iso(r.published_at), "failed_at": iso(r.failed_at),
             "failure": r.failure} for r in records]
    if as_json:
        echo_json("messages", rows)
        return
    for record, row in zip(records, rows, strict=True):
        why = f" — {record.failure}" if record.failure else ""
        click.echo(f"{row['status']:<9} {age(record.created_at):>7} {record.kind:<8} {record.recipient:<15} "
                   f"{record.document_id} ({record.size:,} bytes){why}")
    pending = sum(1 for r in records if r.pending)
    click.echo(f"{pending} message(s) waiting for the broker" + (f", {len(records)} listed" if everything else ""))


@outbox_group.command("flush")
@agency_options
def outbox_flush(organ_id: str | None, keys_dir: str | None, trust_path: str | None, amqp_url: str | None,
                 credentials: str | None, directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Publish every message still waiting; exit 75 when some still wait (the broker refused them for now)."""
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)

    _, ledger = local_ledger(settings.organ_id, settings.ledger_path)
    try:
        waiting = len(ledger.outbox_records())
    finally:
        ledger.close()

    async def run() -> list[tuple[str, str, str]]:
        agency = await open_agency(settings, own_user=True)  # opening publishes what waits
        try:
            if agency.ledger.outbox_records():
                await agency.flush()  # once more: what the first attempt left
            return [(r.message_id, r.recipient, r.document_id) for r in agency.ledger.outbox_records()]
        finally:
            await agency.close()

    left = asyncio.run(run())
    if as_json:
        echo_json("messages", [{"message_id": m, "recipient": r, "document_id": d, "status": "pending"} for m, r, d in left],
                  published=max(0, waiting - len(left)))
    else:
        click.echo(f"published {max(0, waiting - len(left))} message(s); "
                   + ("the outbox is empty" if not left else f"{len(left)} still wait for the broker"))
        for _, recipient, document_id in left:
            click.echo(f"  {recipient}: {document_id}")
    if left:
        sys.exit(EXIT_TEMPORARY)


COMMANDS: list[click.Command] = [outbox_group]
