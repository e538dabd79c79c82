"""``vbdt serve`` without ``out``: the hosted ledgers are the store, and retention drops acknowledged bodies."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_host_cli import HOSTED, _wait_for

import vbdt
from conftest import H54, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.exchange.client import AgencyClient


def _serve(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vbdt", "--config", str(config), "serve", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _stop(serve: subprocess.Popen[str]) -> list[dict[str, Any]]:
    serve.send_signal(signal.SIGTERM)
    _, err = await asyncio.to_thread(serve.communicate, timeout=30)
    assert serve.returncode == 0, err
    return [json.loads(line) for line in err.splitlines()]


@pytest.mark.broker
async def test_serve_without_out_keeps_the_ledgers_and_applies_retention(exchange_pki: Any, example_directory: vbdt.Directory,
                                                                         tmp_path: Path) -> None:
    from vbdt.exchange.broker import provision_host

    pki, folder = exchange_pki
    with fresh_vhost([H54, *HOSTED]) as done:
        host_url = provision_host("h54r", HOSTED, vhost=done.vhost)
        assert host_url is not None
        (tmp_path / "agencies.json").write_text(json.dumps({o: done.urls[o] for o in HOSTED}))
        config = tmp_path / "host.toml"
        config.write_text(f'[host]\nurl = "{host_url}"\ncredentials = "agencies.json"\nagencies = {json.dumps(HOSTED)}\n'
                          f'keys = "{folder}"\nledgers = "state"\nlog_format = "json"\nretention_days = 30\n')
        serve = _serve(config)
        try:
            seen = await asyncio.to_thread(_wait_for, serve, "started")
            (first,) = [e for e in seen if e.get("event") == "retention"]  # before serving, over every ledger
            assert (first["days"], first["bodies"]) == (30, 0)
            province = AgencyClient(H54, transport=await vbdt.connect(done.urls[H54]), ledger=vbdt.SqliteLedger(tmp_path / "p.db"),
                                    key=pki.agencies[H54], trust=folder / "ca.pem", directory=example_directory,
                                    person=pki.signer, seal=pki.agencies[H54])
            async with province:
                doc = compose(example_directory, H54, HOSTED, number="42", notation="UBND-VP", type_name="Công văn",
                              subject="Về việc lưu trữ tập trung", issued=date.today())
                result = await province.send(doc)
            received = [e for e in await asyncio.to_thread(_wait_for, serve, "received", len(HOSTED))
                        if e.get("event") == "received"]
            await _stop(serve)
        finally:
            serve.kill()
        assert sorted(e["organ_id"] for e in received) == sorted(HOSTED) and all(e["file"] is None for e in received)
        assert not (tmp_path / "inbox").exists()
        for organ_id in HOSTED:
            ledger = vbdt.SqliteLedger(tmp_path / "state" / f"{organ_id}.db")
            stored = ledger.incoming(H54, result.document_id, "document")
            ledger.close()
            assert stored is not None and stored.acknowledged and stored.body is not None

        # started again with --retention-days 0: every acknowledged body goes at start, the records stay
        serve = _serve(config, "--retention-days", "0")
        try:
            seen = await asyncio.to_thread(_wait_for, serve, "started")
            await _stop(serve)
        finally:
            serve.kill()
        (again,) = [e for e in seen if e.get("event") == "retention"]
        assert (again["days"], again["items"], again["bodies"]) == (0, len(HOSTED), len(HOSTED)) and again["bytes"] > 0
        for organ_id in HOSTED:
            ledger = vbdt.SqliteLedger(tmp_path / "state" / f"{organ_id}.db")
            stored = ledger.incoming(H54, result.document_id, "document")
            ledger.close()
            assert stored is not None and stored.body is None and stored.dropped_at is not None and stored.state == "01"
