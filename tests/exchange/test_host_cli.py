"""``vbdt serve``: the host of many agencies as a service, and what it answers to a bad [host] table."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import vbdt
from conftest import H54, H54_COMMUNES, H54_DISTRICT, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.cli.exits import EXIT_PERMISSION, EXIT_USAGE
from vbdt.cli.main import main
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.receipts import DeliveryState

HOSTED = [H54_DISTRICT, *H54_COMMUNES]


def _config(tmp: Path, folder: Path, host: str, urls: dict[str, str], extra: str = "") -> Path:
    (tmp / "agencies.json").write_text(json.dumps(urls))
    config = tmp / "host.toml"
    config.write_text(f"""
[host]
url = "{host}"
credentials = "agencies.json"
agencies = {json.dumps(HOSTED)}
keys = "{folder}"
ledgers = "state"
out = "inbox"
log_format = "json"
{extra}""")
    return config


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("body", "says"), [
    ("as = '000.00.01.H54'\n", "no [host] table"),
    ("[host]\nurl = 'amqp://u:p@h/v'\n", "needs credentials, agencies, keys"),
    ("[host]\nurl = 'amqp://u:p@h/v'\ncredentials='c'\nagencies=[]\nkeys='k'\n", "non-empty list"),
    ("[host]\nurl = 'amqp://u:p@h/v'\ncredentials='c'\nagencies=[1]\nkeys='k'\n", "non-empty list"),
    ("[host]\nurl = 'http://h/'\ncredentials='c'\nagencies=['x']\nkeys='k'\n", "not an AMQP URL"),
    ("[host]\nurl = 'amqp://u:p@h/v'\ncredentials='c'\nagencies=['x']\nkeys='k'\nlog_format='xml'\n", "log_format"),
    ("[host]\nurl = 'amqp://u:p@h/v'\npassword = 'p'\n", "unknown key(s) in [host]: password"),
    ("[host\n", "not valid TOML"),
])
def test_bad_host_tables_are_one_line_and_exit_2(tmp_path: Path, body: str, says: str) -> None:
    config = tmp_path / "host.toml"
    config.write_text(body)
    code, err = _run("--config", str(config), "serve")
    assert code == EXIT_USAGE and says in err and err.count("\n") == 1 and "Traceback" not in err


def test_serve_needs_a_config_and_resolvable_agencies(tmp_path: Path, exchange_pki: Any) -> None:
    _, folder = exchange_pki
    code, err = _run("serve")
    assert code == EXIT_USAGE and "--config FILE serve" in err
    config = tmp_path / "bytes.toml"
    config.write_bytes(b"\xff\xfe[host]")
    assert _run("--config", str(config), "serve") == (EXIT_USAGE, f"vbdt: {config}: not UTF-8 text; a vbdt.toml is TOML\n")
    # an agency without a URL in the credentials file
    config = _config(tmp_path, folder, "amqp://u:p@127.0.0.1:1/v", {H54_DISTRICT: "amqp://u:p@127.0.0.1:1/v"})
    code, err = _run("--config", str(config), "serve")
    assert code == EXIT_USAGE and "no URL for" in err and H54_COMMUNES[0] in err
    # a selector that is no selector, and one that selects nothing
    for agencies, says in (('["no such id"]', "no such id"), ('["000.00.00.H54/*:central"]', "selects no agency")):
        config = _config(tmp_path, folder, "amqp://u:p@127.0.0.1:1/v", {}, extra="").rename(tmp_path / "sel.toml")
        config.write_text(config.read_text().replace(f"agencies = {json.dumps(HOSTED)}", f"agencies = {agencies}"))
        code, err = _run("--config", str(config), "serve")
        assert code in (1, EXIT_USAGE) and says in err and err.count("\n") == 1 and "Traceback" not in err, (agencies, err)


def _wait_for(process: subprocess.Popen[str], name: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    assert process.stderr is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"serve ended before {name!r}: {seen}")
        seen.append(json.loads(line))
        if sum(1 for s in seen if s.get("event") == name) >= count:
            return seen
    raise AssertionError(f"no {name!r} event in time: {seen}")


@pytest.mark.broker
async def test_serve_runs_the_host_and_stops_on_sigterm(exchange_pki: Any, example_directory: vbdt.Directory,
                                                        tmp_path: Path) -> None:
    from vbdt.exchange.broker import provision_host

    pki, folder = exchange_pki
    with fresh_vhost([H54, *HOSTED]) as done:
        host_url = provision_host("h54", HOSTED, vhost=done.vhost)
        assert host_url is not None
        config = _config(tmp_path, folder, host_url, {o: done.urls[o] for o in HOSTED})
        serve = subprocess.Popen([sys.executable, "-m", "vbdt", "--config", str(config), "serve"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            started = (await asyncio.to_thread(_wait_for, serve, "started"))[-1]
            assert started["agencies"] == 3 and started["user"] == f"{done.vhost}/hosts/h54"
            province = AgencyClient(H54, transport=await vbdt.connect(done.urls[H54]), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                                    key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                                    person=pki.signer, seal=pki.agencies[H54])
            async with province:
                doc = compose(example_directory, H54, HOSTED, number="41", notation="UBND-VP", type_name="Công văn",
                              subject="Về việc chạy nhiều cơ quan", issued=date.today())
                result = await province.send(doc)
                received = [e for e in await asyncio.to_thread(_wait_for, serve, "received", 3) if e.get("event") == "received"]

                async def arrived() -> None:
                    while any(d.state is not DeliveryState.ARRIVED for d in province.status(result.document_id)):
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(arrived(), 30)  # the 01s came back, each published as its agency
            serve.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(serve.communicate, timeout=30)
        finally:
            serve.kill()
        assert serve.returncode == 0, err
        assert sorted(e["organ_id"] for e in received) == sorted(HOSTED)
        for e in received:
            path = Path(e["file"])
            assert path.parent == tmp_path / "inbox" / e["organ_id"] and path.read_bytes().startswith(b"<?xml")
        assert [json.loads(line).get("event") for line in err.splitlines()][-2:] == ["stopping", "stopped"]

        # a host user that may read only one of the inboxes: refused, exit 77, one line
        provision_host("h54", HOSTED[:1], vhost=done.vhost)
        denied = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vbdt", "--config", str(config), "serve"],
                                         capture_output=True, text=True, timeout=60)
        lines = denied.stderr.splitlines()
        assert denied.returncode == EXIT_PERMISSION and "Traceback" not in denied.stderr, denied.stderr
        assert lines[-1].startswith("vbdt: ") and "access refused" in lines[-1] \
            and any(o in lines[-1] for o in HOSTED[1:])  # the inboxes start together: either unreadable one is named first
        logged = [json.loads(line) for line in lines[:-1]]  # the log lines before it are JSON
        assert any(r["level"] == "ERROR" and "access refused" in r["message"] for r in logged)
