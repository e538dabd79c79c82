"""examples/dms runs over both transports, ends where a DMS must end, and type-checks strictly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import AMQP_HOST, AMQP_PORT, require_broker

DMS = Path(__file__).resolve().parents[2] / "examples" / "dms"
OPERATOR = f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/"
PROVINCE, DISTRICT, COMMUNES = "000.00.00.H54", "000.00.01.H54", ["000.01.01.H54", "000.02.01.H54"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", *args], cwd=DMS, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


@pytest.mark.parametrize("over", ["embedded", "amqp"])
def test_the_dms_registers_relays_collects_and_survives_a_restart(over: str) -> None:
    args = ["--json"]
    if over == "amqp":
        require_broker()
        args += ["--amqp", OPERATOR]
    done = _run(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    directive, relay = outcome["directive"], outcome["district"]["relay"]
    # the province: the district answered every step, and completed
    assert outcome["province"]["states"] == {DISTRICT: "completed"}
    assert outcome["province"]["history"] == ["01", "03", "04", "05", "06"]
    # the district's book: the directive, then one report per commune, numbered without a gap, each once
    book = outcome["district"]["register"]
    assert [r["number"] for r in book] == [1, 2, 3]
    assert (book[0]["sender"], book[0]["document_id"], book[0]["kind"], book[0]["state"]) == (PROVINCE, directive, "directive", "06")
    assert book[0]["relayed_as"] == relay and book[0]["pdf_ok"] and book[0]["sealed_by"] == PROVINCE
    reports = book[1:]
    assert sorted(r["sender"] for r in reports) == COMMUNES
    assert all(r["kind"] == "report" and r["state"] == "06" and r["answers"] == relay and r["sealed_by"] == r["sender"]
               for r in reports)
    # the crash: the first report was registered, not acknowledged; it came again, and was not registered twice
    assert outcome["crashed"] is True
    assert outcome["district"]["redelivered"] == [reports[0]["document_id"]]
    assert outcome["district"]["refused"] == []
    # the relay: both communes completed it, and each holds the province's PDF, sealed by the province
    assert outcome["district"]["relay_states"] == dict.fromkeys(COMMUNES, "completed")
    for commune in COMMUNES:
        (row,) = outcome["communes"][commune]
        assert (row["sender"], row["document_id"], row["answers"], row["state"]) == (DISTRICT, relay, directive, "06")
        assert row["pdf_ok"] and row["sealed_by"] == PROVINCE
    assert "handed again after the restart" in done.stdout


def test_the_dms_refuses_a_bad_url_with_one_line() -> None:
    done = _run("--amqp", "http://nowhere")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not an AMQP URL" in done.stderr, done.stderr


def test_the_dms_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), "."], cwd=DMS,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found in 3 source files" in done.stdout
