"""The vbdt command: exit codes, one-line reasons, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import INTEROP
from vbdt.cli.main import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_valid_file(tmp_path: Path) -> None:
    code, out, _ = run("demo", "--quick", "--out", str(tmp_path))
    assert code == 0 and "valid, 0 errors" in out
    code, out, _ = run("validate", str(tmp_path / "directive.edxml"))
    assert code == 0 and "valid (0 errors, 0 warnings)" in out


def test_validate_invalid_prints_line_path_reason() -> None:
    code, out, _ = run("validate", str(INTEROP / "new-document.edxml"), "--lenient")
    assert code == 1
    assert f"{INTEROP / 'new-document.edxml'}:18: /edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To/OrganId: EDX101 error:" in out


def test_validate_lenient_status_is_valid() -> None:
    assert run("validate", "--lenient", str(INTEROP / "status-01-arrived.edxml"))[0] == 0
    assert run("validate", str(INTEROP / "status-01-arrived.edxml"))[0] == 1


def test_validate_json(tmp_path: Path) -> None:
    code, out, _ = run("validate", "--json", "--lenient", str(INTEROP / "status-03-accepted.edxml"), str(INTEROP / "new-document.edxml"))
    reports = json.loads(out)
    assert code == 1 and [r["valid"] for r in reports] == [True, False]
    assert reports[1]["findings"][0]["line"] == 18


def test_unreadable_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.edxml"
    bad.write_bytes(b"<edXML><oops")
    code, out, err = run("validate", str(bad))
    assert code == 2 and "unreadable: not well-formed XML" in err and "Traceback" not in err + out
    code, _, err = run("validate", str(tmp_path / "missing.edxml"))
    assert code == 2 and "no such file" in err
    hostile = tmp_path / "xxe.edxml"
    hostile.write_bytes(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    code, _, err = run("validate", str(hostile))
    assert code == 2 and "DOCTYPE is not allowed" in err


def test_inspect_human_and_json() -> None:
    code, out, _ = run("inspect", str(INTEROP / "new-document-small.edxml"))
    assert code == 0
    assert "number: 7816/VPCP-TTĐT" in out and "subject: V/v kết nối" in out and "1896_QD-TTg_m_294779.doc" in out
    code, out, _ = run("inspect", "--json", str(INTEROP / "status-02-rejected.edxml"))
    data = json.loads(out)
    assert code == 0 and data["kind"].startswith("status 02") and data["findings"][0]["code"] == "EDX903"


def test_inspect_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "x.edxml"
    bad.write_text("<edXML xmlns='urn:other'/>")
    code, _, err = run("inspect", str(bad))
    assert code == 2 and err.count("\n") == 1


def test_directory_select() -> None:
    code, out, err = run("directory", "select", "000.00.00.H54/*")
    assert code == 0 and len(out.splitlines()) == 8 and "8 agencies" in err
    code, _, err = run("directory", "select", "**:nowhere")
    assert code == 1 and "unknown level" in err and err.count("\n") == 1
    code, out, _ = run("directory", "select", "--national", "**:province", "--json")
    assert len(json.loads(out)) == 34


@pytest.mark.parametrize("args", [[], ["validate"], ["nope"], ["validate", "--bogus", "x"]])
def test_bad_arguments_exit_nonzero(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code != 0 and "Traceback" not in out + err


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vbdt", "validate", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.startswith("vbdt:") and "Traceback" not in result.stderr
