"""``vbdt check``: exit codes, text, JSON and the HTML page (rendered by headless Chromium, read back
with pdftotext). Under CI=true a missing chromium or pdftotext fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import vbdt
from conftest import H14, INTEROP, INTEROP_FILES, require_tool
from vbdt.cli.demo import build_directive
from vbdt.cli.main import main
from vbdt.conformance import CHECKS

ALL = [str(p) for p in INTEROP_FILES]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbdt", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory, exchange_pki, example_directory: vbdt.Directory) -> Path:  # type: ignore[no-untyped-def]
    pki, _ = exchange_pki
    key = pki.agencies[H14]
    folder = tmp_path_factory.mktemp("clean")
    path = folder / "clean.edxml"
    # issued today: the command judges dates against the real today
    path.write_bytes(vbdt.pack(build_directive(example_directory, issued=date.today()), key, person=pki.signer, seal=key))
    return path


def test_interop_files_do_not_conform(tmp_path: Path) -> None:
    code, out, err = run("check", *ALL)
    assert code == 1, err
    assert err == ""
    assert f"0 of {len(ALL)} files conform" in out
    assert "FAIL signature.profile" in out and "EDX901" in out and "28.22.H17" in out and "EDX903" in out
    assert "fix: " in out


def test_json_report(tmp_path: Path) -> None:
    code, out, _ = run("check", "--json", *ALL)
    assert code == 1
    report = json.loads(out)
    assert report["schema"] == "vbdt.check/1" and report["profile"] == "strict" and report["conforms"] is False
    assert [f["source"] for f in report["files"]] == ALL
    assert all([c["id"] for c in f["checks"]] == [s.id for s in CHECKS] for f in report["files"])
    new = next(f for f in report["files"] if f["source"].endswith("/new-document.edxml"))
    codes = {x["code"] for c in new["checks"] for x in c["findings"]}
    assert {"EDX101", "EDX112", "EDX202", "EDX901", "EDX904", "EDX905", "EDX907", "PREFIX", "SIG-PROFILE"} <= codes


def test_a_clean_package_conforms_with_trust(clean_file: Path, exchange_pki) -> None:  # type: ignore[no-untyped-def]
    _, folder = exchange_pki
    from vbdt.edxml.resources import example_directory_path

    code, out, err = run("check", str(clean_file), "--trust", str(folder / "ca.pem"),
                         "--directory", str(example_directory_path()), "--json")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["conforms"] and report["trust"] and report["directory"]
    assert {c["outcome"] for c in report["files"][0]["checks"]} == {"pass"}
    code, out, _ = run("check", str(clean_file))
    assert code == 0 and "1 of 1 files conform" in out and "SKIP signature.chain" in out


def test_lenient_profile_still_fails_unsigned_statuses() -> None:
    code, out, _ = run("check", "--profile", "lenient", str(INTEROP / "status-03-accepted.edxml"))
    assert code == 1
    assert "WARN writer.form" in out and "FAIL signature.profile" in out


@pytest.mark.parametrize(("content", "fragment"), [
    (b"this is not XML", "not readable as edXML: the body is not XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><edXML>&b;</edXML>',
     "DOCTYPE"),
], ids=["not-xml", "doctype-bomb"])
def test_hostile_content_is_one_line_and_a_failure(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "hostile.edxml"
    path.write_bytes(content)
    code, out, err = run("check", str(path))
    assert code == 1
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and fragment in err, err
    assert "FAIL xml" in out and "Traceback" not in out + err


@pytest.mark.parametrize(("target", "fragment"), [
    ("folder", "is a folder"),
    ("/dev/zero", "over the limit of 4096 bytes"),
    ("missing", "no such file"),
], ids=["folder", "dev-zero", "missing"])
def test_unreadable_inputs_are_usage_errors(tmp_path: Path, target: str, fragment: str) -> None:
    path = {"folder": str(tmp_path), "missing": str(tmp_path / "nope.edxml")}.get(target, target)
    result = process("--max-bytes", "4096", "check", path, str(INTEROP / "status-01-arrived.edxml"), timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("vbdt: ") and result.stderr.count("\n") == 1 and fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert "status-01-arrived.edxml: DOES NOT CONFORM" in result.stdout  # the other file is still checked


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("check", "--html", str(tmp_path), str(INTEROP / "status-01-arrived.edxml"))
    assert code == 2 and "is a folder" in err
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    code, _, err = run("check", "--trust", str(bad), str(INTEROP / "status-01-arrived.edxml"))
    assert code == 2 and err.startswith("vbdt: --trust:") and err.count("\n") == 1
    code, _, err = run("check", "--profile", "loose", str(INTEROP / "status-01-arrived.edxml"))
    assert code == 2
    code, _, err = run("check")
    assert code == 2


def test_html_report_renders_in_chromium(tmp_path: Path, clean_file: Path, exchange_pki) -> None:  # type: ignore[no-untyped-def]
    chromium = require_tool("chromium")
    pdftotext = require_tool("pdftotext")
    _, folder = exchange_pki
    hostile = tmp_path / "<img src=x onerror=alert(1)>&amp;.edxml"
    hostile.write_bytes(b"not xml <script>alert(1)</script>")
    page = tmp_path / "report.html"
    code, out, err = run("check", "--trust", str(folder / "ca.pem"), "--html", str(page), str(clean_file),
                         str(INTEROP / "new-document.edxml"), str(INTEROP / "status-01-arrived.edxml"), str(hostile))
    assert code == 1, err
    assert f"report written to {page}" in out
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html and "http://" not in html.split("<body", 1)[0]
    pdf = tmp_path / "report.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                   check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)})
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    flat = " ".join(text.split())
    assert "edXML conformance report" in flat and "Báo cáo kiểm tra" in flat
    assert "DOES NOT CONFORM" in flat and "CONFORMS" in flat
    assert "profile strict" in flat and "trust anchors given" in flat
    for expected in ("clean.edxml", "new-document.edxml", "status-01-arrived.edxml", "<img src=x onerror=alert(1)>&amp;.edxml",
                     "28.22.H17", "EDX901", "EDX905", "MIIFqTCCBJG", "EDX903", "SIG-PROFILE", "PREFIX",
                     "signature.binding", "bound to 000.00.00.H14 by uid", "original-valid: 05-CT-UBND.pdf",
                     "Why:", "Fix:", "the body is not XML"):
        assert expected in flat, expected
    for outcome in ("PASS", "FAIL", "WARN", "SKIPPED"):
        assert outcome in flat, outcome
