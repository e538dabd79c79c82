"""``vbdt peer``: a test counterpart on RabbitMQ, for a vendor testing its system against vbdt.

It receives as ``--as ORGANID`` (verifying and confirming arrival with a signed 01, as ``vbdt
listen`` does) and answers every document as ``--behaviour`` says (:mod:`vbdt.testing.peer`):
the status flow of a real agency, or a misbehaviour. One line per answer on stdout (``--json``:
one object a line); a line on stderr once it listens. Stops after ``--count`` documents,
``--idle`` seconds without one, or on SIGTERM/Ctrl-C, after the answers in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import TYPE_CHECKING

import click

from vbdt.cli.exchange import agency_settings, broker_identity, open_agency
from vbdt.cli.options import agency_options

if TYPE_CHECKING:
    from vbdt.testing.peer import PeerAction

__all__ = ["COMMANDS", "peer_command"]

_BEHAVIOURS = ("accept", "reject", "slow", "silent", "recall-refuse", "garbage")


@click.command("peer")
@click.option("--behaviour", "--behavior", "behaviour", type=click.Choice(_BEHAVIOURS), default="accept", show_default=True,
              help="accept: 03 04 05 06; reject: 02; slow: accept with --delay; silent: only the automatic 01; "
                   "recall-refuse: up to 05, recalls refused (16); garbage: answers with bytes that are not edXML.")
@click.option("--delay", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Wait before each answer (default: 5 for slow, else 0).")
@click.option("--reason", default=None, help="The reason given with a 02 (reject) or a 16 (recall-refuse).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many documents.")
@click.option("--idle", type=click.FloatRange(min=0), default=None, help="Stop after this many seconds without a document.")
@agency_options
def peer_command(behaviour: str, delay: float | None, reason: str | None, count: int | None, idle: float | None,
                 organ_id: str | None, keys_dir: str | None, trust_path: str | None, amqp_url: str | None,
                 credentials: str | None, directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Play --as ORGANID on the exchange and answer what arrives as --behaviour says (TEST counterpart)."""
    from vbdt.testing.peer import DEFAULT_REASON, Peer

    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)

    def show(action: PeerAction) -> None:
        if as_json:
            click.echo(json.dumps(action.to_dict(), ensure_ascii=False))
        else:
            note = f" — {action.note}" if action.note else ""
            click.echo(f"{action.action} {action.kind} {action.document_id} from {action.sender}{note}")

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
        agency = await open_agency(settings, own_user=True)
        try:
            peer = Peer(agency, behaviour, delay=delay, reason=DEFAULT_REASON if reason is None else reason, on_action=show)
            user, _vhost = broker_identity(settings.url)
            click.echo(f"vbdt: peer {settings.organ_id} ({behaviour}) listening as broker user {user}", err=True)
            return await peer.run(count=count, idle=idle, stop=stop)
        finally:
            await agency.close()

    asyncio.run(run())


COMMANDS: list[click.Command] = [peer_command]
