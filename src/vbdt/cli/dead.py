"""``vbdt dead list|show|replay|purge``: the broker's dead letters, for the operator.

A message lands in ``vbdt.dead`` when an agency refused it (with its reason and the broker user
that reported it) or when the broker gave up on it (delivery limit, rejected). ``list`` and
``show`` look without consuming: the messages are taken and given back in their place
(:meth:`~vbdt.exchange.transport.Transport.peek_dead_letters`), so others do not see them for that
instant, and the broker gives them back itself if this process dies. ``replay`` sends a message the
broker dead-lettered back to its inbox, as its publisher sent it; an agency's refusal is its verdict
and is not replayable (its sender sends again: ``vbdt resend``). ``purge`` deletes them all (``--yes``).

The operator's broker user is needed (``--amqp``, ``VBDT_AMQP_URL`` or ``amqp`` in vbdt.toml):
agencies may not read the dead-letter queue (exit 77).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vbdt.cli.config import current_config, pick_path
from vbdt.cli.files import SMALL_FILE_BYTES, output_file, write_output
from vbdt.cli.options import amqp_option, load_directory
from vbdt.cli.output import echo_json
from vbdt.errors import UsageError, VbdtError

if TYPE_CHECKING:
    from vbdt.directory.agencies import Directory
    from vbdt.exchange.transport import DeadLetter, Transport

__all__ = ["COMMANDS", "dead_group", "describe_dead_letter"]

T = TypeVar("T")
_PARSED_MAX = SMALL_FILE_BYTES  # larger dead letters are listed without reading their DocumentId


def _url(amqp_url: str | None) -> str:
    from vbdt.exchange.amqp import DEFAULT_URL

    return amqp_url or current_config().amqp or DEFAULT_URL


def _with_transport(amqp_url: str | None, action: Callable[[Transport], Awaitable[T]]) -> T:
    from vbdt.exchange.amqp import AmqpTransport

    async def run() -> T:
        transport = await AmqpTransport.connect(_url(amqp_url), declare=False)
        try:
            return await action(transport)
        finally:
            await transport.close()

    return asyncio.run(run())


def _about(body: bytes) -> tuple[str | None, str | None]:
    """The DocumentId and kind the body names, if it reads as edXML (a dead letter may be anything)."""
    from vbdt.edxml.model import Document, StatusMessage
    from vbdt.edxml.validation import read

    if len(body) > _PARSED_MAX:
        return None, None
    try:
        package = read(body)
    except VbdtError:
        return None, None
    if isinstance(package, Document):
        return str(package.document_id), "document"
    if isinstance(package, StatusMessage):
        return package.response_for.document_id, f"status {package.status_code.value}"
    return None, None


def describe_dead_letter(letter: DeadLetter, directory: Directory | None) -> dict[str, Any]:
    """One dead letter as the JSON of ``vbdt dead`` (see ``docs/cli.md``)."""
    from vbdt.exchange.routing import HEADER_FROM, HEADER_KIND, HEADER_REASON, HEADER_REPORTED_BY

    document_id, what = _about(letter.body)
    organ = letter.organ_id
    return {"message_id": letter.message_id, "inbox": organ,
            "inbox_name": directory.get(organ).name if directory is not None and organ is not None and organ in directory else None,
            "reason": letter.headers.get(HEADER_REASON), "reported_by": letter.headers.get(HEADER_REPORTED_BY),
            "replayable": letter.replayable, "claimed_from": letter.headers.get(HEADER_FROM),
            "kind": letter.headers.get(HEADER_KIND), "document_id": document_id, "content": what, "size": len(letter.body)}


@click.group("dead")
def dead_group() -> None:
    """The broker's dead letters (the operator's user): look, replay, purge."""


_json = click.option("--json", "as_json", is_flag=True, help='{"schema": 1, "dead_letters": [...]} (see docs/cli.md).')


@dead_group.command("list")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=100, show_default=True, help="Look at most at this many.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory, for names (default: the example one).")
@amqp_option
@_json
def dead_list(limit: int, directory_path: str | None, amqp_url: str | None, as_json: bool) -> None:
    """Dead letters, oldest first, left in the queue: whose inbox, why, replayable or not."""
    letters = _with_transport(amqp_url, lambda t: t.peek_dead_letters(limit))
    directory = load_directory(pick_path(directory_path, current_config().directory))
    rows = [describe_dead_letter(letter, directory) for letter in letters]
    if as_json:
        echo_json("dead_letters", rows)
        return
    for row in rows:
        mark = "replayable" if row["replayable"] else f"refused by {row['reported_by'] or '?'}"
        click.echo(f"{row['message_id'][:24]:<24} {row['inbox'] or '?':<15} {row['document_id'] or '(unreadable)'}  "
                   f"[{mark}] {row['reason']}")
    click.echo(f"{len(rows)} dead letter(s)" + (f" (the first {limit}; --limit for more)" if len(rows) == limit else ""))


@dead_group.command("show")
@click.argument("message_id")
@click.option("--save", "save_path", metavar="FILE", default=None, help="Write its body to FILE.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory, for names (default: the example one).")
@amqp_option
@_json
def dead_show(message_id: str, save_path: str | None, directory_path: str | None, amqp_url: str | None, as_json: bool) -> None:
    """One dead letter (the first with MESSAGE_ID, or a prefix of it), left in the queue; --save its body."""
    target = output_file(save_path) if save_path else None
    letters = _with_transport(amqp_url, lambda t: t.peek_dead_letters(10_000))
    found = [letter for letter in letters if letter.message_id == message_id]
    found = found or [letter for letter in letters if message_id and letter.message_id.startswith(message_id)]
    if not found:
        raise UsageError(f"no dead letter with message id {message_id[:64]!r}")
    if len({letter.message_id for letter in found}) > 1:
        raise UsageError(f"{message_id[:64]!r} is the start of {len(found)} message ids: give more of it")
    letter = found[0]
    row = describe_dead_letter(letter, load_directory(pick_path(directory_path, current_config().directory)))
    row["headers"] = dict(letter.headers)
    if target is not None:
        write_output(target, letter.body)
    if as_json:
        echo_json("dead_letters", [row])
        return
    for key in ("message_id", "inbox", "inbox_name", "document_id", "content", "reason", "reported_by", "claimed_from",
                "replayable", "size"):
        if row[key] is not None:
            click.echo(f"{key:<13} {row[key]}")
    if target is not None:
        click.echo(f"{'saved to':<13} {target}")


@dead_group.command("replay")
@click.argument("message_id")
@amqp_option
@_json
def dead_replay(message_id: str, amqp_url: str | None, as_json: bool) -> None:
    """Send the dead letter MESSAGE_ID back to its inbox (only what the broker dead-lettered; exit 2 otherwise)."""
    letter = _with_transport(amqp_url, lambda t: t.replay_dead_letter(message_id))
    if as_json:
        echo_json("dead_letters", [describe_dead_letter(letter, None)])
    else:
        click.echo(f"{letter.message_id} replayed to the inbox of {letter.organ_id}")


@dead_group.command("purge")
@click.option("--yes", is_flag=True, help="Really delete every dead letter.")
@amqp_option
@_json
def dead_purge(yes: bool, amqp_url: str | None, as_json: bool) -> None:
    """Delete every dead letter (they are gone for good: `vbdt dead list` first)."""
    if not yes:
        raise UsageError("purge deletes every dead letter for good: add --yes")
    count = _with_transport(amqp_url, lambda t: t.purge_dead_letters())
    if as_json:
        echo_json("dead_letters", [], purged=count)
    else:
        click.echo(f"purged {count} dead letter(s)")


COMMANDS: list[click.Command] = [dead_group]
