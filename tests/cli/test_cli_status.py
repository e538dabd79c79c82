"""``vbdt status``: names, ages, attempts, Decree 30 overdue marks on working days, filters, summary, watch."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conftest import admin_url, fresh_vhost
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
    with ledger._file.transaction() as db:
        db.execute("UPDATE deliveries SET sent_at = ? WHERE document_id = ?", (three_weeks.isoformat(), OLD))
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


# --- which recipients are offline: inbox depth and consumers, with an operator's URL -----------------

DOCS = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()


def _documented_status_fields() -> set[str]:
    (row,) = [line for line in DOCS.splitlines() if line.startswith("| `status`") and '"schema"' in line]
    return set(re.findall(r'"(\w+)"', row))


def _assert_documented(data: dict[str, Any]) -> None:
    fields = _documented_status_fields()
    assert set(data) <= fields and set(data["summary"]) <= fields, set(data["summary"]) - fields
    for document in data["documents"]:
        assert set(document) <= fields
        for recipient in document["recipients"]:
            assert set(recipient) <= fields, set(recipient) - fields


class _Reader:
    """C1's own listener in a thread (its own event loop): one consumer attached to C1's inbox."""

    def __init__(self, url: str) -> None:
        self.url, self.ready, self.stop = url, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        from vbdt.exchange.amqp import AmqpTransport

        transport = await AmqpTransport.connect(self.url, declare=False)
        try:
            task = asyncio.ensure_future(anext(aiter(transport.consume(C1))))
            while (await transport.inbox_status(C1)).consumers == 0:
                await asyncio.sleep(0.05)
            self.ready.set()
            while not self.stop.is_set():
                await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        finally:
            await transport.close()

    def __enter__(self) -> _Reader:
        self.thread.start()
        assert self.ready.wait(20), "C1's consumer did not attach"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def test_status_shows_which_recipients_are_offline(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    with fresh_vhost([H14, C1, C2]) as done, _Reader(done.urls[C1]):
        data = report(*common, "--admin-url", admin_url(done.vhost))
        _assert_documented(data)
        seen = {r["organ_id"]: r for doc in data["documents"] for r in doc["recipients"]}
        assert seen[C1]["online"] is True and seen[C1]["inbox_consumers"] == 1 and seen[C1]["inbox_ready"] == 0
        assert seen[C2]["online"] is False and seen[C2]["inbox_consumers"] == 0 and isinstance(seen[C2]["inbox_ready"], int)
        assert data["summary"]["offline"] == [C2]

        # the same from vbdt.toml's admin_amqp, as text
        (tmp_path / "vbdt.toml").write_text(f'admin_amqp = "{admin_url(done.vhost)}"\n')
        code, out, err = run("--config", str(tmp_path / "vbdt.toml"), "status", *common)
        assert code == 0 and err == "", err
        assert out.splitlines()[-1].endswith("1 overdue; 1 recipient(s) offline")
        assert any(C2 in line and "OFFLINE, no consumer" in line for line in out.splitlines())
        assert any(C1 in line and "[inbox: 0 waiting, 1 consumer(s)]" in line for line in out.splitlines())

        # an agency's own user may not look at others' inboxes: said once, the report still comes
        code, out, err = run("status", *common, "--admin-url", done.urls[C1], "--json")
        assert code == 0 and err.count("\n") == 1 and "--admin-url" in err and "Traceback" not in err, err
        data = json.loads(out)
        assert data["summary"]["offline"] is None and data["summary"]["deliveries"] == 4
        assert all(r["online"] is None and r["inbox_ready"] is None for doc in data["documents"] for r in doc["recipients"])


def test_status_without_a_broker_says_so_once_and_reports_the_ledger(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"amqp://guest:s3cr3t-pw@127.0.0.1:{sock.getsockname()[1]}/"
    code, out, err = run("status", *common, "--admin-url", dead)
    assert code == 0 and err.startswith("vbdt: recipients' inboxes unknown") and err.count("\n") == 1, err
    assert "s3cr3t-pw" not in err  # the URL is named without its password
    assert out.splitlines()[-1] == "2 documents, 4 deliveries: 1 accepted, 1 rejected, 2 sent; 1 overdue"
    data = report(*common, "--admin-url", dead)
    _assert_documented(data)
    assert data["summary"]["offline"] is None


def test_status_refuses_a_bad_admin_url_with_one_line(tmp_path: Path) -> None:
    common = ["--as", H14, "--ledger", str(_ledger(tmp_path / "h14.db"))]
    for url in ("http://guest:guest@127.0.0.1:15672", "amqp://", "amqp://host:port/", "\x00"):
        code, _, err = run("status", *common, "--admin-url", url)
        assert code == 2 and err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, (url, err)
    (tmp_path / "vbdt.toml").write_text('admin_amqp = "ftp://nowhere"\n')
    code, _, err = run("--config", str(tmp_path / "vbdt.toml"), "status", *common)
    assert code == 2 and "admin_amqp" in err and err.count("\n") == 1, err
