"""Ctrl-C during ``vbdt send`` (issue 12), against the real RabbitMQ: exit 130 with one line, and a ledger
that ``vbdt outbox flush`` completes so that every recipient takes the document exactly once.

The send publishes a 5.6 MB package to eight inboxes (about 45 MB through the broker); SIGINT goes as
soon as the sender's ledger holds the outbox rows, which are written just before the first publish,
so it lands while the copies are being published. Should the send finish first anyway (a fast
machine), exit 0 is accepted only with every copy confirmed, and every invariant below is checked
the same way.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from test_cli_delivery import as_json, run

from conftest import H14, admin_url, fresh_vhost
from vbdt.cli.demo import build_directive
from vbdt.directory.agencies import Directory
from vbdt.edxml.model import Attachment
from vbdt.edxml.resources import example_directory_path
from vbdt.edxml.writer import write

RECIPIENTS = [f"000.00.0{n}.H14" for n in range(1, 9)]
ANNEX_BYTES = 4 << 20  # random bytes: nothing compresses them on the way


def _big_directive(folder: Path) -> Path:
    doc = build_directive(Directory.load(example_directory_path()), issued=date.today(), number="90")
    annex = Attachment.from_bytes("phu-luc.bin", os.urandom(ANNEX_BYTES), content_id="cid:2")
    path = folder / "directive-90.edxml"
    path.write_bytes(write(doc.model_copy(update={"attachments": [*doc.attachments, annex]})))
    return path


def _outbox_rows(ledger: Path) -> int:
    """Outbox rows of the sender's ledger as another process sees them (0 while it does not exist yet)."""
    try:
        with sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.Error:  # not created yet, or its tables not yet
        return 0


def _inbox_ready(vhost: str, organ_id: str) -> int:
    import asyncio

    from vbdt.exchange.amqp import AmqpTransport

    async def ready() -> int:
        transport = await AmqpTransport.connect(admin_url(vhost), declare=False)
        try:
            return (await transport.inbox_status(organ_id)).ready
        finally:
            await transport.close()

    return asyncio.run(ready())


@pytest.mark.broker
@pytest.mark.slow
def test_ctrl_c_during_send_leaves_every_copy_confirmed_or_pending(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    code, _, err = run("pki", "init", str(keys), "--ec", "--select", H14, *(a for r in RECIPIENTS for a in ("--select", r)))
    assert code == 0, err
    with fresh_vhost([H14, *RECIPIENTS]) as done:
        configs = {}
        for organ_id, url in done.urls.items():
            etc = tmp_path / "etc" / organ_id
            etc.mkdir(parents=True)
            (etc / "secret.json").write_text(json.dumps({organ_id: url}))
            configs[organ_id] = etc / "vbdt.toml"
            configs[organ_id].write_text(f'as = "{organ_id}"\ncredentials = "secret.json"\nledger = "state.db"\n'
                                         f'keys = "{os.path.relpath(keys, etc)}"\n')

        def vbdt(organ_id: str, *args: str) -> tuple[int, str, str]:
            return run("--config", str(configs[organ_id]), *args)

        ledger = configs[H14].parent / "state.db"
        sender = subprocess.Popen(
            [sys.executable, "-m", "vbdt", "--config", str(configs[H14]), "send", str(_big_directive(tmp_path)),
             *(a for r in RECIPIENTS for a in ("--to", r)), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while sender.poll() is None and _outbox_rows(ledger) == 0:  # the rows come just before the publish
                assert time.monotonic() < deadline, "the send never recorded its outbox rows"
                time.sleep(0.002)
            interrupted = sender.poll() is None
            if interrupted:
                sender.send_signal(signal.SIGINT)
            out, err = sender.communicate(timeout=120)
        finally:
            sender.kill()

        if sender.returncode == 0:  # it had finished: then every copy was confirmed
            sent = json.loads(out)
            assert not interrupted or all(r["outcome"] == "confirmed" for r in sent["recipients"]), out
            assert [r["outcome"] for r in sent["recipients"]] == ["confirmed"] * len(RECIPIENTS), out
        else:
            assert sender.returncode == 130 and interrupted, (sender.returncode, err)
            assert err == "vbdt: interrupted\n" and out == "", (out, err)  # one line, no traceback

        # every copy is either confirmed by the broker or pending in the outbox, as its delivery says
        code, out, err = vbdt(H14, "outbox", "list", "--all", "--json")
        assert code == 0, err
        messages = as_json(out, "messages", "outbox list")
        assert sorted(m["recipient"] for m in messages) == RECIPIENTS and {m["kind"] for m in messages} == {"document"}
        assert {m["status"] for m in messages} <= {"published", "pending"}, messages
        code, out, err = vbdt(H14, "status", "--json")
        assert code == 0, err
        (document,) = json.loads(out)["documents"]
        document_id = document["document_id"]
        states = {r["organ_id"]: r["state"] for r in document["recipients"]}
        for m in messages:
            assert states[m["recipient"]] == ("sent" if m["status"] == "published" else "queued"), (m, states)

        # flush publishes what waits (the same message ids); nothing waits afterwards
        pending = sum(1 for m in messages if m["status"] == "pending")
        code, out, err = vbdt(H14, "outbox", "flush", "--json")
        assert code == 0, (out, err)
        assert json.loads(out) == {"schema": 1, "published": pending, "messages": []}
        code, out, _ = vbdt(H14, "outbox", "list", "--json")
        assert as_json(out, "messages") == []

        # each recipient takes the document exactly once, a copy published twice included: the first
        # listener hands one over; the next ones find any other copy stored already (until none waits)
        for organ_id in RECIPIENTS:
            code, out, err = vbdt(organ_id, "listen", "--count", "1", "--idle", "300", "--json")
            assert code == 0 and json.loads(out)["document_id"] == document_id, (out, err)
            for _ in range(10):
                if _inbox_ready(done.vhost, organ_id) == 0:
                    break
                code, out, err = vbdt(organ_id, "listen", "--idle", "5", "--json")
                assert code == 0 and out == "", (out, err)  # a second copy is never handed over
            assert _inbox_ready(done.vhost, organ_id) == 0
            code, out, err = vbdt(organ_id, "inbox", "list", "--json")
            assert code == 0, err
            assert [(i["document_id"], i["acknowledged"]) for i in as_json(out, "items")] == [(document_id, True)], organ_id
