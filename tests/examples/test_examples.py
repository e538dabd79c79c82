"""Every example of this kit runs: over the embedded exchange, and over RabbitMQ with --amqp / --vbdt-amqp."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import AMQP_HOST, AMQP_PORT, require_broker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OPERATOR = f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/"


def _run(*args: str, cwd: Path = EXAMPLES, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("over", ["embedded", "amqp"])
def test_send_and_receive(over: str) -> None:
    args = ["send_and_receive.py"]
    if over == "amqp":
        require_broker()
        args += ["--amqp", OPERATOR]
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "both answers came back"
    assert any("000.00.01.H14  completed" in line for line in lines) and any("000.00.02.H14  rejected" in line for line in lines)
    history = next(line for line in lines if line.startswith("history at"))
    assert set(history.split(":", 1)[1].split()) >= {"01", "03", "04", "05", "06"}


def test_send_and_receive_refuses_a_bad_url_with_one_line() -> None:
    done = _run("send_and_receive.py", "--amqp", "http://nowhere")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not an AMQP URL" in done.stderr, done.stderr


@pytest.mark.parametrize("over", ["embedded", "amqp"])
def test_vendor_test_suite_passes(over: str) -> None:
    """The vendor's own pytest run (its pytest.ini), with the plugin loaded as the entry point would load it."""
    args = ["-m", "pytest", "-q", "-p", "pytest_asyncio.plugin", "-p", "vbdt.testing.plugin", "-p", "no:cacheprovider"]
    if over == "amqp":
        require_broker()
        args += ["--vbdt-amqp", OPERATOR]
    # autoload off: the same run whether or not vbdt's pytest11 entry point is installed yet
    done = _run(*args, cwd=EXAMPLES / "vendor_test", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout, done.stdout


def test_the_plugin_costs_nothing_beyond_import_vbdt() -> None:
    code = ("import sys, vbdt, pytest; before = set(sys.modules); import vbdt.testing.plugin; "
            "print(sorted(m for m in set(sys.modules) - before))")
    done = _run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['vbdt.testing', 'vbdt.testing.plugin']"
