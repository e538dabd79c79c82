"""``vbdt status``: names, ages, attempts, Decree 30 overdue marks on working days, filters, summary, watch."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from vbdt.cli.main import main
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.exchange.ledger import OutboxEntry, SentDocument, SqliteLedger

H14, C1, C2 = "000.00.00.H14", "000.00.01.H14", "000.00.02.H14"
OLD, NEW = "000.00.00.H14,2026/11/02,7/CT-UBND", "000.00.00.H14,2026/11/23,9/CT-UBND"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _ledger(path: Path) -> Path:
    """Two documents: OLD sent three weeks ago (C1 accepted it, C2 never confirmed), NEW sent now."""
    ledger = SqliteLedger(path)
    for document_id, number in ((OLD, "7"), (NEW, "9")):
        entries = [OutboxEntry(f"{document_id}>{r}", document_id, r, "document", b"<edXML/>") for r in (C1, C2)]
        ledger.record_send(SentDocument(document_id, H14, f"{number}/CT-UBND", f"Chỉ thị số {number}", dt.date(2026, 11, 2)),
                           entries)
        ledger.published([e.message_id for e in entries])
    three_weeks = dt.datetime.now(dt.UTC) - dt.timedelta(days=21)
    ledger._db.execute("UPDATE deliveries SET sent_at = ? WHERE document_id = ?", (three_weeks.isoformat(), OLD))
    ledger.apply(OLD, C1, StatusCode.ACCEPTED, receipt_key="a")
    ledger.apply(NEW, C2, StatusCode.REJECTED, receipt_key="r", note="Sai thẩm quyền")
    ledger.close()
    return path


def report(*args: str) -> dict[str, Any]:
    code, out, err = run("status", *args, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == 1 and isinstance(data["documents"], list) and isinstance(data["summary"], dict)
    return dict(data)


def test_status_reports_names_ages_overdue_and_a_summary(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    data = report(*common)
    assert data["summary"]["states"] == {"accepted": 1, "rejected": 1, "sent": 2} and data["summary"]["deliveries"] == 4
    old = {r["organ_id"]: r for r in data["documents"][0]["recipients"]}
    assert old[C2]["overdue"] and old[C2]["late_by_working_days"] >= 10 and old[C2]["deadline"].endswith("+07:00")
    assert not old[C1]["overdue"] and old[C1]["name"] and old[C1]["age_seconds"] >= 21 * 86400
    assert isinstance(old[C1]["attempt"], int) and old[C1]["sent_at"].endswith("+07:00")
    # issued three weeks ago but sent just now: not overdue (the deadline counts from the sending)
    assert not any(r["overdue"] for r in data["documents"][1]["recipients"]) and data["summary"]["overdue"] == 1

    code, out, _ = run("status", *common)
    assert code == 0 and "QUÁ HẠN" in out and "Sai thẩm quyền" in out
    assert out.splitlines()[-1] == "2 documents, 4 deliveries: 1 accepted, 1 rejected, 2 sent; 1 overdue"

    # filters: state, overdue, recipients, sent since; one document is still a list of one
    assert [(d["document_id"], [r["organ_id"] for r in d["recipients"]]) for d in report(*common, "--overdue")["documents"]] \
        == [(OLD, [C2])]
    assert [d["document_id"] for d in report(*common, "--state", "rejected")["documents"]] == [NEW]
    assert report(*common, "--to", C1)["summary"]["states"] == {"accepted": 1, "sent": 1}
    assert [d["document_id"] for d in report(*common, "--since", "7d")["documents"]] == [NEW]
    assert [d["document_id"] for d in report(*common, NEW)["documents"]] == [NEW]
    assert report(*common, NEW, "--state", "completed")["documents"] == []


def test_status_refuses_bad_filters_with_one_line(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    for args in (["--since", "last tuesday"], ["--to", "000.00.00.X99"], ["--to", "H14/***"], ["--state", "lost"],
                 ["nothing-like-it"], ["--watch", "0"]):
        code, _, err = run("status", *common, *args)
        assert code in (1, 2) and err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, (args, err)


def test_status_watch_refreshes_until_ctrl_c(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "h14.db")
    child = subprocess.Popen([sys.executable, "-m", "vbdt", "status", "--as", H14, "--ledger", str(ledger), "--watch", "0.5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 2 and time.monotonic() < deadline:
            seen += child.stdout.readline().startswith("2 documents, 4 deliveries")
        assert seen == 2
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0 and "Traceback" not in err, err


def test_a_time_zone_in_since_is_respected(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    since = (dt.datetime.now(VIETNAM_TZ) - dt.timedelta(days=30)).astimezone(dt.UTC).isoformat()
    assert report(*common, "--since", since)["summary"]["deliveries"] == 4
