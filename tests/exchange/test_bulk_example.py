"""examples/bulk_send.py runs as documented: on the embedded exchange, and on RabbitMQ (a vhost of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import H14, admin_url, fresh_vhost

ROOT = Path(__file__).parents[2]


def run_example(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "bulk_send.py"), "--inboxes", "3", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "BÁO CÁO GỬI VĂN BẢN HÀNG LOẠT" in html and "<svg" in html
    return done.stdout


@pytest.mark.parametrize("over", ["embedded", "amqp"])
def test_example_runs(tmp_path: Path, over: str) -> None:
    if over == "embedded":
        stdout = run_example(tmp_path)
    else:
        with fresh_vhost([H14]) as done:
            stdout = run_example(tmp_path, "--amqp", admin_url(done.vhost))
    assert "receipts: 3 copies arrived" in stdout
    assert "'000.00.00.H99'" in stdout  # the unknown agency, left out and said
    assert "'unroutable': 53" in stdout and "'arrived': 3" in stdout
