"""Both sides of a delivery from the command line (issue 12), against the real RabbitMQ:
inbox list/show, answer, recall, resend after a rejection, update, outbox list/flush, dead letters.

Each test provisions its own ``vbdt-test-<random>`` vhost (:func:`conftest.fresh_vhost`) with one
vbdt.toml per agency, as an operator sets a province up; everything runs through ``vbdt``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import H14, H14_COMMUNES, admin_url, fresh_vhost
from vbdt.cli.demo import build_directive
from vbdt.cli.main import main
from vbdt.directory.agencies import Directory
from vbdt.edxml.resources import example_directory_path
from vbdt.edxml.writer import write
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.routing import routing_key
from vbdt.exchange.transport import Outgoing, QueueLimits

C1, C2 = H14_COMMUNES


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, err: str, expected: int) -> None:
    assert code == expected, (code, err)
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, err


DOCS = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()


def documented(command: str) -> set[str]:
    """The field names the JSON table of docs/cli.md gives for ``command``."""
    (row,) = [line for line in DOCS.splitlines() if line.startswith(f"| `{command}`") and '"schema"' in line]
    return set(re.findall(r'"(\w+)"', row))


def as_json(out: str, key: str, command: str | None = None) -> list[dict[str, Any]]:
    """The documented shape: an object with the schema and a list, whatever the count; with
    ``command``, every field printed is one docs/cli.md documents for it."""
    data = json.loads(out)
    assert data["schema"] == 1 and isinstance(data[key], list), data
    if command is not None:
        fields = documented(command)
        assert set(data) <= fields | {key}, set(data) - fields
        for item in data[key]:
            assert set(item) <= fields, (command, set(item) - fields)
    return list(data[key])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("delivery") / "keys"
    code, _, err = run("pki", "init", str(folder), "--select", H14, "--select", C1, "--select", C2)
    assert code == 0, err
    return folder


def directive(folder: Path, number: int) -> Path:
    doc = build_directive(Directory.load(example_directory_path()), issued=date.today(), number=str(number))
    path = folder / f"directive-{number}.edxml"
    path.write_bytes(write(doc))
    return path


class Province:
    """A vhost with H14 and two communes, a vbdt.toml per agency; ``vbdt(organ_id, ...)`` runs as it."""

    def __init__(self, vhost: str, urls: dict[str, str], tmp: Path) -> None:
        self.vhost, self.urls, self.tmp = vhost, urls, tmp

    def config(self, organ_id: str) -> Path:
        return self.tmp / "etc" / organ_id / "vbdt.toml"

    def vbdt(self, organ_id: str, *args: str) -> tuple[int, str, str]:
        return run("--config", str(self.config(organ_id)), *args)

    def listen(self, organ_id: str, *args: str) -> str:
        code, out, err = self.vbdt(organ_id, "listen", *args)
        assert code == 0, err
        return out

    def status(self, document_id: str) -> dict[str, Any]:
        code, out, err = self.vbdt(H14, "status", document_id, "--json")
        assert code == 0, err
        (document,) = as_json(out, "documents", "status")
        return {r["organ_id"]: r for r in document["recipients"]}


def _province(tmp: Path, keys: Path, **options: object) -> Iterator[Province]:
    with fresh_vhost([H14, C1, C2], **options) as done:
        for organ_id, url in done.urls.items():
            etc = tmp / "etc" / organ_id
            etc.mkdir(parents=True)
            (etc / "secret.json").write_text(json.dumps({organ_id: url}))
            (etc / "vbdt.toml").write_text(
                f'as = "{organ_id}"\ncredentials = "secret.json"\nledger = "state.db"\nout = "inbox"\n'
                f'keys = "{os.path.relpath(keys, etc)}"\n')
        yield Province(done.vhost, done.urls, tmp)


@pytest.fixture
def province(tmp_path: Path, keys: Path) -> Iterator[Province]:
    yield from _province(tmp_path, keys)


def _send(p: Province, number: int, *to: str) -> str:
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, number)), *(a for r in to for a in ("--to", r)), "--json")
    assert code == 0, err
    return str(json.loads(out)["document_id"])


# -- the receiving side: inbox, answer, recall ---------------------------------------------------------------------

@pytest.mark.broker
def test_inbox_and_every_answer_through_the_command_line(province: Province) -> None:
    p = province
    document_id = _send(p, 41, C1)
    p.listen(C1, "--count", "1", "--idle", "20")

    code, out, err = p.vbdt(C1, "inbox", "list", "--json")
    assert code == 0, err
    (item,) = as_json(out, "items", "inbox list")
    assert (item["document_id"], item["sender"], item["kind"], item["state"]) == (document_id, H14, "document", "01")
    assert item["sender_name"] and item["received_at"].endswith("+07:00") and isinstance(item["size"], int)
    assert item["subject"] and item["acknowledged"] is True
    code, out, _ = p.vbdt(C1, "inbox", "list", "--state", "03", "--json")
    assert code == 0 and as_json(out, "items") == []  # still a list when nothing matches
    code, out, _ = p.vbdt(C1, "inbox", "list")
    assert code == 0 and document_id in out and "1 items: 1 01" in out

    # answers: 03 with the clerk's name, 05 with a note; going back or an answer without its reason is refused
    code, out, err = p.vbdt(C1, "answer", document_id, "accept", "--staff", "Nguyễn Thị Văn Thư", "--json")
    assert code == 0, err
    (answer,) = as_json(out, "answers", "answer")
    assert (answer["code"], answer["to"], answer["published"]) == ("03", H14, True)
    code, _, err = p.vbdt(C1, "answer", document_id, "processing", "--note", "Phòng Nội vụ đang xử lý")
    assert code == 0, err
    code, _, err = p.vbdt(C1, "answer", document_id, "accept")
    one_line(code, err, 1)
    assert "would go back" in err
    code, _, err = p.vbdt(C1, "answer", document_id, "reject")
    one_line(code, err, 2)
    code, _, err = p.vbdt(C1, "answer", document_id, "agree")  # a new document: nothing to agree to
    one_line(code, err, 2)

    code, out, err = p.vbdt(C1, "inbox", "show", document_id, "--json", "--save", str(p.tmp / "saved.edxml"))
    assert code == 0, err
    (shown,) = as_json(out, "items", "inbox list")
    assert shown["state"] == "05" and [h["code"] for h in shown["history"]] == ["03", "05"]
    assert shown["history"][0]["staff"] == "Nguyễn Thị Văn Thư" and shown["history"][1]["note"] == "Phòng Nội vụ đang xử lý"
    assert shown["verdict"]["agency"] == H14 and all(pdf["original_valid"] for pdf in shown["verdict"]["pdfs"])
    assert shown["attachments"] and b"<ds:Signature" in (p.tmp / "saved.edxml").read_bytes()
    code, out, _ = p.vbdt(C1, "inbox", "show", document_id)
    assert code == 0 and "answered" in out and "Phòng Nội vụ" in out

    # the sender's listener applies the receipts
    p.listen(H14, "--idle", "3")
    assert p.status(document_id)[C1]["state"] == "processing"

    # recall: asked by the sender, agreed by the commune; nothing more can be answered about it
    code, out, err = p.vbdt(H14, "recall", document_id, "--reason", "Ban hành nhầm", "--json")
    assert code == 0, err
    assert [r["organ_id"] for r in as_json(out, "recipients", "recall")] == [C1]
    assert p.listen(C1, "--count", "1", "--idle", "20").startswith(f"recall {document_id} from {H14}")
    code, out, _ = p.vbdt(C1, "inbox", "show", document_id, "--recall", "--json")
    assert code == 0 and as_json(out, "items")[0]["kind"] == "recall"
    code, _, err = p.vbdt(C1, "answer", document_id, "agree")
    assert code == 0, err
    code, _, err = p.vbdt(C1, "answer", document_id, "agree")
    one_line(code, err, 1)
    code, _, err = p.vbdt(C1, "answer", document_id, "complete", "--note", "x")
    one_line(code, err, 1)
    assert "given back" in err
    p.listen(H14, "--idle", "3")
    assert p.status(document_id)[C1]["state"] == "recalled"


# -- the sending side: resend after a rejection, update ------------------------------------------------------------

@pytest.mark.broker
def test_a_rejected_delivery_is_resent_and_its_receipts_apply(province: Province) -> None:
    p = province
    document_id = _send(p, 42, C1, C2)
    p.listen(C1, "--count", "1", "--idle", "20")
    code, _, err = p.vbdt(C1, "answer", document_id, "reject", "--note", "Thiếu phụ lục")
    assert code == 0, err
    code, _, err = p.vbdt(H14, "resend", document_id)
    one_line(code, err, 2)  # the rejection has not reached the sender's ledger yet: nothing to resend
    p.listen(H14, "--idle", "3")
    status = p.status(document_id)
    assert status[C1]["state"] == "rejected" and status[C1]["reason"] == "Thiếu phụ lục"

    # C2 has not answered: it cannot be resent, and nothing is sent to anyone
    code, _, err = p.vbdt(H14, "resend", document_id, "--to", C2)
    one_line(code, err, 1)
    code, out, err = p.vbdt(H14, "resend", document_id, "--json")
    assert code == 0, err
    assert as_json(out, "recipients", "update") == [{"organ_id": C1, "outcome": "confirmed", "reason": None}]

    # the commune gets it again (a new attempt), its 01 applies at the sender (before: dead-lettered)
    out = p.listen(C1, "--count", "1", "--idle", "20")
    assert out.startswith(f"document {document_id} from {H14}")
    code, out, _ = p.vbdt(C1, "inbox", "list", "--json")
    assert [(i["document_id"], i["state"]) for i in as_json(out, "items")] == [(document_id, "01")]
    p.listen(H14, "--idle", "3")
    status = p.status(document_id)
    assert (status[C1]["state"], status[C1]["attempt"], status[C1]["reason"]) == ("arrived", 2, None)
    assert status[C2]["attempt"] == 1
    code, _, err = p.vbdt(H14, "resend", document_id)
    one_line(code, err, 2)  # nothing rejected any more

    # an update of the document: the commune agrees to it (15)
    update = directive(p.tmp, 43)
    code, out, err = p.vbdt(H14, "update", str(update), "--of", document_id, "--reason", "Sửa thời hạn", "--to", C1, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["action"] == "update" and [r["outcome"] for r in data["recipients"]] == ["confirmed"]
    assert p.listen(C1, "--count", "1", "--idle", "20").startswith("update ")
    code, _, err = p.vbdt(C1, "answer", data["document_id"], "agree")
    assert code == 0, err


# -- the outbox ---------------------------------------------------------------------------------------------------

@pytest.fixture
def tight_province(tmp_path: Path, keys: Path) -> Iterator[Province]:
    """Inboxes bounded to one message: a third one waits in the sender's outbox."""
    yield from _province(tmp_path, keys, queue_limits=QueueLimits(inbox_messages=1))


@pytest.mark.broker
def test_outbox_lists_and_flushes_what_the_broker_did_not_take(tight_province: Province) -> None:
    p = tight_province
    code, out, _ = p.vbdt(H14, "outbox", "list", "--json")
    one_line(code, _, 2)  # no ledger yet: nothing sent from here
    _send(p, 44, C1)
    _send(p, 45, C1)  # a quorum queue takes one over its bound, then refuses
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, 46)), "--to", C1, "--json")
    assert code == 1, err  # the inbox is full: confirmed for nobody, kept in the outbox
    document_id = json.loads(out)["document_id"]
    code, out, err = p.vbdt(H14, "outbox", "list", "--json")
    assert code == 0, err
    (waiting,) = as_json(out, "messages", "outbox list")
    assert (waiting["document_id"], waiting["recipient"], waiting["status"]) == (document_id, C1, "pending")
    assert isinstance(waiting["size"], int) and waiting["created_at"].endswith("+07:00")
    code, out, err = p.vbdt(H14, "outbox", "flush")
    assert code == 75 and "1 still wait" in out, (out, err)
    p.listen(C1, "--count", "1", "--idle", "20")  # the commune takes the first: room for the second
    code, out, err = p.vbdt(H14, "outbox", "flush", "--json")
    assert code == 0, err
    assert json.loads(out) == {"schema": 1, "published": 1, "messages": []}
    code, out, _ = p.vbdt(H14, "outbox", "list", "--all", "--json")
    assert {m["status"] for m in as_json(out, "messages")} == {"published"}


# -- dead letters -------------------------------------------------------------------------------------------------

async def _publish_garbage(url: str, organ_id: str) -> None:
    transport = await AmqpTransport.connect(url, declare=False)
    try:
        await transport.publish(Outgoing(routing_key(organ_id), b"<not-edxml/>", "garbage-1", {"x-vbdt-kind": "document"}))
    finally:
        await transport.close()


@pytest.mark.broker
def test_dead_letters_are_looked_at_without_consuming_and_purged(province: Province) -> None:
    p = province
    admin = admin_url(p.vhost)
    asyncio.run(_publish_garbage(p.urls[H14], C1))
    p.listen(C1, "--idle", "3")  # refused: dead-lettered with its reason
    for _ in range(2):  # looking does not consume
        code, out, err = run("dead", "list", "--amqp", admin, "--json")
        assert code == 0, err
        (letter,) = as_json(out, "dead_letters", "dead list")
        assert (letter["message_id"], letter["inbox"], letter["replayable"], letter["document_id"]) == ("garbage-1", C1, False, None)
        assert letter["reason"] and letter["reported_by"] == C1 and letter["size"] == len(b"<not-edxml/>")
    code, out, err = run("dead", "show", "garb", "--amqp", admin, "--save", str(p.tmp / "dead.bin"))
    assert code == 0 and "garbage-1" in out, err
    assert (p.tmp / "dead.bin").read_bytes() == b"<not-edxml/>"
    code, _, err = run("dead", "replay", "garbage-1", "--amqp", admin)
    one_line(code, err, 2)  # an agency's refusal is its verdict: the sender sends again
    code, _, err = run("dead", "list", "--amqp", p.urls[C1])
    one_line(code, err, 77)  # an agency may not read the dead letters
    code, _, err = run("dead", "purge", "--amqp", admin)
    one_line(code, err, 2)  # not without --yes
    code, out, err = run("dead", "purge", "--yes", "--amqp", admin, "--json")
    assert code == 0 and json.loads(out) == {"schema": 1, "purged": 1, "dead_letters": []}, err
    code, out, _ = run("dead", "list", "--amqp", admin, "--json")
    assert as_json(out, "dead_letters") == []
    code, _, err = run("dead", "show", "garbage-1", "--amqp", admin)
    one_line(code, err, 2)


# -- hostile input: one line, a documented exit code, never a traceback ----------------------------------------------

def test_bad_input_to_the_delivery_commands(tmp_path: Path) -> None:
    from vbdt.exchange.ledger import SqliteLedger

    ledger = tmp_path / "h14.db"
    SqliteLedger(ledger).close()
    common = ["--as", H14, "--ledger", str(ledger)]
    cases = [
        (2, ["inbox", "list", *common, "--since", "yesterday-ish"]),
        (2, ["inbox", "list", *common, "--from", "../../etc"]),
        (2, ["inbox", "list", "--as", "../x"]),
        (2, ["inbox", "show", "nothing", *common]),
        (2, ["inbox", "show", "x", *common, "--save", str(tmp_path)]),
        (2, ["inbox", "list", "--as", H14, "--ledger", str(tmp_path / "missing.db")]),
        (2, ["outbox", "list", "--as", H14, "--ledger", str(tmp_path)]),
        (2, ["answer", "D", "accept", "--as", "x/../y"]),
        (2, ["answer", "D", "refuse", "--as", H14, "--note", "  "]),
        (2, ["answer", "D", "shout", "--as", H14]),
        (2, ["recall", "D", "--as", H14, "--reason", " "]),
        (2, ["update", str(tmp_path / "missing.edxml"), "--of", "D", "--reason", "r"]),
        (2, ["dead", "list", "--amqp", "http://nowhere"]),
        (2, ["dead", "list", "--limit", "0"]),
    ]
    for expected, args in cases:
        code, _, err = run(*args)
        one_line(code, err, expected)
    (tmp_path / "not-a-ledger.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    code, _, err = run("inbox", "list", "--as", H14, "--ledger", str(tmp_path / "not-a-ledger.db"))
    one_line(code, err, 2)


@pytest.mark.broker
def test_dead_letters_need_a_broker(tmp_path: Path) -> None:
    code, _, err = run("dead", "list", "--amqp", "amqp://guest:guest@127.0.0.1:1/")
    one_line(code, err, 69)
