"""Progress of long operations (vbdt.cli.progress): a bar on a terminal, plain lines on stderr otherwise, never both."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest import H14, require_broker
from vbdt.cli.main import main
from vbdt.cli.progress import progress, tracked

C1, C2 = "000.00.01.H14", "000.00.02.H14"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_not_a_terminal_gives_plain_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    with progress("issuing", total=3, console=plain, interval=0) as advance:
        for _ in range(3):
            advance()
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and plain.file.getvalue() == ""  # type: ignore[attr-defined]
    assert [line.split(" (")[0] for line in lines] == ["issuing: 1/3", "issuing: 2/3", "issuing: 3/3"], lines
    assert lines[-1].endswith("s") and " in " in lines[-1] and "/s" in lines[-1]


def test_plain_lines_are_throttled_to_one_a_second_plus_the_last(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("many", total=1000, console=Console(file=io.StringIO(), force_terminal=False)) as advance:
        for _ in range(1000):
            advance()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("many: 1000/1000 ("), lines


def test_a_terminal_gets_a_bar_with_rate_and_eta_and_no_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    with progress("issuing", total=4, console=screen, interval=0) as advance:
        for _ in range(4):
            advance()
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "issuing" in drawn and "━" in drawn and "4/4" in drawn and "ETA" in drawn and "/s" in drawn, drawn
    assert capsys.readouterr().err == ""


def test_off_in_json_mode_and_for_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    screen = Console(file=io.StringIO(), force_terminal=True)
    with progress("quiet", total=2, enabled=False, console=screen, interval=0) as advance:
        advance()
        advance()
    with progress("empty", total=0, console=screen, interval=0):
        pass
    assert screen.file.getvalue() == "" and capsys.readouterr().err == ""  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="negative"), progress("bad", total=-1):
        pass


def test_a_failed_block_prints_no_final_line(capsys: pytest.CaptureFixture[str]) -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    with pytest.raises(RuntimeError), progress("failing", total=3, console=plain, interval=60) as advance:
        advance()
        raise RuntimeError("broken half-way")
    assert "3/3" not in capsys.readouterr().err


def test_tracked_counts_an_item_once_it_is_processed() -> None:
    counted: list[int] = []
    seen: list[tuple[str, int]] = []
    for item in tracked(["a", "b", "c"], lambda n=1: counted.append(n)):
        seen.append((item, len(counted)))  # not counted while it is being processed
    assert seen == [("a", 0), ("b", 1), ("c", 2)] and len(counted) == 3


def test_pki_init_and_add_report_progress_on_stderr_only(tmp_path: Path) -> None:
    code, out, err = run("pki", "init", str(tmp_path / "ca"), "--select", H14, "--select", C1)
    assert code == 0 and "issuing certificates: 2/2 (" in err and "issuing" not in out, err
    code, out, err = run("pki", "add", str(tmp_path / "ca"), C2)
    assert code == 0 and "issuing certificates: 1/1 (" in err and "issuing" not in out, err
    # a refusal is still one line, with no progress before it
    code, _, err = run("pki", "add", str(tmp_path / "ca"), C2)
    assert code == 1 and err.count("\n") == 1 and "issuing" not in err, err


def test_pki_init_on_a_terminal_draws_a_bar(tmp_path: Path) -> None:
    """A real pseudo-terminal on stderr: rich draws its bar there, stdout (a pipe) stays plain."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    child = subprocess.Popen([sys.executable, "-m", "vbdt", "pki", "init", str(tmp_path / "ca"), "--select", H14,
                              "--select", C1, "--select", C2], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    drawn = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
        os.close(master)
    text = drawn.decode("utf-8", "replace")
    assert child.returncode == 0, text
    assert "━" in text and "3/3" in text and "issuing certificates" in text, text
    assert "issuing certificates: 3/3 (" not in text  # not the plain lines as well
    assert b"\x1b" not in out and b"TEST PKI for 3 agencies" in out


def test_broker_provision_reports_progress(tmp_path: Path) -> None:
    require_broker()
    from vbdt.exchange.broker import deprovision

    vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
    try:
        code, out, err = run("broker", "provision", "--select", H14, "--select", C1, "--select", C2, "--vhost", vhost,
                             "-o", str(tmp_path / "all.json"), "--split", str(tmp_path / "split"))
        assert code == 0, err
        assert f"provisioning on {vhost}: 3/3 (" in err and "writing credentials files: 3/3 (" in err, err
        assert "provisioning on" not in out and len(list((tmp_path / "split").iterdir())) == 3
    finally:
        deprovision(vhost)
