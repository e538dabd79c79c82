"""``vbdt recall|update|replace|resend``: the sender acting on a document it already sent.

- ``recall DOCUMENT_ID --reason`` asks every recipient that has not finished with it to give it
  back (13); their 15 or 16 moves the ledger (``vbdt status``).
- ``update FILE --of DOCUMENT_ID --reason`` and ``replace FILE --of …`` send FILE as an update
  (BussinessDocType 2) or the replacement (3) of the earlier document, to its recipients (or ``--to``).
- ``resend DOCUMENT_ID [--to SELECTOR…]`` sends a document again to recipients that rejected it
  (02) or had no inbox: a new delivery attempt whose receipts apply (the same signed package,
  under a new message id). A recipient still open, finished or recalled is refused (exit 1).

Like ``send``, each needs the agency's own broker user (``<vhost>/<OrganId>``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from vbdt.cli.config import current_config
from vbdt.cli.exchange import agency_settings, open_agency
from vbdt.cli.exits import EXIT_INVALID
from vbdt.cli.files import read_document
from vbdt.cli.options import agency_options, limits
from vbdt.cli.output import echo_json
from vbdt.edxml.model import Document
from vbdt.errors import UsageError

if TYPE_CHECKING:
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.outbox import SendResult

__all__ = ["COMMANDS", "recall_command", "replace_command", "resend_command", "update_command"]


def _run(settings: Any, action: Any) -> Any:
    async def run() -> Any:
        agency = await open_agency(settings, own_user=True)
        try:
            return await action(agency)
        finally:
            await agency.close()

    return asyncio.run(run())


def _report(result: SendResult, as_json: bool, what: str) -> None:
    """Print a send's outcome (the same JSON shape for one recipient or many); exit 1 if any is not confirmed."""
    from vbdt.cli.exchange import send_outcomes

    outcomes = send_outcomes(result)
    problems = {r: reason for r, (outcome, reason) in outcomes.items() if outcome != "confirmed"}
    if as_json:
        echo_json("recipients", [{"organ_id": r, "outcome": outcome, "reason": reason} for r, (outcome, reason) in outcomes.items()],
                  document_id=result.document_id, action=what)
    else:
        ok = len(result.recipients) - len(problems)
        click.echo(f"{result.document_id}: {what}, confirmed by the broker for {ok} of {len(result.recipients)} recipients")
        for recipient, reason in problems.items():
            click.echo(f"  {recipient}: {reason}")
    if problems:
        sys.exit(EXIT_INVALID)


def _sender_of(file_document: Document | None, organ_id: str | None) -> str | None:
    if organ_id is not None:
        return organ_id
    return current_config().organ_id or (str(file_document.sender.organ_id) if file_document is not None else None)


@click.command("recall")
@click.argument("document_id")
@click.option("--reason", required=True, help="Why the document is recalled (sent with the 13).")
@agency_options
def recall_command(document_id: str, reason: str, organ_id: str | None, keys_dir: str | None, trust_path: str | None,
                   amqp_url: str | None, credentials: str | None, directory_path: str | None, ledger_path: str | None,
                   as_json: bool) -> None:
    """Ask the recipients of DOCUMENT_ID to give it back (13): those that have not finished with it."""
    if not reason.strip():
        raise UsageError("--reason must say why")
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)

    async def act(agency: AgencyClient) -> list[str]:
        return await agency.recall(document_id, reason)

    asked: list[str] = _run(settings, act)
    if as_json:
        echo_json("recipients", [{"organ_id": r, "state": "recall-requested"} for r in asked], document_id=document_id)
    else:
        click.echo(f"{document_id}: recall asked of {len(asked)} recipients" + (": " + ", ".join(asked) if asked else
                   " (every recipient had finished with it, rejected it, or was undeliverable)"))
    if not asked:
        sys.exit(EXIT_INVALID)


def _amend_command(name: str, label: str) -> click.Command:
    @click.command(name)
    @click.argument("file")
    @click.option("--of", "of", required=True, metavar="DOCUMENT_ID", help=f"The earlier document this one is the {label} of.")
    @click.option("--reason", required=True, help=f"Why ({label}): written in the package.")
    @click.option("--to", "to", multiple=True, metavar="SELECTOR", help="Recipients (default: those of the earlier document).")
    @agency_options
    def command(file: str, of: str, reason: str, to: Sequence[str], organ_id: str | None, keys_dir: str | None,
                trust_path: str | None, amqp_url: str | None, credentials: str | None, directory_path: str | None,
                ledger_path: str | None, as_json: bool) -> None:
        from vbdt.edxml.validation import read

        if not reason.strip():
            raise UsageError("--reason must say why")
        document = read(read_document(file, limit=limits().max_bytes), limits=limits())
        if not isinstance(document, Document):
            raise UsageError(f"{file} is a status message; give the new document")
        settings = agency_settings(_sender_of(document, organ_id), keys_dir, trust_path, amqp_url, credentials,
                                   directory_path, ledger_path)

        async def act(agency: AgencyClient) -> SendResult:
            change = agency.update if name == "update" else agency.replace
            return await change(document, of=of, reason=reason, to=list(to) or None)

        _report(_run(settings, act), as_json, label)

    command.help = (f"Send the edXML FILE as the {label} of the document --of (BussinessDocType "
                    f"{2 if name == 'update' else 3}); recipients answer 15 (agree) or 16 (refuse).")
    return command


update_command = _amend_command("update", "update")
replace_command = _amend_command("replace", "replacement")


@click.command("resend")
@click.argument("document_id")
@click.option("--to", "to", multiple=True, metavar="SELECTOR",
              help="Only these recipients (default: every one that rejected it or had no inbox).")
@agency_options
def resend_command(document_id: str, to: Sequence[str], organ_id: str | None, keys_dir: str | None, trust_path: str | None,
                   amqp_url: str | None, credentials: str | None, directory_path: str | None, ledger_path: str | None,
                   as_json: bool) -> None:
    """Send DOCUMENT_ID again to recipients that rejected it (02) or had no inbox: a new delivery attempt.

    The same signed package under a new message id; the receipts of the new attempt move the
    ledger again (``vbdt status`` shows the attempt). Exit 1 for a recipient whose delivery is
    still open, finished or recalled: nothing is sent then."""
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)

    async def act(agency: AgencyClient) -> SendResult:
        return await agency.resend(document_id, list(to) or None)

    _report(_run(settings, act), as_json, "sent again")


COMMANDS: list[click.Command] = [recall_command, update_command, replace_command, resend_command]
