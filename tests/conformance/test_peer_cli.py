"""``vbdt peer`` against RabbitMQ: a vendor's sender (here `vbdt send` / `vbdt listen`) sees the status flow."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_broker
from vbdt.cli.main import main
from vbdt.exchange.broker import deprovision
from vbdt.exchange.ledger import SqliteLedger

H14, C1 = "000.00.00.H14", "000.00.01.H14"
VBDT = [sys.executable, "-m", "vbdt"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    require_broker()
    vhost = f"vbdt-peer-{uuid.uuid4().hex[:8]}"
    keys, creds = tmp_path / "keys", tmp_path / "creds.json"
    assert run("pki", "init", str(keys), "--select", H14, "--select", C1)[0] == 0
    code, _, err = run("broker", "provision", "--select", H14, "--select", C1, "--vhost", vhost, "-o", str(creds))
    assert code == 0, err
    assert run("demo", "--quick", "--out", str(tmp_path / "demo"))[0] == 0
    try:
        yield tmp_path, keys, creds
    finally:
        deprovision(vhost)


def _start_peer(tmp: Path, keys: Path, creds: Path, *args: str) -> subprocess.Popen[str]:
    peer = subprocess.Popen([*VBDT, "peer", "--as", C1, "--keys", str(keys), "--credentials", str(creds),
                             "--ledger", str(tmp / "peer.db"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert peer.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the peer says when it listens
        ready, _, _ = select.select([peer.stderr], [], [], 1)
        if ready:
            line = peer.stderr.readline()
            assert "listening" in line, line
            return peer
        assert peer.poll() is None, peer.stderr.read()
    peer.kill()
    raise AssertionError("vbdt peer did not start listening")


def test_peer_answers_what_vbdt_send_sent(setup: tuple[Path, Path, Path]) -> None:
    tmp, keys, creds = setup
    peer = _start_peer(tmp, keys, creds, "--count", "1", "--idle", "60", "--json")
    try:
        code, out, err = run("send", str(tmp / "demo" / "directive.edxml"), "--to", C1, "--keys", str(keys),
                             "--credentials", str(creds), "--ledger", str(tmp / "h14.db"), "--json")
        assert code == 0, err
        document_id = json.loads(out)["document_id"]
        out, err = peer.communicate(timeout=60)
    finally:
        if peer.poll() is None:
            peer.kill()
    assert peer.returncode == 0, err
    actions = [json.loads(line) for line in out.splitlines()]
    assert [(a["action"], a["document_id"], a["sender"]) for a in actions] == [(c, document_id, H14) for c in ("03", "04", "05", "06")]
    # the sender reads its receipts: its ledger shows the document completed at the peer
    code, _, err = run("listen", "--as", H14, "--keys", str(keys), "--credentials", str(creds), "--ledger", str(tmp / "h14.db"),
                       "--out", str(tmp / "h14-inbox"), "--idle", "3")
    assert code == 0, err
    ledger = SqliteLedger(tmp / "h14.db")
    try:
        assert [(d.recipient, d.state.value) for d in ledger.deliveries(document_id)] == [(C1, "completed")]
    finally:
        ledger.close()


def test_peer_stops_on_sigterm(setup: tuple[Path, Path, Path]) -> None:
    tmp, keys, creds = setup
    peer = _start_peer(tmp, keys, creds, "--behaviour", "silent")
    peer.terminate()
    out, err = peer.communicate(timeout=30)
    assert peer.returncode == 0 and out == "", err


def test_peer_refuses_bad_settings_with_one_line(setup: tuple[Path, Path, Path]) -> None:
    tmp, keys, creds = setup
    common = ["--keys", str(keys), "--ledger", str(tmp / "p.db")]
    cases = [  # the documented exit codes (docs/cli.md)
        (2, ["peer", "--as", C1, "--behaviour", "chaos", *common]),
        (2, ["peer", "--as", "../../etc", *common]),
        (2, ["peer", "--as", C1, "--delay", "-1", *common]),
        (2, ["peer", "--as", C1, "--count", "0", *common]),
        (2, ["peer", "--as", C1, "--reason", " ", "--credentials", str(creds), *common]),
        (2, ["peer", "--keys", str(keys)]),
        (1, ["peer", "--as", "000.00.00.X99", "--keys", str(keys)]),
        (77, ["peer", "--as", C1, *common, "--amqp", "amqp://nobody:wrong@127.0.0.1:5672/"]),
        (69, ["peer", "--as", C1, *common, "--amqp", "amqp://guest:guest@127.0.0.1:1/"]),
        (77, ["peer", "--as", C1, *common, "--amqp", "amqp://guest:guest@127.0.0.1:5672/"]),  # not the agency's own user
    ]
    for expected, args in cases:
        code, _, err = run(*args)
        assert code == expected and err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, (args, code, err)
