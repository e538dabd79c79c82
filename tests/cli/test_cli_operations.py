"""Running vbdt as a provincial operator does (issue 12): vbdt.toml, per-agency credentials files,
rotation and disabling, agency URLs for send and listen, listen as a service, health.

Against the real RabbitMQ; every user made here lives in a ``vbdt-test-<random>`` vhost of
:func:`conftest.fresh_vhost` and is deleted with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import H14, H14_COMMUNES, admin_url, fresh_vhost
from vbdt.cli.demo import build_directive
from vbdt.cli.main import main
from vbdt.directory.agencies import Directory
from vbdt.edxml.resources import example_directory_path
from vbdt.edxml.writer import write
from vbdt.errors import BrokerAuthError
from vbdt.exchange.amqp import AmqpTransport

C1, C2 = H14_COMMUNES


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, err: str, expected: int) -> None:
    assert code == expected, (code, err)
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, err


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ops") / "keys"
    code, _, err = run("pki", "init", str(folder), "--select", H14, "--select", C1, "--select", C2)
    assert code == 0, err
    return folder


def directive(folder: Path, number: int) -> Path:
    """A distinct directive of UBND Tỉnh Cao Bằng (its DocumentId follows the number)."""
    doc = build_directive(Directory.load(example_directory_path()), issued=date.today(), number=str(number))
    path = folder / f"directive-{number}.edxml"
    path.write_bytes(write(doc))
    return path


async def _login(url: str) -> None:
    transport = await AmqpTransport.connect(url, declare=False)
    await transport.close()


def can_login(url: str) -> bool:
    try:
        asyncio.run(_login(url))
    except BrokerAuthError:
        return False
    return True


async def _waiting(vhost: str, organ_id: str) -> int:
    transport = await AmqpTransport.connect(admin_url(vhost), declare=False)
    try:
        return (await transport.inbox_status(organ_id)).ready
    finally:
        await transport.close()


# -- vbdt.toml ---------------------------------------------------------------------------------------------------

def test_config_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, fragment in [("as = \n", "not valid TOML"), ("ass = 'x'\n", "unknown key(s) ass"),
                           ("as = '../../x'\n", "invalid OrganId"), ("amqp = 'http://x'\n", "not an AMQP URL"),
                           ("[keys]\nkey = 'a.pem'\n", "go together"), ("log_format = 'xml'\n", "log_format")]:
        bad.write_text(text)
        code, _, err = run("--config", str(bad), "status")
        one_line(code, err, 2)
        assert fragment in err, err
    code, _, err = run("--config", str(tmp_path / "missing.toml"), "status")
    one_line(code, err, 2)
    # a command that needs no configuration does not read it
    assert run("--config", str(bad), "directory", "select", H14)[0] == 0


def test_config_paths_resolve_against_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc"
    (etc / "state").mkdir(parents=True)
    from vbdt.exchange.ledger import SqliteLedger

    SqliteLedger(etc / "state" / "h14.db").close()
    (etc / "vbdt.toml").write_text(f'as = "{H14}"\nledger = "state/h14.db"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run("--config", str(etc / "vbdt.toml"), "status", "--json")
    assert code == 0 and json.loads(out)["documents"] == [], err
    code, out, err = run("status", "--json", env={"VBDT_CONFIG": str(etc / "vbdt.toml")})
    assert code == 0, err
    # the command line wins over the file
    code, _, err = run("--config", str(etc / "vbdt.toml"), "status", "--ledger", str(tmp_path / "none.db"))
    one_line(code, err, 2)
    assert not (elsewhere / ".vbdt").exists()


def test_provision_needs_somewhere_to_write(tmp_path: Path) -> None:
    code, _, err = run("broker", "provision", "--select", H14)
    one_line(code, err, 2)


# -- broker provision: split, merge, rotate, disable ----------------------------------------------------------

@pytest.mark.broker
def test_provision_splits_merges_rotates_and_disables(tmp_path: Path) -> None:
    with fresh_vhost([H14]) as done:
        vhost = done.vhost
        creds, split = tmp_path / "creds.json", tmp_path / "split"
        creds.write_text(json.dumps({H14: done.urls[H14]}))  # written by an earlier run
        base = ["broker", "provision", "--vhost", vhost, "-o", str(creds), "--split", str(split)]
        code, out, err = run(*base, "--select", H14, "--select", C1, "--select", C2)
        assert code == 0, err
        merged = json.loads(creds.read_text())
        assert merged[H14] == done.urls[H14] and set(merged) == {H14, C1, C2}  # merged, not overwritten
        assert sorted(p.name for p in split.iterdir()) == [f"{C1}.json", f"{C2}.json"]
        for path in [creds, *split.iterdir()]:
            assert mode(path) == 0o600, path
        for organ_id in (C1, C2):
            own = json.loads((split / f"{organ_id}.json").read_text())
            assert own == {organ_id: merged[organ_id]}  # a commune holds only its own password
            assert can_login(own[organ_id])

        # rotate one agency: the old password is gone, the new one works, the others keep theirs
        code, _, err = run(*base, "--select", C1, "--rotate", C1)
        assert code == 0, err
        rotated = json.loads(creds.read_text())
        assert rotated[C1] != merged[C1] and rotated[C2] == merged[C2] and rotated[H14] == merged[H14]
        assert json.loads((split / f"{C1}.json").read_text()) == {C1: rotated[C1]}
        assert not can_login(merged[C1]) and can_login(rotated[C1]) and can_login(rotated[C2])

        # disable one agency: it cannot log in, its entries are gone, provisioning again keeps it out
        code, out, err = run(*base, "--disable", C2)
        assert code == 0 and "disabled 1 agencies" in out, err
        assert C2 not in json.loads(creds.read_text()) and not (split / f"{C2}.json").exists()
        assert not can_login(merged[C2])
        code, _, err = run(*base, "--select", C2)
        assert code == 0 and "disabled and stay so" in err, err
        assert C2 not in json.loads(creds.read_text())
        code, _, err = run(*base, "--rotate", C2, "--select", C2)  # enabled again, with a new password
        assert code == 0, err
        assert can_login(json.loads(creds.read_text())[C2])

        # an -o file that is not a credentials file is refused, not overwritten; nothing changes on the broker
        other = tmp_path / "notes.json"
        other.write_text("my notes")
        code, _, err = run("broker", "provision", "--vhost", vhost, "--select", C1, "--rotate", C1, "-o", str(other))
        one_line(code, err, 2)
        assert other.read_text() == "my notes" and can_login(rotated[C1])


# -- send and listen with an agency's own URL --------------------------------------------------------------------

@pytest.fixture
def province(tmp_path: Path, keys: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A vhost with H14 and its two communes; a vbdt.toml per agency under tmp/etc/<OrganId>/."""
    with fresh_vhost([H14, C1, C2]) as done:
        for organ_id, url in done.urls.items():
            etc = tmp_path / "etc" / organ_id
            etc.mkdir(parents=True)
            (etc / "secret.json").write_text(json.dumps({organ_id: url}))
            (etc / "vbdt.toml").write_text(
                f'as = "{organ_id}"\ncredentials = "secret.json"\nledger = "state.db"\nout = "inbox"\n'
                f'keys = "{os.path.relpath(keys, etc)}"\n')
        yield done.vhost, done.urls, tmp_path


@pytest.mark.broker
def test_send_and_listen_with_agency_urls(province: tuple[str, dict[str, str], Path], keys: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    vhost, urls, tmp = province
    etc = tmp / "etc"
    elsewhere = tmp / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing depends on the current folder
    doc = directive(tmp, 11)

    # the operator's user is not the agency: refused before anything is published
    code, _, err = run("--config", str(etc / H14 / "vbdt.toml"), "send", str(doc), "--to", C1, "--amqp", admin_url(vhost))
    one_line(code, err, 77)
    assert "is not the user of" in err
    code, _, err = run("--config", str(etc / H14 / "vbdt.toml"), "send", str(doc), "--to", C1, "--amqp", urls[C2])
    one_line(code, err, 77)
    assert asyncio.run(_waiting(vhost, C1)) == 0

    # the agency's own URL from VBDT_AMQP_URL: no topology declared, published
    code, out, err = run("--config", str(etc / H14 / "vbdt.toml"), "send", str(doc), "--to", C1, "--json",
                         env={"VBDT_AMQP_URL": urls[H14]})
    assert code == 0, err
    sent = json.loads(out)
    assert sent["schema"] == 1 and [(r["organ_id"], r["outcome"], r["reason"]) for r in sent["recipients"]] == [(C1, "confirmed", None)]
    assert (etc / H14 / "state.db").exists() and not (elsewhere / ".vbdt").exists()

    # listen as C1 with its own URL on the command line, logs as JSON lines
    code, out, err = run("--config", str(etc / C1 / "vbdt.toml"), "listen", "--amqp", urls[C1], "--count", "1",
                         "--idle", "20", "--log-format", "json")
    assert code == 0, err
    assert out.startswith(f"document {sent['document_id']} from {H14} -> {etc / C1 / 'inbox'}")
    logs = [json.loads(line) for line in err.splitlines()]
    events = [line.get("event") for line in logs]
    assert events[0] == "started" and "received" in events and events[-1] == "stopped", err
    started = logs[0]
    assert started["organ_id"] == C1 and started["waiting"] == 1 and started["user"] == f"{vhost}/{C1}"
    assert "***" in started["broker"] and urls[C1].split(":")[2].split("@")[0] not in err  # the password never logged
    assert all({"time", "level", "logger", "message"} <= set(line) for line in logs)

    # the sender's listener applies the 01: logged as a receipt, in text
    code, _, err = run("--config", str(etc / H14 / "vbdt.toml"), "listen", "--idle", "3")
    assert code == 0, err
    assert " INFO vbdt.listen: receipt 01 " in err and "listening as 000.00.00.H14" in err, err
    code, out, _ = run("--config", str(etc / H14 / "vbdt.toml"), "status", sent["document_id"], "--json")
    assert json.loads(out)["documents"][0]["recipients"][0]["state"] == "arrived"


@pytest.mark.broker
def test_wrong_credentials_and_broker_down(province: tuple[str, dict[str, str], Path]) -> None:
    vhost, urls, tmp = province
    config = ["--config", str(tmp / "etc" / C1 / "vbdt.toml")]
    wrong = urls[C1].replace("@", "x@", 1)  # the password changed
    down = f"amqp://guest:guest@127.0.0.1:{unused_port()}/{vhost}"
    doc = directive(tmp, 12)
    cases = [
        (77, [*config, "send", str(doc), "--as", H14, "--amqp", wrong]),
        (77, [*config, "listen", "--amqp", wrong, "--idle", "1"]),
        (77, [*config, "health", "--amqp", wrong]),
        (69, [*config, "send", str(doc), "--as", H14, "--amqp", down]),
        (69, [*config, "listen", "--amqp", down, "--give-up-after", "0"]),
    ]
    for expected, args in cases:
        code, _, err = run(*args)
        lines = [line for line in err.splitlines() if line.startswith("vbdt: ")]
        assert code == expected and len(lines) == 1 and "Traceback" not in err, (args, err)
    # listen keeps trying while the broker is away, then gives up as asked
    code, _, err = run(*config, "listen", "--amqp", down, "--give-up-after", "1.5", "--max-backoff", "0.5")
    assert code == 69 and err.count("broker unavailable") >= 2 and err.splitlines()[-1].startswith("vbdt: "), err
    # health: the report, then one line, exit 69
    code, out, err = run(*config, "health", "--amqp", down, "--json")
    one_line(code, err, 69)
    report = json.loads(out)
    assert report["schema"] == 1 and report["healthy"] is False
    assert {c["name"]: c["status"] for c in report["checks"]}["broker"] == "failed"


# -- listen as a service --------------------------------------------------------------------------------------------

def _listener(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vbdt", "--config", str(config), "listen", "--log-format", "json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_event(process: subprocess.Popen[str], name: str, timeout: float = 30) -> list[dict[str, object]]:
    """Read JSON log lines until one of event ``name``; every line must parse."""
    assert process.stderr is not None
    seen: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"listener ended before {name!r}: {seen}")
        seen.append(json.loads(line))
        if seen[-1].get("event") == name:
            return seen
    raise AssertionError(f"no {name!r} event in time: {seen}")


@pytest.mark.broker
def test_listen_service_stops_on_sigterm_and_catches_up_after_a_kill(province: tuple[str, dict[str, str], Path]) -> None:
    vhost, _urls, tmp = province
    h14, c1 = tmp / "etc" / H14 / "vbdt.toml", tmp / "etc" / C1 / "vbdt.toml"

    listener = _listener(c1)
    try:
        _wait_for_event(listener, "started")
        # healthy while it listens
        code, out, err = run("--config", str(c1), "health", "--json")
        assert code == 0, (out, err)
        assert {c["name"] for c in json.loads(out)["checks"]} >= {"certificate", "outbox", "broker", "inbox"}
        code, _, err = run("--config", str(h14), "send", str(directive(tmp, 21)), "--to", C1)
        assert code == 0, err
        received = _wait_for_event(listener, "received")[-1]
        listener.send_signal(signal.SIGTERM)
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every log line is JSON
    assert [line.get("event") for line in lines][-2:] == ["stopping", "stopped"]
    assert Path(str(received["file"])).exists() and str(received["file"]) in out

    # nobody listens: health says so (exit 1)
    code, out, _ = run("--config", str(c1), "health")
    assert code == 1 and "nobody consumes it" in out

    # a listener killed outright; what is sent meanwhile waits, and the next one takes it
    listener = _listener(c1)
    try:
        _wait_for_event(listener, "started")
        listener.kill()
        listener.wait(timeout=10)
        code, out, err = run("--config", str(h14), "send", str(directive(tmp, 22)), "--to", C1, "--json")
        assert code == 0, err
        document_id = json.loads(out)["document_id"]
        listener = _listener(c1, "--count", "1")
        started = _wait_for_event(listener, "started")[-1]
        assert started["waiting"] == 1
        received = _wait_for_event(listener, "received")[-1]
        assert received["sender"] == H14 and received["document_id"] == document_id
        assert listener.wait(timeout=30) == 0
    finally:
        listener.kill()
    assert asyncio.run(_waiting(vhost, C1)) == 0


@pytest.mark.broker
def test_health_reports_certificate_expiry(province: tuple[str, dict[str, str], Path]) -> None:
    _vhost, _urls, tmp = province
    code, out, err = run("--config", str(tmp / "etc" / C1 / "vbdt.toml"), "health", "--days", "100000", "--json")
    assert code == 1, err
    checks = json.loads(out)["checks"]
    certificate = next(c for c in checks if c["name"] == "certificate")
    assert certificate["status"] == "failed" and "expires in" in certificate["detail"] and certificate["days_left"] > 0
    inbox = next(c for c in checks if c["name"] == "inbox")
    assert inbox["status"] == "failed" and inbox["consumers"] == 0


def test_the_examples_are_what_the_docs_say() -> None:
    from vbdt.cli.config import load_config

    examples = Path(__file__).parents[2] / "examples"
    config = load_config(examples / "vbdt.toml")
    assert config.organ_id == C1 and config.keys.dir == examples / "keys" and config.trust == examples / "keys" / "ca.pem"
    assert config.credentials == examples / "agencies" / f"{C1}.json" and config.log_format == "json"
    unit = (examples / "vbdt-serve@.service").read_text()
    for line in ("Restart=always", "EnvironmentFile=/etc/vbdt/%i.env", "ExecStart=/usr/local/bin/vbdt --config /etc/vbdt/%i.toml listen"):
        assert f"\n{line}\n" in unit, line
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for key in ("as", "amqp", "credentials", "keys", "trust", "directory", "ledger", "out", "retention_days", "log_format"):
        assert f"| `{key}` |" in docs, key
