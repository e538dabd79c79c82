"""vbdt broker provision / send / listen / status / demo: against the real RabbitMQ."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_broker
from vbdt.cli.main import main
from vbdt.exchange.broker import deprovision

H14, C1 = "000.00.00.H14", "000.00.01.H14"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_broker()
    vhost = f"vbdt-cli-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "keys"
    assert run("pki", "init", str(keys), "--select", H14, "--select", C1)[0] == 0
    creds = tmp_path / "creds.json"
    code, _out, err = run("broker", "provision", "--select", H14, "--select", C1, "--vhost", vhost, "-o", str(creds))
    assert code == 0, err
    assert oct(creds.stat().st_mode)[-3:] == "600" and set(json.loads(creds.read_text())) == {H14, C1}
    assert run("demo", "--quick", "--out", str(tmp_path / "demo"))[0] == 0
    yield tmp_path, keys, creds
    deprovision(vhost)


def test_send_listen_status(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys, creds = setup
    common = ["--keys", str(keys), "--credentials", str(creds)]
    code, out, err = run("send", str(tmp / "demo" / "directive.edxml"), "--to", C1, *common,
                         "--ledger", str(tmp / "h14.db"), "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert [(r["organ_id"], r["name"], r["outcome"]) for r in sent["recipients"]] == [(C1, "UBND Phường Thục Phán", "confirmed")]
    code, out, err = run("listen", "--as", C1, "--out", str(tmp / "inbox"), "--count", "1", "--idle", "20", *common,
                         "--ledger", str(tmp / "c1.db"))
    assert code == 0, err
    assert out.startswith(f"document {sent['document_id']} from {H14} -> ")
    (stored,) = (tmp / "inbox").iterdir()
    assert b"<ds:Signature" in stored.read_bytes()
    # the sender reads its inbox: the signed 01 moves its ledger
    code, out, err = run("listen", "--as", H14, "--out", str(tmp / "h14-inbox"), "--idle", "2", *common,
                         "--ledger", str(tmp / "h14.db"))
    assert code == 0, err
    code, out, _ = run("status", sent["document_id"], "--as", H14, "--ledger", str(tmp / "h14.db"), "--json")
    assert code == 0
    (recipient,) = json.loads(out)["documents"][0]["recipients"]
    assert recipient["organ_id"] == C1 and recipient["state"] == "arrived"


def test_exchange_commands_fail_with_one_line(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys, _creds = setup
    cases = [  # with the documented exit code of each (docs/cli.md)
        (77, ["send", str(tmp / "demo" / "directive.edxml"), "--keys", str(keys), "--amqp", "amqp://nobody:wrong@127.0.0.1:5672/"]),
        (69, ["send", str(tmp / "demo" / "directive.edxml"), "--keys", str(keys), "--amqp", "amqp://guest:guest@127.0.0.1:1/"]),
        (2, ["send", str(tmp / "missing.edxml"), "--keys", str(keys)]),
        (2, ["listen", "--keys", str(keys)]),
        (1, ["listen", "--as", "000.00.00.X99", "--keys", str(keys)]),
        (2, ["status", "nothing", "--as", H14, "--ledger", str(tmp / "none.db")]),
    ]
    for expected, args in cases:
        code, _, err = run(*args)
        assert code == expected and err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, (args, err)


@pytest.mark.parametrize("over", ["embedded", "amqp"])
def test_demo_ends_with_every_delivery_confirmed(tmp_path: Path, over: str) -> None:
    args = ["demo", "--out", str(tmp_path)]
    if over == "amqp":
        require_broker()
        args += ["--amqp", "amqp://guest:guest@127.0.0.1:5672/"]
    code, out, err = run(*args)
    assert code == 0, err
    assert "9. 86 deliveries, 86 confirmed by a signed receipt" in out
    assert "rejected    Từ chối tiếp nhận — Văn bản không thuộc thẩm quyền" in out
    for line in ("Văn phòng Chính phủ → **:province", "UBND Tỉnh Thái Bình → 000.00.00.H54/*",
                 "UBND Thành phố Thái Bình → 000.00.01.H54/*", "UBND Phường Lê Hồng Phong → 000.00.01.H54"):
        assert line in out
