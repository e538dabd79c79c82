"""``vbdt answer DOCUMENT_ID ACTION``: answer a received document (or a recall) with a signed status.

The actions are the standard's answers (:class:`vbdt.exchange.answers.InboxItem`): ``accept`` 03,
``assign`` 04, ``processing`` 05, ``complete`` 06, ``reject`` 02 (with ``--note``, the reason);
and about a recall request, an update or a replacement: ``agree`` 15, ``refuse`` 16 (with the reason).

An answer the sender's ledger would refuse is refused here first, before anything is signed, by
the same state machine (:mod:`vbdt.exchange.receipts`): going back (03 after 05), answering a
document already rejected or completed, answering a document that was given back (recall agreed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

import click

from vbdt.cli.exchange import agency_settings, open_agency
from vbdt.cli.exits import EXIT_TEMPORARY
from vbdt.cli.inbox import find_received, state_label
from vbdt.cli.options import agency_options, check_organ_id
from vbdt.cli.output import echo_json, iso
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ, StaffInfo
from vbdt.errors import InvalidTransition, UsageError
from vbdt.exchange.receipts import DeliveryState, is_stale, next_state

if TYPE_CHECKING:
    from vbdt.exchange.ledger import Incoming, Ledger

__all__ = ["ACTIONS", "COMMANDS", "answer_command", "check_answer"]

ACTIONS = {
    "accept": StatusCode.ACCEPTED,
    "assign": StatusCode.ASSIGNED,
    "processing": StatusCode.PROCESSING,
    "complete": StatusCode.COMPLETED,
    "reject": StatusCode.REJECTED,
    "agree": StatusCode.CHANGE_ACCEPTED,
    "refuse": StatusCode.CHANGE_REFUSED,
}
_CHANGES = (StatusCode.CHANGE_ACCEPTED, StatusCode.CHANGE_REFUSED)
_NEEDS_REASON = (StatusCode.REJECTED, StatusCode.CHANGE_REFUSED)
# What this agency last reported, as the sender's ledger sees the delivery.
_AS_SENDER_SEES = {"received": DeliveryState.SENT, "01": DeliveryState.ARRIVED, "02": DeliveryState.REJECTED,
                   "03": DeliveryState.ACCEPTED, "04": DeliveryState.ASSIGNED, "05": DeliveryState.PROCESSING,
                   "06": DeliveryState.COMPLETED}


def check_answer(ledger: Ledger, stored: Incoming, code: StatusCode) -> None:
    """Refuse (InvalidTransition) an answer the sender's ledger would not take, before it is signed."""
    if code in _CHANGES:
        if stored.state in (StatusCode.CHANGE_ACCEPTED.value, StatusCode.CHANGE_REFUSED.value):
            raise InvalidTransition(f"already answered {stored.state} ({state_label(stored.state)}) to this request")
        return
    given_back = [r for r in ledger.received(sender=stored.sender) if r.document_id == stored.document_id
                  and r.kind.startswith("recall:") and r.state == StatusCode.CHANGE_ACCEPTED.value]
    if given_back:
        raise InvalidTransition(f"{stored.document_id} was given back (recall agreed, 15): nothing more to answer")
    state = _AS_SENDER_SEES.get(stored.state)
    if state is None:
        return  # an answer this version does not track: the sender's ledger decides
    if is_stale(state, code):
        raise InvalidTransition(f"already reported {stored.state} ({state_label(stored.state)}): "
                                f"{code.value} would go back")
    try:
        next_state(state, code)
    except InvalidTransition:
        raise InvalidTransition(f"{code.value} ({code.label}) cannot follow {stored.state} "
                                f"({state_label(stored.state)})") from None


@click.command("answer")
@click.argument("document_id")
@click.argument("action", type=click.Choice(list(ACTIONS)))
@click.option("--from", "sender", metavar="ORGANID", default=None, help="The sender, when several sent this DocumentId.")
@click.option("--note", default=None, help="A note; the reason for reject and refuse (required there).")
@click.option("--staff", default=None, metavar="NAME", help="Who answers (for assign: who is assigned).")
@click.option("--department", default=None, metavar="NAME", help="The staff member's department.")
@agency_options
def answer_command(document_id: str, action: str, sender: str | None, note: str | None, staff: str | None,
                   department: str | None, organ_id: str | None, keys_dir: str | None, trust_path: str | None,
                   amqp_url: str | None, credentials: str | None, directory_path: str | None, ledger_path: str | None,
                   as_json: bool) -> None:
    """Answer the received DOCUMENT_ID with ACTION: a signed status to its sender.

    accept (03), assign (04), processing (05), complete (06), reject (02, --note the reason);
    agree (15) or refuse (16, --note) a recall request, an update or a replacement."""
    code = ACTIONS[action]
    if sender is not None:
        sender = check_organ_id(sender, "--from")
    if code in _NEEDS_REASON and not (note and note.strip()):
        raise UsageError(f"{action} needs the reason: --note TEXT")
    who = StaffInfo(staff=staff, department=department) if staff or department else None
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)

    async def run() -> tuple[str, str, str, bool]:
        agency = await open_agency(settings, own_user=True)
        try:
            stored = _target(agency.ledger, document_id, sender, code)
            check_answer(agency.ledger, stored, code)
            item = agency.item(stored.sender, stored.document_id, stored.kind)
            if code in _CHANGES and item.concerns is None:
                raise UsageError(f"{document_id} is a new document, not a recall, update or replacement: "
                                 "accept or reject it instead")
            answers = {
                StatusCode.ACCEPTED: lambda: item.accept(staff=who),
                StatusCode.ASSIGNED: lambda: item.assign(note, staff=who),
                StatusCode.PROCESSING: lambda: item.processing(note, staff=who),
                StatusCode.COMPLETED: lambda: item.complete(note, staff=who),
                StatusCode.REJECTED: lambda: item.reject(note or "", staff=who),
                StatusCode.CHANGE_ACCEPTED: lambda: item.agree(staff=who),
                StatusCode.CHANGE_REFUSED: lambda: item.refuse(note or "", staff=who),
            }
            await answers[code]()
            waiting = any(r.kind == "status" and r.recipient == stored.sender for r in agency.ledger.outbox_records())
            return stored.sender, stored.document_id, item.concerns or stored.document_id, waiting
        finally:
            await agency.close()

    to, answered, about, waiting = asyncio.run(run())
    if as_json:
        echo_json("answers", [{"document_id": answered, "about": about, "to": to, "code": code.value, "label": code.label,
                               "note": note, "staff": staff, "published": not waiting,
                               "at": iso(dt.datetime.now(VIETNAM_TZ))}])
    else:
        click.echo(f"{code.value} ({code.label}) about {about} -> {to}"
                   + (": in the outbox, the broker has not confirmed it yet (vbdt outbox flush)" if waiting else ""))
    if waiting:
        raise SystemExit(EXIT_TEMPORARY)


def _target(ledger: Ledger, document_id: str, sender: str | None, code: StatusCode) -> Incoming:
    """The item answered: for agree/refuse the pending recall request about DOCUMENT_ID, if any,
    else the item itself (an update or a replacement); for the others, the document."""
    if code in _CHANGES:
        try:
            return find_received(ledger, document_id, sender, recall=True)
        except UsageError:
            pass
    return find_received(ledger, document_id, sender)


COMMANDS: list[click.Command] = [answer_command]
