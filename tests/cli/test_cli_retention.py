"""The ledger as the store of what an agency received, and retention (issue 12): ``vbdt listen`` without
``--out``, ``inbox list|show`` after retention, ``inbox prune``, ``retention_days``; ``send --json`` as
docs/cli.md documents it.

The tests marked ``broker`` run against the real RabbitMQ in their own ``vbdt-test-<random>`` vhost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_delivery import Province, as_json, directive, documented, one_line, run

from conftest import H14, H14_COMMUNES, fresh_vhost
from vbdt.cli.inbox import DROPPED_LABEL
from vbdt.exchange.answers import PdfVerdict, Verdict
from vbdt.exchange.ledger import SqliteLedger

C1, C2 = H14_COMMUNES
C3 = "000.00.03.H14"  # in the directory, no inbox on the test vhost


# -- from the ledger alone: prune, then list and show -----------------------------------------------------------------

def _ledger_with_items(path: Path) -> None:
    """Three items from H14: one acknowledged and answered, one handed and not acknowledged, one not handed."""
    verdict = Verdict(H14, "UID=000.00.00.H14,CN=UBND Tỉnh Cao Bằng", ["CN=ca"], "uid", None, [],
                      {"05.pdf": PdfVerdict(True, [], [])}).to_json()
    ledger = SqliteLedger(path)
    for number, handed, acked in (("1", True, True), ("2", True, False), ("3", False, False)):
        ledger.store_incoming(H14, f"D{number}", "document", f"m{number}", f"<x n='{number}'/>".encode() * 50, f"d{number}", verdict)
        ledger.mark_incoming(H14, f"D{number}", "document", receipt_sent=True, handed=handed, state="01")
        if acked:
            ledger.acknowledge(H14, f"D{number}", "document")
    from vbdt.edxml.codes import StatusCode

    ledger.record_answer(H14, "D1", "document", StatusCode.ACCEPTED, None, "Văn thư")
    ledger.close()


def test_prune_drops_acknowledged_bodies_and_inbox_still_shows_the_records(tmp_path: Path) -> None:
    ledger = tmp_path / "c1.db"
    _ledger_with_items(ledger)
    common = ["--as", C1, "--ledger", str(ledger)]

    code, out, err = run("inbox", "prune", "--older-than", "0", *common, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) <= documented("inbox prune") | {"items"} and all(set(i) <= documented("inbox prune") for i in data["items"])
    assert (data["schema"], data["dropped"], data["bytes"]) == (1, 1, len("<x n='1'/>") * 50)
    assert data["items"] == [{"document_id": "D1", "sender": H14, "stored_as": "document"}]
    assert data["before"].endswith("+07:00")
    code, out, err = run("inbox", "prune", "--older-than", "0", *common)
    assert code == 0 and out.startswith("dropped 0 bodies (0 bytes) of 0 items acknowledged before "), (out, err)

    # listed and shown still, with what retention left: the record, the verdict, the answers
    code, out, err = run("inbox", "list", *common, "--json")
    assert code == 0, err
    items = {i["document_id"]: i for i in as_json(out, "items", "inbox list")}
    assert items["D1"]["body_dropped_at"] and items["D1"]["size"] == len("<x n='1'/>") * 50 and items["D1"]["state"] == "03"
    assert items["D2"]["body_dropped_at"] is None and items["D3"]["body_dropped_at"] is None
    code, out, _ = run("inbox", "list", *common)
    assert code == 0 and DROPPED_LABEL in out and "3 items" in out
    code, out, err = run("inbox", "show", "D1", *common, "--json")
    assert code == 0, err
    (shown,) = as_json(out, "items", "inbox list")
    assert shown["verdict"]["agency"] == H14 and shown["attachments"] is None and shown["subject"] is None
    assert [(h["code"], h["staff"]) for h in shown["history"]] == [("03", "Văn thư")]
    code, out, err = run("inbox", "show", "D1", *common)
    assert code == 0 and DROPPED_LABEL in out and "answered" in out and "signed by" in out, (out, err)

    # the package is gone: --save is one line, exit 2, and writes nothing
    code, out, err = run("inbox", "show", "D1", *common, "--save", str(tmp_path / "d1.edxml"))
    one_line(code, err, 2)
    assert "dropped by retention" in err and out == "" and not (tmp_path / "d1.edxml").exists()
    # what is not acknowledged keeps its body: a restart hands it again from it
    code, _, err = run("inbox", "show", "D2", *common, "--save", str(tmp_path / "d2.edxml"))
    assert code == 0 and (tmp_path / "d2.edxml").read_bytes() == b"<x n='2'/>" * 50, err


def test_prune_and_retention_days_refuse_hostile_values(tmp_path: Path) -> None:
    ledger = tmp_path / "c1.db"
    _ledger_with_items(ledger)
    common = ["--as", C1, "--ledger", str(ledger)]
    for value in ("-1", "nan", "inf", "1e3", "36501", "99999999999999999999999", "", "7d", "1_0x"):
        code, _, err = run("inbox", "prune", "--older-than", value, *common)
        one_line(code, err, 2)
    code, _, err = run("inbox", "prune", *common)  # neither the option nor retention_days
    one_line(code, err, 2)
    assert "--older-than" in err
    for command in (["listen", "--as", C1], ["serve"]):  # refused before any file or broker is looked at
        for value in ("-5", "nan", "36501"):
            code, _, err = run(*command, "--retention-days", value)
            one_line(code, err, 2)
            assert "--retention-days" in err, err

    config = tmp_path / "vbdt.toml"
    for bad in ("-1", "1.5", "'30'", "true", "100000", "[1]", "nan"):
        config.write_text(f'as = "{C1}"\nledger = "c1.db"\nretention_days = {bad}\n')
        code, _, err = run("--config", str(config), "inbox", "prune")
        one_line(code, err, 2)
        assert "retention_days" in err, (bad, err)
    host = tmp_path / "host.toml"
    host.write_text("[host]\nurl = 'amqp://u:p@h/v'\ncredentials='c'\nagencies=['x']\nkeys='k'\nretention_days=-3\n")
    code, _, err = run("--config", str(host), "serve")
    one_line(code, err, 2)
    assert "host.retention_days" in err

    # retention_days of vbdt.toml is the default of --older-than; the option wins
    config.write_text(f'as = "{C1}"\nledger = "c1.db"\nretention_days = 36500\n')
    code, out, err = run("--config", str(config), "inbox", "prune", "--json")
    assert code == 0 and json.loads(out)["dropped"] == 0, err
    code, out, err = run("--config", str(config), "inbox", "prune", "--older-than", "0", "--json")
    assert code == 0 and json.loads(out)["dropped"] == 1, err
    assert run("inbox", "prune", "--as", C1, "--ledger", str(tmp_path / "missing.db"))[0] == 2


# -- against RabbitMQ: listen into the ledger, retention while listening, send --json --------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("retention") / "keys"
    code, _, err = run("pki", "init", str(folder), "--select", H14, "--select", C1, "--select", C2, "--ec")
    assert code == 0, err
    return folder


@pytest.fixture
def province(tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Province]:
    """H14 and two communes, each with a vbdt.toml that names no `out`: the ledger is the store."""
    with fresh_vhost([H14, C1, C2]) as done:
        for organ_id, url in done.urls.items():
            etc = tmp_path / "etc" / organ_id
            etc.mkdir(parents=True)
            (etc / "secret.json").write_text(json.dumps({organ_id: url}))
            (etc / "vbdt.toml").write_text(f'as = "{organ_id}"\ncredentials = "secret.json"\nledger = "state.db"\n'
                                           f'keys = "{os.path.relpath(keys, etc)}"\n')
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")  # where ./inbox used to be written by default
        yield Province(done.vhost, done.urls, tmp_path)


def _items(p: Province, organ_id: str) -> dict[str, dict[str, Any]]:
    code, out, err = p.vbdt(organ_id, "inbox", "list", "--json")
    assert code == 0, err
    return {i["document_id"]: i for i in as_json(out, "items", "inbox list")}


@pytest.mark.broker
def test_send_json_is_the_documented_table(province: Province) -> None:
    p = province
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, 61)), "--to", C1, "--to", C3, "--json")
    assert code == 1, err  # C3 has no inbox: not every copy is confirmed
    data = json.loads(out)
    fields = documented("send")
    assert data["schema"] == 1 and set(data) <= fields | {"recipients"}
    assert all(set(r) <= fields for r in data["recipients"]), data
    outcomes = {r["organ_id"]: (r["outcome"], r["name"], r["reason"]) for r in data["recipients"]}
    assert outcomes[C1] == ("confirmed", "UBND Phường Thục Phán", None)
    assert outcomes[C3][0] == "unroutable" and outcomes[C3][1] == "UBND Phường Tân Giang" and outcomes[C3][2]
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, 62)), "--to", C1, "--to", C2)
    assert code == 0 and "confirmed by the broker for 2 of 2 recipients" in out, err


@pytest.mark.broker
def test_listen_stores_in_the_ledger_and_retention_drops_acknowledged_bodies(province: Province) -> None:
    p = province
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, 63)), "--to", C1, "--json")
    assert code == 0, err
    document_id = json.loads(out)["document_id"]

    # no --out, no `out`: nothing written to a folder, the item stored and acknowledged in the ledger
    code, out, err = p.vbdt(C1, "listen", "--count", "1", "--idle", "20", "--json")
    assert code == 0, err
    assert json.loads(out) == {"kind": "document", "document_id": document_id, "from": H14, "file": None}
    assert not (p.tmp / "cwd" / "inbox").exists() and not (p.config(C1).parent / "inbox").exists()
    assert not any(path.is_file() for path in p.tmp.rglob("*.edxml") if "directive-" not in path.name)
    item = _items(p, C1)[document_id]
    assert item["acknowledged"] and item["body_dropped_at"] is None and item["subject"] and item["state"] == "01"
    code, _, err = p.vbdt(C1, "inbox", "show", document_id, "--save", str(p.tmp / "kept.edxml"))
    assert code == 0 and b"<ds:Signature" in (p.tmp / "kept.edxml").read_bytes(), err
    code, _, err = p.vbdt(C1, "answer", document_id, "accept")
    assert code == 0, err

    # a listener with retention 0 drops it when it starts (logged), keeps the record
    code, _, err = p.vbdt(C1, "listen", "--idle", "1", "--retention-days", "0", "--log-format", "json")
    assert code == 0, err
    (retention,) = [e for e in map(json.loads, err.splitlines()) if e.get("event") == "retention"]
    assert (retention["bodies"], retention["items"], retention["days"]) == (1, 1, 0) and retention["bytes"] > 0
    item = _items(p, C1)[document_id]
    assert item["body_dropped_at"] and item["state"] == "03" and item["acknowledged"] and item["subject"] is None
    code, out, _ = p.vbdt(C1, "inbox", "show", document_id)
    assert code == 0 and DROPPED_LABEL in out and "03" in out

    # what needs the package now says so: one line, exit 2
    code, _, err = p.vbdt(C1, "inbox", "show", document_id, "--save", str(p.tmp / "gone.edxml"))
    one_line(code, err, 2)
    code, _, err = p.vbdt(C1, "answer", document_id, "complete", "--note", "Đã xử lý")
    one_line(code, err, 2)
    assert "dropped by retention" in err

    # with --out the folder is written as before; retention_days in vbdt.toml applies at start (nothing old yet)
    config = p.config(C1)
    config.write_text(config.read_text() + "retention_days = 30\n")
    code, out, err = p.vbdt(H14, "send", str(directive(p.tmp, 64)), "--to", C1, "--json")
    assert code == 0, err
    code, out, err = p.vbdt(C1, "listen", "--count", "1", "--idle", "20", "--out", str(p.tmp / "export"), "--log-format", "json")
    assert code == 0, err
    (exported,) = (p.tmp / "export").iterdir()
    assert out.strip().endswith(str(exported)) and b"<ds:Signature" in exported.read_bytes()
    (retention,) = [e for e in map(json.loads, err.splitlines()) if e.get("event") == "retention"]
    assert (retention["days"], retention["bodies"]) == (30, 0)
    assert all(i["acknowledged"] for i in _items(p, C1).values())
